"""The offline model that online fine-tuning starts from: a checkpoint, or random weights.

Reads what ``lipnb train`` writes (``{"model": state_dict, "model_config": LIPConfig dict, ...}``)
and the lighter ``{"model" | "state_dict": ..., "model_config" | "config": LIPConfig dict}``;
always with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lipnb.model import LIP, LIPConfig

class CheckpointError(ValueError):
    """A checkpoint that is missing or does not hold a LIP model; the message names the file."""


def _is_model_config(d) -> bool:
    return isinstance(d, dict) and "depth" in d and "num_ids" in d


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LIP:
    """LIP with the checkpoint's config and weights, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling fails in many ways
        from lipnb.errors import checkpoint_load_reason

        raise CheckpointError(f"cannot load checkpoint {path}: {checkpoint_load_reason(e)}; use a last.pt "
                              "written by 'lipnb train' (or --random-weights)") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(ckpt).__name__}; use a last.pt written by "
                              "'lipnb train'")
    state = ckpt.get("model", ckpt.get("state_dict"))
    config = next((ckpt[k] for k in ("model_config", "config") if _is_model_config(ckpt.get(k))), None)
    if state is None or config is None:
        raise CheckpointError(f"{path}: needs a state dict ('model' or 'state_dict') and a LIPConfig dict "
                              f"('model_config' or 'config'); found keys {sorted(ckpt)}")
    if "resampling" not in config:  # written before the field existed: the authors' resampling
        config = {**config, "resampling": "authors"}
    model = LIP(LIPConfig.from_dict(config))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        problems = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        first = (problems[0][:160] + ("..." if len(problems[0]) > 160 else "")) if problems else "no details"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        profile = (ckpt.get("config") or {}).get("profile_name") if isinstance(ckpt.get("config"), dict) else None
        raise CheckpointError(f"{path}: its weights do not fit its own stored model config"
                              f"{f' (profile {profile!r})' if profile else ''}: {first}{more}; the file was changed "
                              "or written by another version: use a last.pt written by 'lipnb train'") from e
    return model.to(device).eval()


def random_model(cfg: LIPConfig, seed: int = 0, device: str | torch.device = "cpu") -> LIP:
    """An untrained LIP (tests, and a pipeline check without weights)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LIP(cfg)
    return model.to(device).eval()


def save_model(model: LIP, path: str | Path) -> Path:
    """The lighter checkpoint form ``{"model": state_dict, "model_config": cfg}`` (e.g. for tests)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict()}, path)
    return path
