"""Second stage: RoI sampling, the box/id and mask heads, their losses and the detections.

A subclass of torchvision's ``RoIHeads`` that keeps its proposal matching, sampling
(``select_training_samples``: "512 ROIs with foreground-to-background ratio 1:3"), box coder,
``fastrcnn_loss``, ``maskrcnn_loss`` and ``maskrcnn_inference``; what it adds:

- the heads take the RoI-aligned feature too (Fig. 4 shortcut);
- class-agnostic predictors are expanded to one slot per id by indexing (every id shares the
  foreground weights), so torchvision's losses and decoding apply unchanged, and making them
  class-specific (Fig. 5) changes nothing at conversion time;
- detections carry the full id softmax row (``id_scores``), which online inference needs;
- the id loss may be the focal loss (§4.2) and gradients may stop below the id head's last
  layer (§5.1 online fine-tuning: ``stop_grad_below_id``).

RoIs are pooled from the 4 bottom levels: "All 5 layers are utilized for multi-level RPN, but
only 4 bottom layers are used for multi-level ROIs." (Fig. 3)
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss, maskrcnn_inference, maskrcnn_loss
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops

from .heads import BoxPredictor, IdHead, MaskPredictor, box_head, mask_head
from .rpn import full_precision

ROI_LEVELS = ["0", "1", "2", "3"]  # N2..N5


def expand_slots(x: torch.Tensor, num_classes: int, per_slot: int = 1) -> torch.Tensor:
    """Class-agnostic outputs -> one slot per class, by indexing (no new weights).

    Box deltas ``[R, 2 * 4]`` (bg, fg) -> ``[R, num_classes * 4]`` with every id taking fg;
    mask logits ``[R, 1, M, M]`` -> ``[R, num_classes, M, M]``. Class-specific input is returned as is.
    """
    slots = x.shape[1] // per_slot
    if slots == num_classes:
        return x
    if per_slot == 4 and slots == 2:  # box deltas
        idx = torch.ones(num_classes, dtype=torch.long, device=x.device)
        idx[0] = 0
        return x.view(x.shape[0], 2, 4)[:, idx].reshape(x.shape[0], num_classes * 4)
    if per_slot == 1 and slots == 1:  # mask logits
        return x.expand(x.shape[0], num_classes, *x.shape[2:])
    raise ValueError(f"cannot expand {slots} slots to {num_classes} classes")


def keep_at_most(index: torch.Tensor, k: Optional[int]) -> torch.Tensor:
    """A random subset of at most ``k`` entries of ``index [N]`` (all of it when ``k`` is None or
    ``N <= k``), drawn from torch's global generator like the RoI sampler's draws."""
    if k is None or index.numel() <= k:
        return index
    return index[torch.randperm(index.numel(), device=index.device)[:k]]


def softmax_focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss [33] on the id softmax: mean over RoIs of ``-(1 - p_t)^gamma * log p_t``."""
    logp = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


