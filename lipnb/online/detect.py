"""One frame's candidate detections per id, with the RoI features kept for the id-head refresh.

The model's own eval path (``LIP.heads``) returns finished detections; online inference needs
two more things from the same pass, so it walks the pieces itself (``LIP.rpn``,
``roi_heads.box_features`` / ``id_logits`` / ``box_deltas`` / ``mask_logits``):

- which RoI each detection comes from: the (RoI, id) pairs of one RoI are one object, and the
  one-maximum matching must not give that object to two ids;
- the RoI features (``rep``, ``roi``) of every proposal: "By saving and reusing intermediate
  tensors, the speed for fine-tuning is fast." (§3.3)

Candidates are per id, as in §5.1: "For each id, we select 10 detected objects that have id
score above 0.2": every (RoI, id) pair with id score > ``min_score``, decoded with that id's
class-specific box, per-id NMS; masks are computed later, for the kept detections only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops

from lipnb.model import LIP
from lipnb.model.lip import FrameFeatures


@dataclass
class FrameDetections:
    """Candidates of one frame, in the coordinates of ``ff.images`` (the network's input).

    boxes ``[D, 4]``; labels ``[D]`` (id, 1..N); scores ``[D]`` (id score); sources ``[D]``
    (proposal index); id_scores ``[D, N + 1]`` with only column ``labels[d]`` non-zero (what
    :func:`lipnb.online.constraints.select_instances` reads); and the cache for the refresh:
    proposals ``[P, 4]``, rep ``[P, R]``, roi ``[P, C, 7, 7]``, the frame's features ``ff``.
    """

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    sources: torch.Tensor
    id_scores: torch.Tensor
    proposals: torch.Tensor
    rep: torch.Tensor
    roi: torch.Tensor
    ff: FrameFeatures


@torch.no_grad()
def detect(model: LIP, ff: FrameFeatures, min_score: float = 0.2) -> FrameDetections:
    """RPN + box/id heads on one frame's features (batch of 1); see :class:`FrameDetections`."""
    heads = model.roi_heads
    proposals = model.rpn(ff.images, ff.features)[0][0]  # [P, 4]
    rep, roi = heads.box_features(ff.features, [proposals], ff.image_sizes)
    probs = F.softmax(heads.id_logits(rep, roi), -1)  # [P, N + 1]
    boxes = heads.box_coder.decode(heads.box_deltas(rep, roi), [proposals])  # [P, N + 1, 4]
    boxes = box_ops.clip_boxes_to_image(boxes, ff.image_sizes[0])
    num_ids = probs.shape[1] - 1
    rois, labels = torch.where(probs[:, 1:] > min_score)  # (RoI, id - 1) pairs
    labels = labels + 1
    boxes, scores = boxes[rois, labels], probs[rois, labels]
    keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    keep = keep[box_ops.batched_nms(boxes[keep], scores[keep], labels[keep], heads.nms_thresh)]
    rois, labels, boxes, scores = rois[keep], labels[keep], boxes[keep], scores[keep]
    id_scores = scores.new_zeros(len(keep), num_ids + 1)
    id_scores[torch.arange(len(keep)), labels] = scores
    return FrameDetections(boxes, labels, scores, rois, id_scores, proposals, rep, roi, ff)


@torch.no_grad()
def instance_masks(model: LIP, ff: FrameFeatures, boxes: torch.Tensor, labels: torch.Tensor,
                   out_size: tuple[int, int]) -> torch.Tensor:
    """Mask probabilities of kept detections, pasted at ``out_size``.

    Args:
        boxes: ``[K, 4]`` in ``ff.images`` coordinates; labels: ``[K]`` ids (their class-specific mask).
        out_size: ``(H, W)`` of the output (the annotations', which may differ from the frames').
    Returns:
        ``[K, H, W]`` probabilities.
    """
    if len(boxes) == 0:
        return boxes.new_zeros((0, *out_size))
    logits = model.roi_heads.mask_logits(ff.features, [boxes], ff.image_sizes)  # [K, N + 1, M, M]
    probs = logits[torch.arange(len(labels)), labels].sigmoid()[:, None]  # [K, 1, M, M]
    out_boxes = resize_boxes(boxes, list(ff.image_sizes[0]), list(out_size))
    return paste_masks_in_image(probs, out_boxes, out_size)[:, 0]
