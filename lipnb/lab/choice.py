"""How well "the highest id score" chooses: per frame, the kept candidate against the best one.

A diagnostic, not part of the paper. :class:`ChoiceLog` is ``segment_sequence``'s ``on_frame``
hook; on each frame 1.. it records, for the first tracked object, how many candidates the id head
put above ``min_score``, the score and box IoU (with the object's true box, grown like the training
boxes) of the highest-scored candidate, and the IoU and score of the candidate that overlaps the
true box most. Flat scores with a large IoU gap mean the id head cannot tell the object's box from
its neighbours (what the authors' early-stopping threshold did to the davis-cpu model)::

    log = ChoiceLog(seq.read_mask)
    segment_sequence(model, seq.read_frame, seq.num_frames, seq.first_mask(), write, cfg, on_frame=log)
    log.summary()   # {"frames", "candidates", "top score", "IoU(top)", "IoU(best)", "score(best)"}
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torchvision.ops import box_iou

from lipnb.lab.oracle import true_boxes


class ChoiceLog:
    """Rows ``(frame, candidates, top score, IoU(top), IoU(best), score(best))``, one per frame in
    which the first tracked object is present and has a candidate."""

    def __init__(self, read_mask: Callable[[int], np.ndarray], box_expand: float = 0.1):
        self.read_mask, self.box_expand, self.rows = read_mask, box_expand, []

    @torch.no_grad()
    def __call__(self, i: int, model, det, object_ids: list[int]) -> None:
        if det is None or len(det.boxes) == 0:
            return
        truth = self.read_mask(i)
        if not (truth == object_ids[0]).any():
            return
        box = true_boxes(truth, object_ids[:1], det.ff.image_sizes[0], self.box_expand)  # [1, 4]
        iou = box_iou(det.boxes, box.to(det.boxes.device))[:, 0]  # [D]
        top, best = int(det.scores.argmax()), int(iou.argmax())
        self.rows.append((i, len(det.boxes), float(det.scores[top]), float(iou[top]), float(iou[best]),
                          float(det.scores[best])))

    def summary(self) -> dict:
        """Means over the logged frames."""
        r = np.array(self.rows, dtype=float).reshape(-1, 6)
        names = ("candidates", "top score", "IoU(top)", "IoU(best)", "score(best)")
        return {"frames": len(r), **{n: float(r[:, k + 1].mean()) if len(r) else float("nan")
                                     for k, n in enumerate(names)}}