class LIPRoIHeads(RoIHeads):
    """forward(features: OrderedDict with keys "0".."3" [B, C, H_l, W_l] (and "pool", unused),
    proposals: list of B [P, 4], image_shapes: list of B (h, w), targets) ->
    (detections: list of B dicts, losses: {loss_id, loss_box_reg, loss_mask} in training).

    Detections (eval), in the coordinates of ``image_shapes``: ``boxes [D, 4]``, ``labels [D]``
    (id), ``scores [D]`` (id score), ``id_scores [D, num_ids + 1]`` (softmax), ``masks
    [D, 1, 2M, 2M]`` (probabilities inside the box; LIP pastes them into the image).
    """

    def __init__(self, cfg, in_channels: int):
        box_roi_features = in_channels * cfg.box_roi_size ** 2
        super().__init__(
            box_roi_pool=MultiScaleRoIAlign(ROI_LEVELS, cfg.box_roi_size, sampling_ratio=2),
            box_head=box_head(cfg, in_channels),
            box_predictor=None,
            fg_iou_thresh=cfg.box_fg_iou_thresh, bg_iou_thresh=cfg.box_bg_iou_thresh,
            batch_size_per_image=cfg.roi_batch_size_per_image, positive_fraction=cfg.roi_positive_fraction,
            bbox_reg_weights=cfg.bbox_reg_weights,
            score_thresh=cfg.box_score_thresh, nms_thresh=cfg.box_nms_thresh,
            detections_per_img=cfg.detections_per_img,
            mask_roi_pool=MultiScaleRoIAlign(ROI_LEVELS, cfg.mask_roi_size, sampling_ratio=2),
            mask_head=mask_head(cfg, in_channels),
            mask_predictor=None,
        )
        slots = cfg.num_ids + 1 if cfg.class_specific else 2
        masks = cfg.num_ids + 1 if cfg.class_specific else 1
        self.id_head = IdHead(cfg.representation_size, box_roi_features, cfg.num_ids, cfg.shortcut)
        self.box_predictor = BoxPredictor(cfg.representation_size, box_roi_features, slots, cfg.shortcut)
        self.mask_predictor = MaskPredictor(cfg.mask_head_channels, in_channels, masks, cfg.shortcut)
        self.id_loss = cfg.id_loss
        self.focal_gamma = cfg.focal_gamma
        self.stop_grad_below_id = False  # online fine-tuning: train only the id head's last layer
        if cfg.mask_rois_per_image is not None and cfg.mask_rois_per_image < 1:
            raise ValueError(f"mask_rois_per_image must be None or >= 1, got {cfg.mask_rois_per_image}")
        self.mask_rois_per_image = cfg.mask_rois_per_image

    @property
    def class_specific(self) -> bool:
        return self.box_predictor.slots > 2 or self.mask_predictor.num_masks > 1

    # ---- the pieces, usable on cached features (online fine-tuning and the id-head refresh) ----

    def box_features(self, features, boxes: list, image_shapes: list):
        """RoIAlign 7x7 + BoxHead: -> (rep [R, D], roi [R, C, 7, 7]). Cache these to refresh the id head."""
        roi = self.box_roi_pool(features, boxes, image_shapes)
        return self.box_head(roi), roi

    def id_logits(self, rep: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """[R, num_ids + 1]; with ``stop_grad_below_id`` nothing below the id head gets gradients."""
        if self.stop_grad_below_id:
            rep, roi = rep.detach(), roi.detach()
        return full_precision(self.id_head(rep, roi))  # float32 under autocast, as the RPN's

    def box_deltas(self, rep: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """[R, (num_ids + 1) * 4], agnostic weights expanded to every id."""
        return expand_slots(full_precision(self.box_predictor(rep, roi)), self.id_head.num_ids + 1, per_slot=4)

    def mask_logits(self, features, boxes: list, image_shapes: list) -> torch.Tensor:
        """RoIAlign MxM (``cfg.mask_roi_size``) + MaskHead + MaskPredictor: -> [R, num_ids + 1, 2M, 2M]."""
        roi = self.mask_roi_pool(features, boxes, image_shapes)
        logits = self.mask_predictor(self.mask_head(roi), roi)
        return expand_slots(logits, self.id_head.num_ids + 1)

    # ---- the whole stage ----

    def forward(self, features, proposals: list, image_shapes: list, targets: Optional[list] = None):
        if self.training:
            if targets is None:
                raise ValueError("training needs targets")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        rep, roi = self.box_features(features, proposals, image_shapes)
        id_logits, deltas = self.id_logits(rep, roi), self.box_deltas(rep, roi)

        if not self.training:
            detections = self.postprocess_detections(id_logits, deltas, proposals, image_shapes)
            boxes = [d["boxes"] for d in detections]
            logits = self.mask_logits(features, boxes, image_shapes)
            for d, probs in zip(detections, maskrcnn_inference(logits, [d["labels"] for d in detections])):
                d["masks"] = probs
            return detections, {}

        loss_ce, loss_box = fastrcnn_loss(id_logits, deltas, labels, regression_targets)
        if self.id_loss == "focal":
            loss_ce = softmax_focal_loss(id_logits, torch.cat(labels), self.focal_gamma)
        # the mask branch trains on the positive RoIs only (at most mask_rois_per_image of them)
        pos = [keep_at_most(torch.where(lab > 0)[0], self.mask_rois_per_image) for lab in labels]
        mask_boxes = [p[i] for p, i in zip(proposals, pos)]
        logits = self.mask_logits(features, mask_boxes, image_shapes)
        loss_mask = maskrcnn_loss(logits, mask_boxes, [t["masks"] for t in targets],
                                  [t["labels"] for t in targets], [m[i] for m, i in zip(matched_idxs, pos)])
        return [], {"loss_id": loss_ce, "loss_box_reg": loss_box, "loss_mask": loss_mask}

    def postprocess_detections(self, id_logits, deltas, proposals, image_shapes):
        """Per image: decode every id's box, keep (RoI, id) pairs with id score > score_thresh,
        per-id NMS, at most ``detections_per_img``; each keeps its RoI's whole softmax row."""
        num_classes = id_logits.shape[-1]
        counts = [len(p) for p in proposals]
        all_boxes = self.box_coder.decode(deltas, proposals).split(counts)
        all_probs = F.softmax(id_logits, -1).split(counts)
        detections = []
        for boxes, probs, shape in zip(all_boxes, all_probs, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)[:, 1:].reshape(-1, 4)
            n = probs.shape[0]
            rois = torch.arange(n, device=probs.device)[:, None].expand(n, num_classes - 1).reshape(-1)
            labels = torch.arange(1, num_classes, device=probs.device)[None].expand(n, -1).reshape(-1)
            scores = probs[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
            keep = keep[box_ops.batched_nms(boxes[keep], scores[keep], labels[keep], self.nms_thresh)]
            keep = keep[: self.detections_per_img]
            detections.append({"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep],
                               "id_scores": probs[rois[keep]]})
        return detections
