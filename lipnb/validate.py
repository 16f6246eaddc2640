"""Parameter checks shared by the commands: one message per bad value, all reported at once.

    problems = count_problems([("-p num_sequences", -1, 0)])   # ["-p num_sequences -1: must be ..."]
    raise_all(problems)                                        # UserError, one ``error:`` line each
"""

from __future__ import annotations

import numbers
from pathlib import Path

from lipnb.cli_errors import UserError

# notebook parameter -> the smallest value that has a meaning
NOTEBOOK_COUNTS = {"threads": 0, "seed": 0, "num_sequences": 0, "pretrain_iters": 1, "finetune_iters": 1,
                   "online_iters": 0, "refresh_iters": 0}
NOTEBOOK_DATA = ("coco", "davis_train", "davis2016", "davis2017")
DATA_KEYWORDS = ("procedural", "coco_tiny", "coco_tiny+procedural", "davis2016")
DEVICES = ("cpu", "cuda", "auto")


def count_problem(label: str, value, minimum: int) -> str | None:
    """``None`` if ``value`` is an integer >= ``minimum``, else the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return f"{label} {value!r}: must be an integer >= {minimum}"
    if value < minimum:
        return f"{label} {value}: must be >= {minimum}"
    return None


def positive_problem(label: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        return f"{label} {value!r}: must be a number > 0"
    return None


def count_problems(checks) -> list[str]:
    """``[(label, value, minimum), ...]`` -> the messages of the bad ones."""
    return [m for m in (count_problem(*c) for c in checks) if m]


def data_path_problem(label: str, value) -> str | None:
    """A data parameter: a keyword, or a folder that exists (as given or relative to the repository)."""
    from lipnb import paths

    if not isinstance(value, str) or not value:
        return f"{label} {value!r}: must be one of {list(DATA_KEYWORDS)} or a folder"
    if value in DATA_KEYWORDS:
        return None
    path = Path(value).expanduser()
    if path.exists() or (paths.REPO_ROOT / path).exists():
        return None
    return (f"{label} {value}: folder not found (also tried {paths.REPO_ROOT / path}); give an existing "
            f"folder or one of {list(DATA_KEYWORDS)}")


def notebook_parameter_problems(params: dict, given: dict | None = None) -> list[str]:
    """Every bad value of a reproduction's notebook parameters (``given``: the ``-p`` overrides,
    for the labels)."""
    from lipnb.report.profiles import PROFILES

    given = given or {}
    label = lambda key: f"-p {key}" if key in given else f"parameter {key}"  # noqa: E731
    problems = [count_problem(label(k), params[k], m) for k, m in NOTEBOOK_COUNTS.items() if k in params]
    problems.append(positive_problem(label("online_lr"), params.get("online_lr")))
    if params.get("profile") not in PROFILES:
        problems.append(f"{label('profile')} {params.get('profile')!r}: unknown profile; choose from {list(PROFILES)}")
    if params.get("device") not in DEVICES:
        problems.append(f"{label('device')} {params.get('device')!r}: must be one of {list(DEVICES)}")
    if not isinstance(params.get("frames_resolution"), str) or not params.get("frames_resolution"):
        problems.append(f"{label('frames_resolution')} {params.get('frames_resolution')!r}: must be a folder "
                        "name such as 480p or 240p")
    problems += [data_path_problem(label(k), params.get(k)) for k in NOTEBOOK_DATA]
    return [p for p in problems if p]


def raise_all(problems: list[str]) -> None:
    """Raise one :class:`UserError` whose text is one ``error:`` line per problem (none: return)."""
    if problems:
        raise UserError("\nerror: ".join(problems))
