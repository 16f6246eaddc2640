"""The released weights of a reproduction: the fine-tuned model a new user segments with.

At the end of a run, :func:`export_weights` turns ``work/finetune/last.pt`` (float32 weights, the
optimiser, the data stream) into ``<profile>/weights.pt``: the model's weights in float16 and its
``LIPConfig``, nothing else; the manifest records its size and sha256. ``davis-cpu``'s is
committed (``results/davis-cpu/weights.pt``), and ``lipnb segment`` without ``--checkpoint``
uses it (:func:`released_weights` checks it against its manifest first)::

    info = export_weights(run / "work/finetune/last.pt", run / "weights.pt")   # {"file", "bytes", "sha256", ...}
    path, info = released_weights()                                           # results/davis-cpu/weights.pt
    settings = released_recipe()      # the online settings its reproduction chose for it (OnlineConfig fields)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lipnb import paths
from lipnb.errors import fail
from lipnb.paths import sha256

WEIGHTS = "weights.pt"
RELEASED_PROFILE = "davis-cpu"  # the profile whose weights are committed


def recipe_name(zero_hidden: bool = False) -> str:
    """The file beside a run's tables that records its online recipe (:mod:`lipnb.lab.recipes`)."""
    return f"online_recipe{'-zero' if zero_hidden else ''}.json"


def export_weights(checkpoint: Path, dest: Path) -> dict:
    """Write ``dest`` = ``{"model": float16 state dict, "model_config": LIPConfig dict}`` from a
    training checkpoint, atomically; returns what the manifest records about it."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"model": state, "model_config": ckpt["model_config"]}, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"file": dest.name, "bytes": dest.stat().st_size, "sha256": sha256(dest), "dtype": "float16",
            "from": "work/finetune/last.pt (the fine-tuned model of notebook 02)"}


def released_weights(profile: str = RELEASED_PROFILE, results: Path = paths.RESULTS_DIR) -> tuple[Path, dict]:
    """``(path, manifest entry)`` of ``profile``'s released weights, checked against the manifest's
    sha256; a missing or changed file is a one-line error that says what to do."""
    folder = Path(results) / profile
    manifest_path, path = folder / "manifest.json", folder / WEIGHTS
    todo = (f"run `make reproduce PROFILE={profile}` (it writes {path}), or pass --checkpoint "
            "(a last.pt written by 'lipnb train')")
    if not manifest_path.is_file() or not path.is_file():
        fail(f"no released weights: {path if manifest_path.is_file() else manifest_path} not found; {todo}")
    manifest = json.loads(manifest_path.read_text())
    info = manifest.get("weights")
    if not isinstance(info, dict) or "sha256" not in info:
        fail(f"{manifest_path} records no released weights (a run before they were exported); {todo}")
    found = sha256(path)
    if found != info["sha256"]:
        fail(f"{path} has sha256 {found[:12]}..., but {manifest_path} records {info['sha256'][:12]}...: the file was "
             f"changed or belongs to another run; {todo}")
    return path, {**info, "profile": profile, "commit": manifest.get("git", {}).get("commit", "?")[:7]}


def released_recipe(zero_hidden: bool = False, profile: str = RELEASED_PROFILE,
                    results: Path = paths.RESULTS_DIR) -> dict:
    """The online settings (:class:`~lipnb.online.OnlineConfig` fields) that ``profile``'s
    reproduction chose for its released model on training videos (``online_recipe[-zero].json``,
    :mod:`lipnb.lab.recipes`), or ``{}`` (the paper's defaults) when it recorded none."""
    from dataclasses import fields

    from lipnb.online.config import OnlineConfig

    path = Path(results) / profile / recipe_name(zero_hidden)
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    known = {f.name for f in fields(OnlineConfig)}
    return {k: v for k, v in record["candidates"][record["best"]].items() if k in known}
