"""Id-head refresh during inference (paper §3.3, §5.1).

    "As probability for id prediction decays over time, we further apply a very light weighted
    fine-tuning process for the last linear layer of the id head during online prediction. If
    there exists a target object detected with a high enough id prediction score, its predicted
    bounding box is set as ground truth for fine-tuning the id head only. By saving and reusing
    intermediate tensors, the speed for fine-tuning is fast." (§3.3)

    "To relieve the id score from decaying over time, we apply fine-tuning for id head for
    maximally 500 iterations with early stopping." (§5.1)

Targets: the kept detections with id score > ``refresh_score``. Every cached proposal of the
frame (plus the target boxes themselves, pooled from the cached feature maps) is labelled with
the id of the target box it overlaps by IoU >= ``refresh_fg_iou``, else background; proposals
that overlap a kept but not confident detection are left out rather than called background.
Each iteration draws the RoIs like offline training does (the model's sampler: up to
``roi_batch_size_per_image`` RoIs, a quarter foreground), so that the loss and its early-stopping
threshold mean what they mean in first-frame fine-tuning. Only the id head's last layer
(``IdHead``: ``cls_score`` and its shortcut projection) is trained, on the cached ``rep`` /
``roi`` tensors, with the focal loss; the backbone, memory and RPN never run again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

from lipnb.model import LIP
from lipnb.model.roi_heads import softmax_focal_loss

from .config import OnlineConfig
from .constraints import Kept
from .detect import FrameDetections


@dataclass
class RefreshResult:
    iterations: int  # optimiser steps taken (0: no confident target, or the loss already low)
    seconds: float
    loss: float | None  # the last focal loss computed (None when nothing was refreshed)
    targets: int  # how many ids served as targets


def refresh_samples(det: FrameDetections, kept: dict[int, Kept], model: LIP, score: float, fg_iou: float):
    """Cached RoI features and id labels for the refresh.

    Returns ``(rep [S, R], roi [S, C, 7, 7], labels [S])`` or ``None`` without confident targets.
    """
    targets = {k: v for k, v in kept.items() if v.score > score}
    if not targets:
        return None
    boxes = det.proposals.new_tensor([t.box for t in targets.values()])  # [T, 4]
    ids = torch.tensor(list(targets), device=boxes.device)
    with torch.no_grad():  # the target boxes themselves, from the cached feature maps (no backbone)
        rep_t, roi_t = model.roi_heads.box_features(det.ff.features, [boxes], det.ff.image_sizes)
    rep, roi = torch.cat([det.rep, rep_t]), torch.cat([det.roi, roi_t])
    rois = torch.cat([det.proposals, boxes])
    iou, match = box_iou(rois, boxes).max(1)
    labels = torch.where(iou >= fg_iou, ids[match], torch.zeros_like(match))
    unsure = [v.box for k, v in kept.items() if k not in targets]
    if unsure:  # neither this id nor surely background
        doubt = box_iou(rois, boxes.new_tensor(unsure)).max(1).values >= fg_iou
        keep = (labels > 0) | ~doubt
        rep, roi, labels = rep[keep], roi[keep], labels[keep]
    return rep.detach(), roi.detach(), labels


class IdHeadRefresher:
    """Refreshes the id head's last layer on one frame's confident detections (in place)."""

    def __init__(self, model: LIP, cfg: OnlineConfig | None = None):
        self.model, self.cfg = model, cfg or OnlineConfig()

    def __call__(self, det: FrameDetections, kept: dict[int, Kept]) -> RefreshResult:
        cfg, id_head = self.cfg, self.model.roi_heads.id_head
        t0 = time.perf_counter()
        samples = refresh_samples(det, kept, self.model, cfg.refresh_score, cfg.refresh_fg_iou)
        if samples is None or cfg.refresh_iters <= 0:
            return RefreshResult(0, time.perf_counter() - t0, None, 0)
        rep, roi, labels = samples
        targets = int(labels.unique().gt(0).sum())
        optimizer = torch.optim.SGD(id_head.parameters(), lr=cfg.refresh_lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        sampler = self.model.roi_heads.fg_bg_sampler
        steps, loss = 0, None
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            for steps in range(cfg.refresh_iters):
                pos, neg = sampler([labels])
                rows = torch.where(pos[0] | neg[0])[0]
                loss = softmax_focal_loss(id_head(rep[rows], roi[rows]), labels[rows], cfg.focal_gamma)
                if loss.item() < cfg.refresh_stop:  # early stopping: the only head is under threshold
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            else:
                steps = cfg.refresh_iters
        return RefreshResult(steps, time.perf_counter() - t0, loss.item(), targets)
