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


# LIPConfig fields that decide the shapes of the weights: where a checkpoint and a model differ
SHAPE_FIELDS = ("backbone", "depth", "width", "gn_groups", "fpn_channels", "use_memory", "hidden_channels",
                "gru_kernel", "path_augmentation", "anchor_sizes", "aspect_ratios", "box_roi_size", "mask_roi_size", "box_head_convs",
                "box_head_channels", "representation_size", "mask_head_convs", "mask_head_channels", "shortcut",
                "class_specific", "num_ids")


def describe_model(mc: dict) -> str:
    """``ResNet-18 x0.25, FPN 64, memory 64`` from a LIPConfig dict."""
    backbone = mc.get("backbone", "resnet")
    trunk = f"ResNet-{mc.get('depth')} x{mc.get('width')}" if backbone == "resnet" else str(backbone)
    memory = mc.get("hidden_channels") if mc.get("use_memory", True) else "none"
    return f"{trunk}, FPN {mc.get('fpn_channels')}, memory {memory}"


def mismatch_message(path: str | Path, profile: str, model_cfg: dict, ckpt: dict | None = None) -> str:
    """One line: the checkpoint ``path`` (of which profile and architecture) does not fit the model of
    ``profile`` (``model_cfg``, a LIPConfig dict) it was loaded into, and the fields that differ."""
    if ckpt is None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # the configs only
        except Exception:  # noqa: BLE001 - a message without the checkpoint's side
            ckpt = {}
    theirs = (ckpt.get("config") or {}).get("profile_name") if isinstance(ckpt.get("config"), dict) else None
    mc = next((ckpt[k] for k in ("model_config", "config") if isinstance(ckpt.get(k), dict) and "depth" in ckpt[k]), {})
    norm = lambda v: list(v) if isinstance(v, (tuple, list)) else v  # noqa: E731
    differ = [k for k in SHAPE_FIELDS if k in mc and k in model_cfg and norm(mc[k]) != norm(model_cfg[k])]
    shown = ", ".join(f"{k} {norm(mc[k])} vs {norm(model_cfg[k])}" for k in differ[:4])
    shown += ", ..." if len(differ) > 4 else ""
    origin = f"profile {theirs!r}" if theirs else "an unknown profile"
    return (f"{path} is a checkpoint of {origin} ({describe_model(mc) if mc else 'no model_config stored'}); it does "
            f"not fit the {profile!r} model it was loaded into ({describe_model(model_cfg)})"
            + (f": {shown}" if shown else "") + f"; give a checkpoint trained with the {profile!r} profile"
            + (f", or --profile {theirs}" if theirs and theirs != profile else ""))
