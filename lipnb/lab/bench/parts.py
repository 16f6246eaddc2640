"""Where a frame's time goes: LIP's forward pass split by part (``python -m lipnb bench model``).

Forward hooks time each part of the network while it segments frames in eval mode, the state
carried: the trunk, the FPN, the Conv-GRU of each level (P2..P6), the path augmentation, the RPN
(anchors, head, proposal selection), and the RoI heads split into the box, id and mask parts
(RoIAlign included) and the rest (detection selection). What no hook covers (input
normalisation, padding, resizing back) is "other". Seconds per frame are means over the frames
after the warm-up (means, unlike medians, add up to the total); on a GPU every part is
synchronised, which slows the whole pass a little.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch

from lipnb.lab.memory_stats import LEVEL_NAMES



def parts_of(model) -> dict:
    """Part name -> the submodules whose time it sums (LIP as built by :mod:`lipnb.model`)."""
    heads = model.roi_heads
    parts = {"trunk": [model.backbone.body], "FPN": [model.backbone.fpn]}
    if model.memory is not None:
        parts.update({f"Conv-GRU {level}": [cell] for level, cell in zip(LEVEL_NAMES, model.memory.cells)})
    if model.path_aug is not None:
        parts["path augmentation"] = [model.path_aug]
    parts["RPN"] = [model.rpn]
    parts["box head"] = [heads.box_roi_pool, heads.box_head, heads.box_predictor]
    parts["id head"] = [heads.id_head]
    parts["mask head"] = [heads.mask_roi_pool, heads.mask_head, heads.mask_predictor]
    return parts


@contextmanager
def timed(modules: dict, sync):
    """Accumulate, per name, the seconds the named modules' forward calls take (``sync``: CUDA)."""
    spent = {name: 0.0 for name in modules}
    started: dict = {}
    handles = []
    for name, module in modules.items():
        def pre(mod, args, name=name):
            sync()
            started[name] = time.perf_counter()

        def post(mod, args, out, name=name):
            sync()
            spent[name] += time.perf_counter() - started.pop(name)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield spent
    finally:
        for h in handles:
            h.remove()


def frame_parts(model, frames: list, warmup: int, autocast, sync) -> dict:
    """Mean seconds per frame of each part over ``frames`` (lists of B images) after ``warmup``
    untimed frames, plus ``RoI heads, rest``, ``other`` and ``total``."""
    parts = parts_of(model)
    modules = {f"{name}#{i}": m for name, ms in parts.items() for i, m in enumerate(ms)}
    modules["roi_heads"] = model.roi_heads
    per_frame = []
    state = None
    with torch.no_grad():
        for t, images in enumerate(frames):
            with timed(modules, sync) as spent, autocast():
                sync()
                start = time.perf_counter()
                _, state = model(images, state=state)
                sync()
                total = time.perf_counter() - start
            if t < warmup:
                continue
            row = {name: sum(spent[f"{name}#{i}"] for i in range(len(ms))) for name, ms in parts.items()}
            head_parts = sum(row[k] for k in ("box head", "id head", "mask head"))
            row["RoI heads, rest"] = spent["roi_heads"] - head_parts
            row["other"] = total - sum(row.values())
            row["total"] = total
            per_frame.append(row)
    return {k: statistics.fmean(r[k] for r in per_frame) for k in per_frame[0]}


def parts_table(seconds: dict) -> str:
    """The parts as lines: milliseconds per frame and share of the total."""
    total = seconds["total"]
    lines = [f"  {'part':<20} {'ms/frame':>9} {'share':>6}"]
    for name, s in seconds.items():
        if name != "total":
            lines.append(f"  {name:<20} {1000 * s:9.1f} {100 * s / total:5.1f}%")
    lines.append(f"  {'total':<20} {1000 * total:9.1f}")
    return "\n".join(lines)
