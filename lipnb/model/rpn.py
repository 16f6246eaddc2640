"""Multi-level region proposal network (paper §3.1, §5.1), torchvision's as it is.

    "RPN adopts 5 aspect ratios (0.2, 0.5, 1, 2, 5) and 5 scales (32^2, 64^2, 128^2, 256^2, 512^2)."

One anchor size per pyramid level (P2 -> 32, ..., P6 -> 512), the 5 ratios at every level, so
``RPNHead`` predicts 5 anchors per location. torchvision's ratio is height / width.

Under bf16 / fp16 autocast the anchors, the RPN's outputs and so the proposals stay float32
(as Detectron2 decodes boxes): torchvision would make them bfloat16, whose 8-bit mantissa puts
anchor corners of a 480x864 frame up to 4 px off (0.35 px on average) and decodes the proposals
in that precision. Float32 runs are unchanged (the casts do nothing).
"""

from __future__ import annotations

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead


_HALF = (torch.float16, torch.bfloat16)


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if autocast made it float16 / bfloat16, else ``t`` itself."""
    return t.float() if t.dtype in _HALF else t


class Float32AnchorGenerator(AnchorGenerator):
    """torchvision's anchors, in float32 even when the feature maps are bfloat16 / float16."""

    def set_cell_anchors(self, dtype: torch.dtype, device: torch.device):
        super().set_cell_anchors(torch.float32 if dtype in _HALF else dtype, device)


class Float32RPNHead(RPNHead):
    """torchvision's RPN head (same weights and names) whose objectness and deltas leave in float32."""

    def forward(self, x: list):
        logits, deltas = super().forward(x)
        return [full_precision(t) for t in logits], [full_precision(t) for t in deltas]


def anchor_generator(cfg) -> AnchorGenerator:
    """Anchors of size ``cfg.anchor_sizes[l]`` and ratios ``cfg.aspect_ratios`` on level ``l``."""
    sizes = tuple((int(s),) for s in cfg.anchor_sizes)
    ratios = (tuple(float(r) for r in cfg.aspect_ratios),) * len(sizes)
    return Float32AnchorGenerator(sizes, ratios)


def build_rpn(cfg, in_channels: int) -> RegionProposalNetwork:
    """torchvision RPN over all 5 levels of ``in_channels`` channels.

    forward(images: ImageList, features: OrderedDict of 5 [B, C, H_l, W_l], targets) ->
    (proposals: list of B [P, 4] boxes, losses {loss_objectness, loss_rpn_box_reg} in training).
    """
    anchors = anchor_generator(cfg)
    head = Float32RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        anchors, head,
        fg_iou_thresh=cfg.rpn_fg_iou_thresh, bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image, positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n=dict(training=cfg.rpn_pre_nms_top_n_train, testing=cfg.rpn_pre_nms_top_n_test),
        post_nms_top_n=dict(training=cfg.rpn_post_nms_top_n_train, testing=cfg.rpn_post_nms_top_n_test),
        nms_thresh=cfg.rpn_nms_thresh,
    )
