"""The two constraints of online inference (paper §3.3, values from §5.1).

*One maximum*: "For each instance, there should be at most one object detected. This
constraint is achieved by selecting highest id prediction score." Per id we look at up to
``top_k`` = 10 detections whose id score exceeds ``min_score`` = 0.2 and keep the best.

*Location continuity*: "If an instance is detected in the previous frame with high enough id
prediction score, the location of the current detection should not be far from its previous
location." A candidate is dropped when the id was kept in the previous frame with score
> ``continuity_score`` = 0.4 and the candidate's box IoU with that box is < ``continuity_iou`` = 0.3.

A detection is one object, so it is given to at most one id: when two ids want the same
detection, the higher id score wins and the other id falls back to its next candidate
(greedy matching over (id, detection) pairs by score; equal to the per-id maximum when the
ids do not compete). Detections that share a ``source`` (the (RoI, id) pairs of one RoI, each
with its id's class-specific box) are one object in this sense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou


@dataclass(frozen=True)
class Kept:
    """The detection kept for one id in one frame."""

    index: int  # row in the frame's detections
    score: float  # id score of that detection
    box: tuple[float, float, float, float]  # x1, y1, x2, y2


def select_instances(
    boxes: torch.Tensor,
    id_scores: torch.Tensor,
    ids: list[int],
    previous: dict[int, Kept] | None = None,
    *,
    min_score: float = 0.2,
    top_k: int = 10,
    continuity_score: float = 0.4,
    continuity_iou: float = 0.3,
    sources: torch.Tensor | None = None,
) -> dict[int, Kept]:
    """Apply location continuity, then one maximum, to one frame's detections.

    Args:
        boxes: ``[D, 4]`` detected boxes (x1, y1, x2, y2).
        id_scores: ``[D, num_ids + 1]`` id probabilities; column ``k`` is id ``k``, column 0 background.
        ids: the object ids of this sequence to look for.
        previous: what this function returned for the previous frame (``None`` on the first).
        sources: ``[D]`` the object (e.g. RoI) each detection comes from; default: its own row.
    Returns:
        ``{id: Kept}`` for every id that has a surviving candidate; absent ids were not found.
    """
    previous = previous or {}
    pairs = []  # (score, id, detection index)
    for k in ids:
        candidates = candidates_for_id(boxes, id_scores[:, k], previous.get(k), min_score, top_k,
                                       continuity_score, continuity_iou)
        pairs += [(float(id_scores[i, k]), k, i) for i in candidates]
    kept: dict[int, Kept] = {}
    taken: set[int] = set()
    for score, k, i in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        source = i if sources is None else int(sources[i])
        if k in kept or source in taken:
            continue
        kept[k] = Kept(i, score, tuple(float(v) for v in boxes[i]))
        taken.add(source)
    return kept


def candidates_for_id(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    previous: Kept | None,
    min_score: float,
    top_k: int,
    continuity_score: float,
    continuity_iou: float,
) -> list[int]:
    """Indices of the detections that may become this id, best first.

    Args:
        boxes: ``[D, 4]``; scores: ``[D]`` this id's score for each detection.
        previous: the id's detection in the previous frame, if it was kept there.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[scores[order] > min_score][:top_k]
    if previous is not None and previous.score > continuity_score and len(order):
        iou = box_iou(boxes[order], boxes.new_tensor([previous.box]))[:, 0]
        order = order[iou >= continuity_iou]
    return order.tolist()
