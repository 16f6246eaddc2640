"""Multi-level region proposal network (paper §3.1, §5.1), torchvision's as it is.

    "RPN adopts 5 aspect ratios (0.2, 0.5, 1, 2, 5) and 5 scales (32^2, 64^2, 128^2, 256^2, 512^2)."

One anchor size per pyramid level (P2 -> 32, ..., P6 -> 512), the 5 ratios at every level, so
``RPNHead`` predicts 5 anchors per location. torchvision's ratio is height / width.
"""

from __future__ import annotations

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead


def anchor_generator(cfg) -> AnchorGenerator:
    """Anchors of size ``cfg.anchor_sizes[l]`` and ratios ``cfg.aspect_ratios`` on level ``l``."""
    sizes = tuple((int(s),) for s in cfg.anchor_sizes)
    ratios = (tuple(float(r) for r in cfg.aspect_ratios),) * len(sizes)
    return AnchorGenerator(sizes, ratios)


def build_rpn(cfg, in_channels: int) -> RegionProposalNetwork:
    """torchvision RPN over all 5 levels of ``in_channels`` channels.

    forward(images: ImageList, features: OrderedDict of 5 [B, C, H_l, W_l], targets) ->
    (proposals: list of B [P, 4] boxes, losses {loss_objectness, loss_rpn_box_reg} in training).
    """
    anchors = anchor_generator(cfg)
    head = RPNHead(in_channels, anchors.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        anchors, head,
        fg_iou_thresh=cfg.rpn_fg_iou_thresh, bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image, positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n=dict(training=cfg.rpn_pre_nms_top_n_train, testing=cfg.rpn_pre_nms_top_n_test),
        post_nms_top_n=dict(training=cfg.rpn_post_nms_top_n_train, testing=cfg.rpn_post_nms_top_n_test),
        nms_thresh=cfg.rpn_nms_thresh,
    )
