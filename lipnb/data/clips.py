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
        warmup_range: ``(low, high)``: :meth:`get` draws a warm-up length ``w`` uniformly from
            ``low..high`` per clip (after the geometry) and prepends the ``w`` frames that precede
            the clip in its playing order (``w`` capped by how many there are); the clip dict says
            ``warmup``. None: clips of ``clip_length`` frames only, no draw (as before).
    """

    def __init__(self, davis, clip_length: int = 8, stride: int = 1, reverse: bool = True,
                 scales=T.PAPER_SCALES, max_size: int = T.PAPER_MAX_SIZE, flip: bool = True,
                 box_expand: float = 0.1, warmup_range: tuple | None = None):
        self.warmup_range = None if warmup_range is None else (int(warmup_range[0]), int(warmup_range[1]))
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

    def clip(self, index: int, shorter: int | None = None, flipped: bool = False, warmup: int = 0) -> dict:
        """Clip ``index`` scaled to shorter side ``shorter`` (None: as stored), after ``warmup``
        frames that precede it in its playing order (at most as many as the sequence has).

        Returns ``{"frames": [T] of float [3, H, W], "targets": [T] of {"boxes" [K, 4],
        "labels" int64 [K], "masks" uint8 [K, H, W]}, "sequence", "frame_indices",
        "reversed", "flipped"}`` (and ``"warmup"``, the frames prepended, when ``warmup`` > 0 or
        the dataset draws warm-ups).
        """
        ref = self.refs[index]
        seq = self.sequences[ref.sequence]
        h, w = seq.size
        size = (h, w) if shorter is None else T.scaled_size(h, w, shorter, self.max_size)
        indices = self.warmup_frames(ref, warmup) + list(ref.frames)
        frames, targets = [], []
        for f in indices:
            image, target = self._frame(ref.sequence, f, size, flipped)
            frames.append(image)
            targets.append(target)
        out = {"frames": frames, "targets": targets, "sequence": ref.sequence,
               "frame_indices": indices, "reversed": ref.reversed, "flipped": flipped}
        if warmup or self.warmup_range is not None:
            out["warmup"] = len(indices) - len(ref.frames)
        return out

    def warmup_frames(self, ref: ClipRef, count: int) -> list:
        """The (at most) ``count`` frames before ``ref`` in its playing order, in playing order."""
        if count <= 0:
            return []
        n = self.sequences[ref.sequence].num_frames
        if ref.reversed:  # played backwards: the frames after the clip's last come first
            after = ref.frames[0] + 1
            return list(range(min(n, after + count) - 1, after - 1, -1))
        return list(range(max(0, ref.frames[0] - count), ref.frames[0]))

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
        warmup = rng.randint(*self.warmup_range) if self.warmup_range is not None else 0
        return self.clip(index, shorter, flipped, warmup)

    def __getitem__(self, index: int) -> dict:
        return self.clip(index)


class MixedClips(torch.utils.data.Dataset):
    """Clips from several sources (:class:`DavisClips`) read as one set, for fine-tuning.

    Ids are the sources' ids one after the other (source 0's first: ``1..n_0``, then source 1's,
    ...), so ``ids`` holds ``("<name>/<sequence>", object)``. ``weights`` (one share per source):
    an epoch of ``sum(len(source))`` clips holds ``round(share * total)`` slots of each source,
    slot ``j`` being its clip ``j % len(source)``; None: every clip of every source once.
    """

    def __init__(self, sources: list, names: list, weights=None):
        if len(sources) != len(names):
            raise ValueError("one name per source")
        self.sources, self.names = list(sources), list(names)
        self.ids = [(f"{name}/{s}", o) for src, name in zip(self.sources, self.names) for s, o in src.ids]
        self.offsets, offset = [], 0
        for src in self.sources:
            self.offsets.append(offset)
            offset += src.num_ids
        sizes = [len(src) for src in self.sources]
        if weights:
            if len(weights) != len(sources) or any(w < 0 for w in weights) or not sum(weights) > 0:
                raise ValueError(f"weights must be one share >= 0 per source, not all 0: {weights}")
            counts = [round(w / sum(weights) * sum(sizes)) for w in weights]
        else:
            counts = sizes
        self.slots = [(k, j % sizes[k]) for k, c in enumerate(counts) for j in range(c)]

    @property
    def num_ids(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.slots)

    def _shift(self, clip: dict, k: int) -> dict:
        for target in clip["targets"]:
            target["labels"] = target["labels"] + self.offsets[k]
        return {**clip, "source": self.names[k]}

    def get(self, index: int, rng: random.Random) -> dict:
        k, j = self.slots[index]
        return self._shift(self.sources[k].get(j, rng), k)

    def __getitem__(self, index: int) -> dict:
        k, j = self.slots[index]
        return self._shift(self.sources[k][j], k)


def collate_clips(clips: list[dict]):
    """Batch of clips -> ``(frames, targets)``, each a list over time of lists over the batch,
    the layout of ``LIP.forward_clip``. Clips with a drawn warm-up (``"warmup"``) give
    ``(frames, targets, {"warmup": w})`` instead, ``w`` the batch's smallest warm-up (the longer
    ones lose their earliest frames)."""
    if any("warmup" in c for c in clips):
        w = min(c.get("warmup", 0) for c in clips)
        cut = [c.get("warmup", 0) - w for c in clips]
        frames, targets = collate_clips([{"frames": c["frames"][k:], "targets": c["targets"][k:]}
                                         for c, k in zip(clips, cut)])
        return frames, targets, {"warmup": w}
    length = len(clips[0]["frames"])
    frames = [[c["frames"][t] for c in clips] for t in range(length)]
    targets = [[c["targets"][t] for c in clips] for t in range(length)]
    return frames, targets


def collate_images(samples: list[tuple]):
    """Batch of ``(image, target)`` -> ``(images, targets)`` lists."""
    return [s[0] for s in samples], [s[1] for s in samples]
