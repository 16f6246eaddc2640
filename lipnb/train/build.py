"""Turn a :class:`TrainConfig` into the objects the loop needs: data, model, optimiser, schedule.

* :func:`build_data` -> :class:`StageData` (a sample stream, a collate function, the number
  of ids and the facts a checkpoint keeps: category names or the fine-tuning id list);
* :func:`build_model` -> LIP configured for the stage (static memory when pre-training,
  RoIs per image, the id layer over the data's ids, frozen parts, weights from ``init``);
* :func:`build_optimizer` -> SGD (momentum, weight decay) over the trainable parameters;
* :func:`build_scheduler` -> linear warm-up then x``gamma`` at each milestone.
"""

from __future__ import annotations

import bisect
import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from lipnb.data.clips import DavisClips, collate_clips, collate_images
from lipnb.data.stream import SampleStream
from lipnb import paths
from lipnb.paths import REPO_ROOT
from lipnb.train.config import TrainConfig


@dataclass
class StageData:
    stream: SampleStream
    collate: Callable  # list of samples -> (inputs, targets) for the model
    num_ids: int
    meta: dict  # {"categories": [...]} or {"ids": [[sequence, object], ...]}
    root: Path | str  # the data folder (" + "-joined folders for a mixture)


def resolve_data_root(cfg: TrainConfig) -> Path:
    """``cfg.data`` as a folder: ``procedural`` (generated on first use), ``coco_tiny`` or
    ``davis2016`` (the shared development copies, see :mod:`lipnb.paths`), or a path, tried as
    given and then relative to the repository."""
    if cfg.data == "procedural":
        from lipnb.data.procedural import ProceduralSpec, ensure_procedural

        data = ensure_procedural(ProceduralSpec(seed=cfg.procedural_seed))
        return data.coco if cfg.stage == "pretrain" else data.davis
    shared = {"coco_tiny": paths.coco_root, "davis2016": paths.davis2016_root}
    if cfg.data in shared:  # the development copies in ../shared/data (LIPNB_* variables override)
        root = shared[cfg.data]()
        if not root.exists():
            raise FileNotFoundError(f"training data {cfg.data!r} not found at {root}")
        return root
    path = Path(cfg.data).expanduser()
    for candidate in (path, REPO_ROOT / path):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"training data not found: {cfg.data} (also tried {REPO_ROOT / path})")


def build_data(cfg: TrainConfig) -> StageData:
    if cfg.stage == "pretrain":
        from lipnb.data.coco import CocoInstances, CocoMixture

        names = cfg.data.split("+")  # "coco_tiny+procedural": both image sets, categories side by side
        roots = [resolve_data_root(dataclasses.replace(cfg, data=name)) for name in names]
        parts = [CocoInstances(r, cfg.coco_split, cfg.scales, cfg.max_size, cfg.flip) for r in roots]
        ds = parts[0] if len(parts) == 1 else CocoMixture(parts, names)
        return StageData(SampleStream(ds, cfg.seed), collate_images, ds.num_classes,
                         {"categories": ds.category_names}, roots[0] if len(roots) == 1 else " + ".join(map(str, roots)))
    if cfg.clip_sources:
        return _mixed_clip_data(cfg)
    root = resolve_data_root(cfg)
    clips = _davis_clips(cfg, root)
    return StageData(SampleStream(clips, cfg.seed), collate_clips, clips.num_ids,
                     {"ids": [[s, o] for s, o in clips.ids]}, root)


def _davis_clips(cfg: TrainConfig, root: Path, year: str | None = None, split: str | None = None) -> DavisClips:
    from lipnb.data.davis import DavisDataset

    davis = DavisDataset(root, year=year or cfg.davis_year, split=split or cfg.davis_split,
                         resolution=cfg.davis_resolution)
    span = cfg.clip_warmup_range
    length = cfg.clip_length + (0 if span else cfg.clip_warmup)  # a drawn warm-up comes from before the clip
    return DavisClips(davis, length, cfg.clip_stride, cfg.reverse_clips, cfg.scales, cfg.max_size,
                      cfg.flip, cfg.box_expand, warmup_range=span)


def memory_videos_root(cfg: TrainConfig) -> Path:
    """The ``"memory"`` clip source: ``cfg.memory_videos`` procedural memory videos (train split,
    DAVIS 2017 layout) drawn with ``cfg.memory_seed``, generated on first use."""
    from lipnb.data.procedural import ProceduralSpec, ensure_procedural

    spec = ProceduralSpec(seed=cfg.memory_seed, coco_train=1, coco_val=1, davis_train=cfg.memory_videos, davis_val=0)
    return ensure_procedural(spec).davis


def _mixed_clip_data(cfg: TrainConfig) -> StageData:
    """``cfg.data`` and ``cfg.clip_sources`` as one :class:`MixedClips` set."""
    from lipnb.data.clips import MixedClips

    parts, roots = [], []
    for name in (cfg.data, *cfg.clip_sources):
        if name == "memory":
            root = memory_videos_root(cfg)
            parts.append(_davis_clips(cfg, root, year="2017", split="train"))
        else:
            root = resolve_data_root(dataclasses.replace(cfg, data=name))
            parts.append(_davis_clips(cfg, root))
        roots.append(root)
    clips = MixedClips(parts, [cfg.data, *cfg.clip_sources], cfg.clip_source_weights or None)
    return StageData(SampleStream(clips, cfg.seed), collate_clips, clips.num_ids,
                     {"ids": [[s, o] for s, o in clips.ids]}, " + ".join(map(str, roots)))


