"""What a reproduction resumes: the parameters an earlier, unfinished run recorded, and the check
that ``reproduce --resume`` continues it with the same ones.

A run records its notebook parameters in ``parameters.json`` of its staging folder before the
first notebook starts; runs of older versions are read from the papermill metadata of their
executed notebooks. Every parameter that shapes the result (:data:`lipnb.profiles.RESULT_PARAMETERS`,
as ``ablation --reference`` compares them) must be equal, else the resumed run would mix
checkpoints of one setting with tables that claim another.
"""

from __future__ import annotations

import json
from pathlib import Path

from lipnb.profiles import RESULT_PARAMETERS

RECORD = "parameters.json"


def record_parameters(folder: Path, params: dict) -> Path:
    """Write ``folder/parameters.json`` (``out_dir`` left out: it is the staging folder)."""
    path = Path(folder) / RECORD
    path.write_text(json.dumps({k: v for k, v in params.items() if k != "out_dir"}, indent=1, default=str))
    return path


def recorded_parameters(folder: Path, notebooks=()) -> dict | None:
    """The parameters an earlier run of ``folder`` ran with, or None when it recorded none."""
    folder = Path(folder)
    if (folder / RECORD).is_file():
        return json.loads((folder / RECORD).read_text())
    for name in notebooks:  # older runs: papermill keeps the injected parameters in the metadata
        executed = folder / name
        if executed.is_file():
            try:
                params = json.loads(executed.read_text())["metadata"]["papermill"]["parameters"]
            except (ValueError, KeyError, TypeError):
                continue
            if params:
                return params
    return None


def resume_problems(folder: Path, params: dict, notebooks=()) -> list[str]:
    """One message per result-shaping parameter whose value differs from the run in ``folder``."""
    recorded = recorded_parameters(folder, notebooks)
    if recorded is None:
        return [f"cannot resume {folder}: it records no parameters ({RECORD} or an executed notebook), so "
                "they cannot be checked; run without --resume to start again"]
    return [f"cannot resume {folder}: it ran with {key} {recorded[key]!r}, this call has {params[key]!r}; "
            f"resume with -p {key} {json.dumps(recorded[key])}, or run without --resume to start again"
            for key in RESULT_PARAMETERS if key in recorded and key in params and recorded[key] != params[key]]


def free_name(folder: Path, name: str) -> Path:
    """``folder/name`` if free, else the first free ``folder/name-2``, ``-3``, ..."""
    path, n = Path(folder) / name, 2
    while path.exists():
        path, n = Path(folder) / f"{name}-{n}", n + 1
    return path
