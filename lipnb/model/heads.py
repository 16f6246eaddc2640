"""Prediction heads (paper §3.1, §4.1.2, Fig. 4, Fig. 5).

    box / id branch:  RoIAlign 7x7 -> BoxHead (4 conv + 1 fc, GN) -> representation
                        -> IdHead        (id logits,   [R, num_ids + 1])
                        -> BoxPredictor  (box deltas,  [R, 4 * slots])
    mask branch:      RoIAlign 28x28 -> MaskHead (4 conv, GN) -> MaskPredictor (deconv x2, 1x1 conv)

Shortcut (Fig. 4): "In order to let output from Conv-GRU module have more direct influence
towards final prediction, we add a shortcut connection between ROI aligned feature and head
logits by simple addition operation." The RoI-aligned feature is mapped to the logits' shape by
a learned projection (a linear layer for the box/id logits, a stride-2 deconvolution for the
mask logits) and added. Projections start at zero, so an untrained shortcut leaves the plain
Mask R-CNN heads unchanged (and the parity test with torchvision holds).

Class-agnostic vs class-specific (§4.1, §4.2, Fig. 5): offline, ``BoxPredictor`` has 2 slots
(background, foreground) and ``MaskPredictor`` 1 channel; online, :mod:`.class_specific` copies
the foreground weights into one slot per id. ``LIPRoIHeads`` reads the slot count from the weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from .backbone import GroupNorm


def box_head(cfg, in_channels: int) -> FastRCNNConvFCHead:
    """torchvision 4conv1fc head with GN: [R, C, 7, 7] -> [R, representation_size]."""
    return FastRCNNConvFCHead(
        (in_channels, cfg.box_roi_size, cfg.box_roi_size),
        [cfg.box_head_channels] * cfg.box_head_convs,
        [cfg.representation_size],
        norm_layer=GroupNorm(cfg.gn_groups),
    )


def mask_head(cfg, in_channels: int) -> MaskRCNNHeads:
    """torchvision mask head with GN: [R, C, M, M] -> [R, mask_head_channels, M, M]."""
    return MaskRCNNHeads(in_channels, [cfg.mask_head_channels] * cfg.mask_head_convs, 1,
                         norm_layer=GroupNorm(cfg.gn_groups))


class Shortcut(nn.Module):
    """Fig. 4: a learned projection of the flattened RoI feature, added to a head's logits.
    forward([R, C, S, S]) -> [R, out_features]; zero at initialisation."""

    def __init__(self, roi_features: int, out_features: int):
        super().__init__()
        self.proj = nn.Linear(roi_features, out_features)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, roi: torch.Tensor) -> torch.Tensor:
        return self.proj(roi.flatten(1))


class IdHead(nn.Module):
    """The class head turned id head (§3.1): "different objects are associated with different
    ids". ``cls_score`` is "the last linear layer right before softmax" that §4.1.2 and §4.2
    replace (:func:`.class_specific.reset_id_head`).

    forward(rep [R, D], roi [R, C, 7, 7]) -> id logits [R, num_ids + 1] (column 0 = background).
    """

    def __init__(self, representation_size: int, roi_features: int, num_ids: int, shortcut: bool = True):
        super().__init__()
        self.cls_score = nn.Linear(representation_size, num_ids + 1)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.zeros_(self.cls_score.bias)
        self.shortcut = Shortcut(roi_features, num_ids + 1) if shortcut else None

    @property
    def num_ids(self) -> int:
        return self.cls_score.out_features - 1

    def forward(self, rep: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        logits = self.cls_score(rep)
        return logits if self.shortcut is None else logits + self.shortcut(roi)


class BoxPredictor(nn.Module):
    """Box regression: forward(rep [R, D], roi [R, C, 7, 7]) -> deltas [R, 4 * slots];
    ``slots`` = 2 class-agnostic (background, foreground), ``num_ids + 1`` class-specific."""

    def __init__(self, representation_size: int, roi_features: int, slots: int, shortcut: bool = True):
        super().__init__()
        self.bbox_pred = nn.Linear(representation_size, 4 * slots)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)
        self.shortcut = Shortcut(roi_features, 4 * slots) if shortcut else None

    @property
    def slots(self) -> int:
        return self.bbox_pred.out_features // 4

    def forward(self, rep: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        deltas = self.bbox_pred(rep)
        return deltas if self.shortcut is None else deltas + self.shortcut(roi)


class MaskPredictor(nn.Module):
    """torchvision's ``MaskRCNNPredictor`` (2x2 deconv, ReLU, 1x1 conv) plus the Fig. 4 shortcut.

    forward(x [R, C_head, M, M], roi [R, C, M, M]) -> mask logits [R, K, 2M, 2M];
    ``K`` = 1 class-agnostic, ``num_ids + 1`` class-specific. The shortcut is a 2x2 stride-2
    deconvolution of the RoI-aligned feature (zero at initialisation).
    """

    def __init__(self, head_channels: int, roi_channels: int, num_masks: int, shortcut: bool = True):
        super().__init__()
        self.predictor = MaskRCNNPredictor(head_channels, head_channels, num_masks)
        # torchvision's fan-out init gives std sqrt(2) per weight for a single agnostic output
        # channel (initial mask losses ~10); Detectron's Gaussian std 0.001 starts near 0.69.
        nn.init.normal_(self.predictor.mask_fcn_logits.weight, std=0.001)
        nn.init.zeros_(self.predictor.mask_fcn_logits.bias)
        self.shortcut = nn.ConvTranspose2d(roi_channels, num_masks, 2, 2) if shortcut else None
        if self.shortcut is not None:
            nn.init.zeros_(self.shortcut.weight)
            nn.init.zeros_(self.shortcut.bias)

    @property
    def mask_fcn_logits(self) -> nn.Conv2d:
        return self.predictor.mask_fcn_logits

    @property
    def num_masks(self) -> int:
        return self.mask_fcn_logits.out_channels

    def forward(self, x: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        logits = self.predictor(x)
        return logits if self.shortcut is None else logits + self.shortcut(roi)