def model_config(cfg: TrainConfig, num_ids: int):
    from lipnb.model import LIPConfig

    return LIPConfig.from_dict({
        **cfg.model, **{"num_ids": num_ids, "static_memory": cfg.use_static_memory,
           "roi_batch_size_per_image": cfg.rois_per_image, "roi_positive_fraction": cfg.roi_positive_fraction,
           "train_min_sizes": tuple(cfg.scales), "train_max_size": cfg.max_size,
           "clip_length": cfg.clip_length, "bptt_cut": cfg.bptt_cut}})


def build_model(cfg: TrainConfig, num_ids: int, load_init: bool = True):
    """LIP for this stage. Without ``cfg.init`` the trunk starts from the profile's
    ``backbone_checkpoint`` (ImageNet for ``davis-cpu``). With ``cfg.init`` (and ``load_init``) the weights come from that
    checkpoint; when fine-tuning, the id head's last layer is then replaced by a fresh one
    over the data's ``num_ids`` ids (§4.1.2)."""
    from lipnb.model import LIP, reset_id_head
    from lipnb.model.backbone import load_pretrained_trunk
    from lipnb.train.checkpoint import model_state

    torch.manual_seed(cfg.seed)  # identical initial weights in every process
    if cfg.init and load_init:
        state, ckpt = model_state(cfg.init)
        init_ids = ckpt.get("model_config", {}).get("num_ids", num_ids)
        model = LIP(model_config(cfg, init_ids))
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            from lipnb.train.checkpoint import mismatch_message

            raise ValueError(mismatch_message(cfg.init, cfg.profile_name, model.cfg.to_dict(), ckpt)) from e
        if init_ids != num_ids or cfg.stage == "finetune":
            reset_id_head(model, num_ids)
            model.cfg.num_ids = num_ids
        if cfg.memory_recurrent_init == "zero" and model.memory is not None:
            zero_recurrent_weights(model.memory)
        if cfg.memory_gate_shift is not None and model.memory is not None:
            with torch.no_grad():
                for cell in model.memory.cells:
                    cell.gn_z.bias.fill_(cfg.memory_gate_shift)
    else:
        if cfg.stage == "finetune" and load_init:
            warnings.warn("fine-tuning without --init: the model starts from random weights", stacklevel=2)
        model = LIP(model_config(cfg, num_ids))
        if load_init:  # a fresh start (a resumed run reads every weight from its checkpoint)
            load_pretrained_trunk(model.backbone, model.cfg)  # ImageNet weights where the profile has them
    if cfg.freeze:
        model.freeze(*cfg.freeze)
    return model


def zero_recurrent_weights(memory) -> None:
    """W_hz, W_hr and W_h of every Conv-GRU cell set to zero (``TrainConfig.memory_recurrent_init``)."""
    with torch.no_grad():
        for cell in memory.cells:
            cell.conv_h_zr.weight.zero_()
            cell.conv_h.weight.zero_()


def build_optimizer(cfg: TrainConfig, model) -> torch.optim.Optimizer:
    if cfg.grouped_parameters:
        return torch.optim.SGD(parameter_groups(cfg, model), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def parameter_groups(cfg: TrainConfig, model) -> list[dict]:
    """The trainable parameters in Detectron's groups: GroupNorm weights and biases (decay
    ``weight_decay_norm``), other biases (decay ``weight_decay_bias``, lr x ``bias_lr_factor``),
    the rest (``weight_decay``); each also x ``memory_lr_factor`` inside ``model.memory``.
    ``None`` decays mean ``cfg.weight_decay``. Each group says its ``name``; empty ones are left out."""
    memory = {id(p) for p in model.memory.parameters()} if getattr(model, "memory", None) is not None else set()
    norm = {id(p) for m in model.modules() if isinstance(m, torch.nn.GroupNorm) for p in m.parameters(recurse=False)}
    decay_norm = cfg.weight_decay if cfg.weight_decay_norm is None else cfg.weight_decay_norm
    decay_bias = cfg.weight_decay if cfg.weight_decay_bias is None else cfg.weight_decay_bias
    groups: dict = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in norm:
            kind, decay, lr = "norm", decay_norm, cfg.lr
        elif name.endswith("bias"):
            kind, decay, lr = "bias", decay_bias, cfg.lr * cfg.bias_lr_factor
        else:
            kind, decay, lr = "weight", cfg.weight_decay, cfg.lr
        if id(p) in memory:
            kind, lr = f"memory {kind}", lr * cfg.memory_lr_factor
        group = groups.setdefault(kind, {"name": kind, "params": [], "lr": lr, "weight_decay": decay})
        group["params"].append(p)
    order = ("weight", "bias", "norm", "memory weight", "memory bias", "memory norm")
    return [groups[k] for k in order if k in groups]


class WarmupMultiStep:
    """lr factor at iteration ``it``: ``gamma ** (milestones passed)``, times a linear ramp from
    ``warmup_factor`` to 1 over the first ``warmup_iters`` iterations. A plain object (not a
    lambda) so that the scheduler's state_dict holds its values."""

    def __init__(self, milestones, gamma: float, warmup_iters: int, warmup_factor: float):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        self.warmup_iters, self.warmup_factor = int(warmup_iters), float(warmup_factor)

    def __call__(self, it: int) -> float:
        factor = self.gamma ** bisect.bisect_right(self.milestones, it)
        if it < self.warmup_iters:
            alpha = it / self.warmup_iters
            factor *= self.warmup_factor * (1 - alpha) + alpha
        return factor


def build_scheduler(cfg: TrainConfig, optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    rule = WarmupMultiStep(cfg.milestones, cfg.gamma, cfg.warmup_iters, cfg.warmup_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
