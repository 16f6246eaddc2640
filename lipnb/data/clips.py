"""DAVIS clips for fine-tuning the memory (paper §4.1.2, §5.1).

A clip is ``clip_length`` (8) consecutive frames of a training sequence, played forwards
or, as the paper does for more data ("there is no causal reasoning in the task"),
backwards. Each clip is scaled once (shorter side drawn from the pre-training sizes) and
possibly mirrored, identically for all its frames. Targets per frame:

* ``labels``: the training-set id of each visible object; ids enumerate every
  ``(sequence, object)`` pair of the training set, ``1..num_ids`` (0 is background);
* ``masks``: the object's mask at the clip's scale;
* ``boxes``: the mask's tight box with width and height expanded by ``box_expand`` (10 %).

Objects whose mask is empty in a frame (fully occluded, out of view) are absent from that
frame's target. Works on any :class:`lipnb.data.davis.DavisDataset` (DAVIS 2016 and 2017,
the procedural videos).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from lipnb.data import transforms as T


@dataclass(frozen=True)
class ClipRef:
    """Which frames a clip holds: ``frames`` of ``sequence``, in playing order."""

    sequence: str
    start: int
    reversed: bool
    frames: tuple[int, ...]


class DavisClips(torch.utils.data.Dataset):
    """``dataset.get(i, rng)`` -> a clip dict (see :meth:`clip`); ``dataset[i]`` is clip ``i``
    at its original size, unflipped.

    Args:
        davis: a :class:`DavisDataset` (or a list of :class:`DavisSequence`).
        clip_length: frames per clip (8 in the paper).
        stride: distance between the first frames of consecutive clips of a sequence.
        reverse: also play every clip backwards.
        scales, max_size, flip: augmentation, as in pre-training.
        box_expand: growth of box width and height over the mask's tight box.
    """

    def __init__(self, davis, clip_length: int = 8, stride: int = 1, reverse: bool = True,
                 scales=T.PAPER_SCALES, max_size: int = T.PAPER_MAX_SIZE, flip: bool = True,
                 box_expand: float = 0.1):
        if hasattr(davis, "sequences"):
            self.sequences = {name: davis[name] for name in davis.sequences}
        else:
            self.sequences = {seq.name: seq for seq in davis}
        self.clip_length, self.scales, self.max_size = int(clip_length), tuple(scales), int(max_size)
        self.flip, self.box_expand = flip, float(box_expand)
        # ids = (sequence, object) over the whole set, in a stable order
        self.ids: list[tuple[str, int]] = [(name, int(o)) for name in sorted(self.sequences)
                                           for o in sorted(self.sequences[name].object_ids)]
        self.id_of = {key: i + 1 for i, key in enumerate(self.ids)}
        self.refs: list[ClipRef] = []
        for name in sorted(self.sequences):
            n = self.sequences[name].num_frames
            for start in range(0, n - self.clip_length + 1, max(1, int(stride))):
                forward = tuple(range(start, start + self.clip_length))
                self.refs.append(ClipRef(name, start, False, forward))
                if reverse:
                    self.refs.append(ClipRef(name, start, True, forward[::-1]))
        if not self.refs:
            raise ValueError(f"no sequence has {self.clip_length} frames: {sorted(self.sequences)}")

    @property
    def num_ids(self) -> int:
        """Number of training ids (the new id layer has ``num_ids + 1`` outputs)."""
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.refs)

    def clip(self, index: int, shorter: int | None = None, flipped: bool = False) -> dict:
        """Clip ``index`` scaled to shorter side ``shorter`` (None: as stored).

        Returns ``{"frames": [T] of float [3, H, W], "targets": [T] of {"boxes" [K, 4],
        "labels" int64 [K], "masks" uint8 [K, H, W]}, "sequence", "frame_indices",
        "reversed", "flipped"}``.
        """
        ref = self.refs[index]
        seq = self.sequences[ref.sequence]
        h, w = seq.size
        size = (h, w) if shorter is None else T.scaled_size(h, w, shorter, self.max_size)
        frames, targets = [], []
        for f in ref.frames:
            image, target = self._frame(ref.sequence, f, size, flipped)
            frames.append(image)
            targets.append(target)
        return {"frames": frames, "targets": targets, "sequence": ref.sequence,
                "frame_indices": list(ref.frames), "reversed": ref.reversed, "flipped": flipped}

    def _frame(self, name: str, f: int, size: tuple[int, int], flipped: bool):
        seq = self.sequences[name]
        ids = seq.read_mask(f)
        objects = [o for o in sorted(seq.object_ids) if (ids == o).any()]
        masks = torch.from_numpy(np.stack([ids == o for o in objects]).astype(np.uint8)) if objects \
            else torch.zeros((0, *ids.shape), dtype=torch.uint8)
        image, masks = T.apply_geometry(T.to_tensor(seq.read_frame(f)), masks, size, flipped)
        keep = (masks.flatten(1) > 0).any(1) if len(objects) else torch.zeros(0, dtype=torch.bool)
        masks = masks[keep]
        labels = torch.tensor([self.id_of[(name, o)] for o, k in zip(objects, keep.tolist()) if k],
                              dtype=torch.int64)
        boxes = T.boxes_from_masks(masks, expand=self.box_expand)
        return image, {"boxes": boxes, "labels": labels, "masks": masks}

    def get(self, index: int, rng: random.Random) -> dict:
        """Training clip: one scale and flip draw from ``rng`` for all its frames."""
        shorter, flipped = T.draw_geometry(rng, self.scales, self.flip)
        return self.clip(index, shorter, flipped)

    def __getitem__(self, index: int) -> dict:
        return self.clip(index)


def collate_clips(clips: list[dict]):
    """Batch of clips -> ``(frames, targets)``, each a list over time of lists over the batch,
    the layout of ``LIP.forward_clip``."""
    length = len(clips[0]["frames"])
    frames = [[c["frames"][t] for c in clips] for t in range(length)]
    targets = [[c["targets"][t] for c in clips] for t in range(length)]
    return frames, targets


def collate_images(samples: list[tuple]):
    """Batch of ``(image, target)`` -> ``(images, targets)`` lists."""
    return [s[0] for s in samples], [s[1] for s in samples]
