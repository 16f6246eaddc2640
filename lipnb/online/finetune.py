"""Class-specific online fine-tuning on the first frame (paper §4.2, §5.1).

    "the last linear layer in id head needs to be re-initialized and trained to differentiate
    instances in the current sequence. ... We also adopt focal loss [33] for id head to balance
    the training for multiple instances. During online fine-tuning, the parameters in backbone
    network and Conv-GRU module are frozen to keep the learned propagation property. All other
    parts are fine-tuned for the new objects in test image. The class-agnostic prediction in mask
    head and bbox head are altered to be class-specific" (§4.2)

    "fine-tuned with the GT of the first image for maximally 1000 iterations with early stopping.
    If the loss for a prediction head is smaller than an empirically chosen threshold, the loss is
    ignored. If all the losses are ignored, we stop the training. We also stop the loss
    back-propagation in id head at its last fully connected layer" (§5.1)

Backbone and memory being frozen, the first frame's features are computed once (at the test
scale, in eval mode) and every iteration runs only RPN + heads on them (``LIP.heads``)::

    tuner = OnlineFineTuner(model, OnlineConfig())
    result = tuner.fit(image, first_frame_targets(mask, object_ids))   # model changed in place
    state = result.features.state                                      # memory after frame 0
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lipnb.data.transforms import boxes_from_masks
from lipnb.model import LIP, make_class_specific, reset_id_head
from lipnb.model.lip import FrameFeatures

from .config import HEADS, OnlineConfig

# the model's loss names, grouped per prediction head
HEAD_LOSSES = {"rpn": ("loss_objectness", "loss_rpn_box_reg"), "id": ("loss_id",),
               "box": ("loss_box_reg",), "mask": ("loss_mask",)}


def first_frame_targets(mask: np.ndarray | torch.Tensor, object_ids: list[int], box_expand: float = 0.1) -> dict:
    """The first frame's ground truth as LIP targets.

    Args:
        mask: ``[H, W]`` object ids at the frames' resolution; object_ids: the K ids to learn.
    Returns:
        ``boxes [K, 4]`` (mask boxes, width/height grown by ``box_expand``), ``labels [K]`` = 1..K
        (label ``k`` is ``object_ids[k - 1]``), ``masks [K, H, W]`` uint8.
    """
    mask = torch.as_tensor(np.array(mask))
    masks = torch.stack([(mask == k) for k in object_ids]).to(torch.uint8)
    return {"boxes": boxes_from_masks(masks, expand=box_expand), "labels": torch.arange(1, len(object_ids) + 1),
            "masks": masks}


def prepare_online_model(model: LIP, num_objects: int, cfg: OnlineConfig) -> LIP:
    """The surgery of §4.2, in place: fresh id layer over background + ``num_objects`` ids, box and
    mask predictors made class-specific (Fig. 5), backbone and Conv-GRU frozen, gradient stopped
    below the id head's last layer, focal loss on ids."""
    reset_id_head(model, num_objects, generator=torch.Generator().manual_seed(cfg.seed))  # reproducible
    model.cfg.num_ids = num_objects
    make_class_specific(model)
    model.freeze(*[p for p in ("backbone", "memory") if getattr(model, p, None) is not None])
    model.roi_heads.stop_grad_below_id = True
    model.roi_heads.id_loss, model.roi_heads.focal_gamma = "focal", cfg.focal_gamma
    return model


class EarlyStopping:
    """Which heads still contribute, given this iteration's per-head losses.

    A head whose loss is under its threshold is ignored (for this iteration, or for good with
    ``sticky``); when every head is ignored, training stops (``done``).
    """

    def __init__(self, thresholds: dict, sticky: bool = False):
        self.thresholds, self.sticky = dict(thresholds), sticky
        self.retired: set = set()
        self.done = False

    def active(self, losses: dict) -> list:
        """``losses``: head -> float. Returns the heads whose loss goes into this step."""
        under = {h for h, v in losses.items() if v < self.thresholds.get(h, 0.0)}
        if self.sticky:
            self.retired |= under
            under = self.retired
        heads = [h for h in losses if h not in under]
        self.done = not heads
        return heads


def warmup_multistep(cfg: OnlineConfig):
    """lr factor at iteration ``it``: linear warm-up from ``warmup_factor``, x``gamma`` per milestone."""

    def factor(it: int) -> float:
        warm = 1.0 if it >= cfg.warmup_iters else cfg.warmup_factor + (1 - cfg.warmup_factor) * it / cfg.warmup_iters
        return warm * cfg.gamma ** sum(it >= m for m in cfg.milestones)

    return factor


@dataclass
class FineTuneResult:
    """What one first-frame fine-tuning did. ``features``: frame 0's cached features (its
    ``state`` is the memory to carry into frame 1)."""

    iterations: int  # optimiser steps taken
    stopped_early: bool  # True when every head went under its threshold before max_iters
    seconds: float
    features: FrameFeatures = field(repr=False)
    losses: dict = field(default_factory=dict)  # the last iteration's per-head losses
    history: list = field(default_factory=list, repr=False)  # per-iteration per-head losses


class OnlineFineTuner:
    """Fine-tunes a LIP (in place) on the first frame of one sequence."""

    def __init__(self, model: LIP, cfg: OnlineConfig | None = None):
        self.model, self.cfg = model, cfg or OnlineConfig()

    def first_frame_features(self, image: torch.Tensor, targets: dict) -> FrameFeatures:
        """Backbone + memory + path augmentation on frame 0, once, at the test scale, after
        ``cfg.warm_first_frame`` passes that only warm the memory state.
        image ``[3, H, W]`` in [0, 1]; the targets come back resized in ``ff.targets``."""
        self.model.eval()
        state = None
        with torch.no_grad():
            for _ in range(self.cfg.warm_first_frame):
                state = self.model.features([image], state).state
            return self.model.features([image], state, [targets])

    def fit(self, image: torch.Tensor, targets: dict, progress: bool = False) -> FineTuneResult:
        """Prepare the model for ``len(targets["labels"])`` objects and fine-tune it on frame 0."""
        from tqdm.auto import tqdm

        cfg, model = self.cfg, self.model
        t0 = time.perf_counter()
        device = next(model.parameters()).device
        targets = {k: v.to(device) for k, v in targets.items()}
        prepare_online_model(model, len(targets["labels"]), cfg)
        ff = self.first_frame_features(image.to(device), targets)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_multistep(cfg))
        stopper = EarlyStopping(cfg.stop_thresholds, cfg.sticky_stop)
        history, steps = [], 0
        model.train()
        with torch.random.fork_rng(devices=[]), tqdm(total=cfg.max_iters, desc="fine-tune", leave=False,
                                                      disable=not progress) as bar:
            torch.manual_seed(cfg.seed)
            for steps in range(cfg.max_iters):
                losses = head_losses(model.heads(ff, ff.targets))
                history.append({h: float(v.detach()) for h, v in losses.items()})
                heads = stopper.active(history[-1])
                if stopper.done:
                    break
                loss = sum(cfg.loss_weights[h] * losses[h] for h in heads)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", heads=len(heads))
            else:
                steps = cfg.max_iters
        model.eval()
        return FineTuneResult(steps, stopper.done, time.perf_counter() - t0, ff,
                              history[-1] if history else {}, history)


def head_losses(losses: dict) -> dict:
    """The model's loss dict -> one loss per prediction head (``HEADS``)."""
    return {h: sum(losses[k] for k in HEAD_LOSSES[h]) for h in HEADS}
