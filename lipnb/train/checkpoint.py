"""Checkpoints that resume exactly and load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only:

    step        the next optimisation step to run
    model       state_dict of the (unwrapped) LIP
    optimizer, scheduler, scaler   their state_dicts
    rng         torch / cuda / python / numpy generator states (tensors, tuples, lists)
    data        {"position": next sample position, "global_batch", "seed"} (lipnb.data.stream)
    config      TrainConfig.to_dict(); model_config: LIPConfig.to_dict()
    meta        stage-specific facts (category names, the fine-tuning id list)

Writes go to a temporary file in the same folder, flushed and fsynced, then renamed over
the target, so a crash leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def capture_rng() -> dict:
    """Every global generator's state, as tensors and plain values."""
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
    }
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng` (cuda states only where cuda is in use)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Atomically write ``state`` to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        from lipnb.errors import checkpoint_load_reason

        raise ValueError(f"cannot load checkpoint {path}: {checkpoint_load_reason(e)}; use a last.pt written "
                         "by 'lipnb train'") from None


def model_state(path: str | Path) -> tuple[dict, dict]:
    """``(state_dict, checkpoint)`` of a checkpoint's model, e.g. to start fine-tuning from."""
    ckpt = load_checkpoint(path)
    if "model" not in ckpt:
        raise ValueError(f"{path} holds no 'model' entry (keys: {sorted(ckpt)})")
    return ckpt["model"], ckpt
