"""Where J&F is lost: the same run with part of the pipeline replaced by the ground truth.

A diagnostic, not part of the paper. Beside the real output, each frame is also segmented twice
more from the same features (same fine-tuned model, same carried memory state):

* ``oracle-boxes``: every object present in the frame's ground truth gets the mask head's mask
  inside its ground-truth box (its class-specific mask). What remains is the mask head's error.
* ``oracle-proposals``: every such object gets the mask of the proposal that, refined by that
  object's class-specific box regression, overlaps its ground-truth box most. What remains is
  the error of RPN, box head and mask head with identities (id head, constraints) given.

The gaps real -> oracle-proposals -> oracle-boxes split the loss between identity/selection,
localisation and masks. Needs every frame's ground truth (DAVIS train/val)::

    python -m lipnb infer --davis ../shared/data/davis2016 --year 2016 --frames-resolution 240p \\
        --checkpoint runs/finetune/last.pt --out /tmp/online --oracle
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou

from lipnb.data.transforms import boxes_from_masks
from lipnb.model import LIP

from lipnb.online.compose import compose_label_map
from lipnb.online.detect import FrameDetections, instance_masks

MODES = ("oracle-boxes", "oracle-proposals")


class OracleFrames:
    """Writes the oracle outputs of one sequence, frame by frame (``segment_sequence``'s ``on_frame``).

    Args:
        read_mask: ``i`` -> ground-truth ids ``[H0, W0]`` at the output resolution.
        write: ``(mode, i, ids uint8 [H0, W0])`` for each of ``MODES``.
    """

    def __init__(self, read_mask: Callable[[int], np.ndarray], write: Callable[[str, int, np.ndarray], None],
                 box_expand: float = 0.1, threshold: float = 0.5):
        self.read_mask, self.write, self.box_expand, self.threshold = read_mask, write, box_expand, threshold

    @torch.no_grad()
    def __call__(self, i: int, model: LIP, det: FrameDetections | None, object_ids: list[int]) -> None:
        """Frame ``i`` (``det`` None: frame 0, the given mask); ``object_ids[k - 1]`` is network
        label ``k``; ``model``: the fine-tuned one. Boxes are grown by ``box_expand``, like the
        training targets."""
        truth = self.read_mask(i)
        if det is None:
            for mode in MODES:
                self.write(mode, i, truth.astype(np.uint8))
            return
        out_size = tuple(truth.shape)
        present = [(k, oid) for k, oid in enumerate(object_ids, 1) if (truth == oid).any()]
        if not present:
            for mode in MODES:
                self.write(mode, i, np.zeros(out_size, np.uint8))
            return
        labels = torch.tensor([k for k, _ in present])
        boxes = true_boxes(truth, [oid for _, oid in present], det.ff.image_sizes[0], self.box_expand)
        device = det.proposals.device
        boxes, labels = boxes.to(device), labels.to(device)
        self._write("oracle-boxes", i, model, det, boxes, labels, present, out_size)
        self._write("oracle-proposals", i, model, det, best_proposals(model, det, boxes, labels), labels, present,
                    out_size)

    def _write(self, mode, i, model, det, boxes, labels, present, out_size):
        masks = instance_masks(model, det.ff, boxes, labels, out_size).cpu()
        ids = [oid for _, oid in present]
        self.write(mode, i, compose_label_map(masks, ids, [1.0] * len(ids), out_size, self.threshold).numpy())


def true_boxes(truth: np.ndarray, object_ids: list[int], image_size, box_expand: float = 0.1) -> torch.Tensor:
    """The boxes ``[K, 4]`` of ``object_ids`` in ``truth`` (ids ``[H0, W0]``), grown by ``box_expand``
    like the training targets, in the coordinates of the network's input of size ``image_size`` (h, w)."""
    gt = torch.stack([torch.from_numpy(truth == oid) for oid in object_ids])
    return resize_boxes(boxes_from_masks(gt, box_expand), list(truth.shape), list(image_size))


@torch.no_grad()
def best_proposals(model: LIP, det: FrameDetections, boxes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """For each ground-truth box ``[K, 4]`` (network input coordinates) and its label ``[K]``: the
    proposal, decoded with that label's class-specific box regression, of highest IoU. ``[K, 4]``."""
    heads = model.roi_heads
    decoded = heads.box_coder.decode(heads.box_deltas(det.rep, det.roi), [det.proposals])  # [P, N + 1, 4]
    out = []
    for box, label in zip(boxes, labels):
        candidates = decoded[:, int(label)]  # [P, 4]
        out.append(candidates[box_iou(box[None], candidates)[0].argmax()])
    return torch.stack(out)


def oracle_hook(dataset, names: list, out_dir: Path, box_expand: float = 0.1, threshold: float = 0.5) -> Callable:
    """``infer_davis``'s ``on_sequence`` that writes ``out_dir/<mode>/<seq>/`` for each of
    :data:`MODES` beside the real output. Checks first, before any work, that every sequence of
    ``names`` has every frame's mask."""
    partial = [n for n in names if not dataset[n].fully_annotated]
    if partial:
        raise ValueError(f"the oracle needs every frame's mask; not fully annotated: {partial}")

    def on_sequence(seq):
        write = lambda mode, i, ids: seq.write_result(Path(out_dir) / mode, i, ids)  # noqa: E731
        return OracleFrames(seq.read_mask, write, box_expand, threshold)

    return on_sequence
