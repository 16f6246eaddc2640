"""``manifest.json``: what a reproduction ran, on what, with what (showyourwork's idea: every
number in a table traces to the run that made it).

Fields: ``git`` (commit, dirty), ``profile``, ``parameters`` (as injected into every notebook),
``seeds``, ``packages`` (versions), ``python``, ``platform``, ``data`` (per data parameter: the
folder and a checksum), ``notebooks`` (per notebook: wall seconds), ``wall_s``, ``finished``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from lipnb import paths
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.repro.stages import data_root

PACKAGES = ("lipnb", "torch", "torchvision", "numpy", "pillow", "pandas", "matplotlib", "pycocotools",
            "papermill", "nbformat", "ipykernel", "ipywidgets")
DATA_PARAMETERS = ("coco", "davis_train", "davis2016", "davis2017")
CONTENT_LIMIT = 512 * 2 ** 20  # hash file contents up to this many bytes; above, names and sizes only


def git_state(repo: Path = paths.REPO_ROOT) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip() or None, "dirty": bool(status.stdout.strip()) if status.returncode == 0
            else None}


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def folder_checksum(root: Path, content_limit: int = CONTENT_LIMIT) -> dict:
    """sha256 over every file under ``root`` (relative path + contents, in sorted order); for a
    folder larger than ``content_limit`` bytes, over relative paths and sizes only."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    method = "content" if total <= content_limit else "names+sizes"
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        if method == "content":
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(str(p.stat().st_size).encode())
        h.update(b"\0")
    return {"path": str(root), "files": len(files), "bytes": total, "sha256": h.hexdigest(), "method": method}


def data_checksums(params: dict) -> dict:
    """Checksum of each data folder the parameters name (a missing folder is recorded as such)."""

    out, seen = {}, {}

    def checksum(name: str, key: str) -> dict:
        if name == "procedural":

            root = ensure_procedural(ProceduralSpec(seed=params["seed"])).root
        else:
            root = data_root(name, "pretrain" if key == "coco" else "finetune")
        if root not in seen:
            seen[root] = folder_checksum(root)
        return seen[root]

    for key in DATA_PARAMETERS:
        name = params[key]
        try:
            if "+" in name:  # a mixture such as coco_tiny+procedural: one checksum per part
                out[key] = {"value": name, "parts": {part: checksum(part, key) for part in name.split("+")}}
            else:
                out[key] = {"value": name, **checksum(name, key)}
        except FileNotFoundError as e:
            out[key] = {"value": name, "error": str(e)}
    return out


def build_manifest(profile: str, params: dict, timings: dict, wall_s: float) -> dict:
    return {
        "profile": profile,
        "git": git_state(),
        "parameters": params,
        "seeds": {"seed": params["seed"], "procedural_data_seed": params["seed"],
                  "note": "one seed drives torch/numpy/random, training sample streams, online fine-tuning"},
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "data": data_checksums(params),
        "notebooks": timings,
        "wall_s": round(wall_s, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_manifest(path: Path, manifest: dict) -> Path:
    Path(path).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    return Path(path)
