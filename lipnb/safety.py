"""Nothing lost, nothing mixed: where a command may write, and how its output replaces older output.

- :func:`check_out_apart`: an output folder that is, contains or lies inside an input is refused
  before any work (a command must never write over its frames, masks, data or results).
- :func:`check_out_free`: a non-empty output folder is replaced only with ``--overwrite``.
- :class:`StagedFolder`: outputs are written to a hidden staging folder beside ``out`` and swapped
  in when the run succeeds; a failed run leaves ``<out>.partial/`` with a ``FAILED.txt`` mark, and
  the previous ``out`` untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lipnb.cli_errors import UserError

FAILED_MARK = "FAILED.txt"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out_apart(out: str | os.PathLike, inputs: dict, flag: str = "--out") -> Path:
    """Refuse ``out`` if it is, contains or lies inside one of ``inputs`` ({option: path}); files
    count by themselves (``out`` may not be them nor hold them). Returns ``out`` resolved."""
    out_r = Path(out).resolve()
    for option, path in inputs.items():
        if path is None:
            continue
        p = Path(path).resolve()
        if out_r == p or (p.is_dir() and _inside(out_r, p)):
            raise UserError(f"{flag} {out} is inside the {option} input {path}: writing there would overwrite "
                            f"the inputs; choose an {flag} folder outside {path}")
        if _inside(p, out_r):
            raise UserError(f"{flag} {out} contains the {option} input {path}: replacing {out} would delete "
                            f"it; choose an {flag} folder that holds none of the inputs")
    return out_r


def check_out_free(out: str | os.PathLike, overwrite: bool, flag: str = "--out", resume_hint: str = "") -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder; choose a folder")
    if overwrite or not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise UserError(f"{flag} {out} already holds an earlier run ({shown}); pass --overwrite to replace it"
                        f"{resume_hint}, or choose an empty folder")


def partial_path(out: Path) -> Path:
    return out.with_name(f"{out.name}.partial")


class StagedFolder:
    """``with StagedFolder(out) as stage: ...write into stage...``: on success ``stage`` replaces
    ``out`` (old ``out`` moved aside, new one renamed in, old one deleted); on an exception it becomes
    ``<out>.partial/`` (an older partial folder is replaced) with ``FAILED.txt`` naming the error, and
    the exception's message is extended with where the partial output is.

    ``resume_from``: a folder (``<out>.partial``) whose content the run continues from."""

    def __init__(self, out: str | os.PathLike, resume_from: Path | None = None):
        self.out = Path(out).absolute()
        self.staging = self.out.with_name(f".{self.out.name}.staging-{os.getpid()}")
        self.partial = partial_path(self.out)
        self.resume_from = resume_from

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.resume_from is not None:
            os.rename(self.resume_from, self.staging)
            (self.staging / FAILED_MARK).unlink(missing_ok=True)
        else:
            self.staging.mkdir()
        return self.staging

    def __exit__(self, kind, error, tb) -> bool:
        if error is None:
            old = self.out.with_name(f".{self.out.name}.previous-{os.getpid()}")
            if self.out.exists():
                os.rename(self.out, old)
            os.rename(self.staging, self.out)
            shutil.rmtree(old, ignore_errors=True)
            return False
        if self.staging.exists():
            shutil.rmtree(self.partial, ignore_errors=True)
            (self.staging / FAILED_MARK).write_text(f"this run failed and is incomplete: {type(error).__name__}: "
                                                    f"{error}\n")
            os.rename(self.staging, self.partial)
            note = (f"; partial output kept in {self.partial} (marked {FAILED_MARK})"
                    + (f", earlier output left untouched in {self.out}" if self.out.exists() else ""))
            if isinstance(error, Exception) and error.args and isinstance(error.args[0], str):
                error.args = (error.args[0] + note, *error.args[1:])
        return False
