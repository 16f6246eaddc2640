"""COCO-format instance segmentation for pre-training (paper §4.1.1, §5.1), via pycocotools.

Reads real COCO 2017 (``annotations/instances_<split>.json`` + ``<split>/``), the
``coco_tiny`` subset, or the procedural images of :mod:`lipnb.data.procedural_images`.
Polygons and RLE both go through ``COCO.annToMask``; crowd regions (``iscrowd=1``) are left
out of the targets, as are degenerate boxes; images with no usable instance are skipped.
Categories are renumbered to contiguous labels ``1..C`` (0 is background).

Every annotation is checked before pycocotools sees it: a category id that the file does not
declare, or a segmentation that is neither a list of polygons (each at least three x, y pairs
of finite numbers) nor an RLE of the image's size, raises :class:`CocoFormatError`, one line
naming the json file, the image id and the annotation id (categories are checked when the
dataset is built, segmentations when an image is loaded).

``get(index, rng)`` applies the paper's augmentation: shorter side drawn from ``scales``,
longer side at most ``max_size``, horizontal flip with probability 1/2.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import math
import numbers
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from lipnb.data import transforms as T
from lipnb.data.files import DavisFormatError, check_regular_file, read_rgb


class CocoFormatError(ValueError):
    """A COCO annotation pycocotools would misread or fail on: one line naming the json file,
    the image id and the annotation id."""


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def segmentation_problem(segm, height: int, width: int) -> str | None:
    """What is wrong with a COCO ``segmentation`` (in words), or None if pycocotools reads it right."""
    if isinstance(segm, list):
        if not segm:
            return "an empty segmentation (no polygon)"
        for k, polygon in enumerate(segm):
            if not isinstance(polygon, list) or not all(_is_number(v) for v in polygon):
                return f"a malformed polygon (#{k}: not a list of finite numbers)"
            if len(polygon) < 6 or len(polygon) % 2:
                return (f"a malformed polygon (#{k}: {len(polygon)} numbers; a polygon is at least 3 x, y pairs, "
                        "an even count of at least 6)")
        return None
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if not isinstance(size, list) or [v for v in size if isinstance(v, int)] != [height, width]:
            return f"a malformed RLE (size {size!r}, the image is [{height}, {width}])"
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts) \
                    or sum(counts) != height * width:
                return "a malformed uncompressed RLE (counts must be non-negative integers summing to height x width)"
            return None
        if not isinstance(counts, (str, bytes)):
            return "a malformed RLE (counts is neither a list nor a string)"
        return None
    return f"a malformed segmentation (a {type(segm).__name__}, not a list of polygons or an RLE dict)"


class CocoInstances(torch.utils.data.Dataset):
    """``dataset.get(i, rng) -> (image [3, H, W] float in [0, 1], target)``, target =
    ``{"boxes": float [K, 4] x1y1x2y2, "labels": int64 [K] in 1..C, "masks": uint8 [K, H, W],
    "image_id": int}`` at the drawn scale. ``dataset[i]`` is the unaugmented image."""

    def __init__(self, root: str | Path, split: str = "train2017", scales=T.PAPER_SCALES,
                 max_size: int = T.PAPER_MAX_SIZE, flip: bool = True,
                 ann_file: str | Path | None = None, image_dir: str | Path | None = None):
        from pycocotools.coco import COCO

        root = Path(root)
        self.ann_file = Path(ann_file) if ann_file else root / "annotations" / f"instances_{split}.json"
        self.image_dir = Path(image_dir) if image_dir else root / split
        if not self.ann_file.is_file():
            raise FileNotFoundError(f"COCO annotations not found: {self.ann_file}")
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"COCO image folder not found: {self.image_dir}")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            try:
                self.coco = COCO(str(self.ann_file))
            except Exception as e:  # noqa: BLE001 - name the file, keep the cause
                raise ValueError(f"cannot read COCO annotations {self.ann_file}: {e}") from e
        self.scales, self.max_size, self.flip = tuple(scales), int(max_size), flip
        self.category_ids = sorted(self.coco.getCatIds())
        self.label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        self.category_names = [self.coco.cats[c]["name"] for c in self.category_ids]
        self.image_ids = []
        for image_id in sorted(self.coco.getImgIds()):
            anns = self._annotations(image_id)
            if anns:
                self.image_ids.append(image_id)
            for a in anns:  # before any work: every category used is declared
                if a.get("category_id") not in self.label_of:
                    known = ", ".join(str(c) for c in self.category_ids[:5]) + (", ..." if len(self.category_ids) > 5
                                                                               else "")
                    raise self._error(a, f"unknown category id {a.get('category_id')!r} (the file's categories: "
                                         f"{known or 'none'}); fix the annotation's category_id or declare the "
                                         "category")

    @property
    def num_classes(self) -> int:
        """Number of categories (labels are ``1..num_classes``)."""
        return len(self.category_ids)

    def __len__(self) -> int:
        return len(self.image_ids)

    def _error(self, ann: dict, what: str) -> CocoFormatError:
        return CocoFormatError(f"{self.ann_file}: image {ann.get('image_id')!r}, annotation {ann.get('id')!r}: {what}")

    def _annotations(self, image_id: int) -> list[dict]:
        """Usable annotations of an image: not crowd, box at least 1x1 pixel."""
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id], iscrowd=None))
        for a in anns:
            box = a.get("bbox")
            if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
                raise self._error(a, f"malformed bbox {box!r} (need [x, y, width, height]); fix or remove the "
                                     "annotation")
        return [a for a in anns if not a.get("iscrowd", 0) and a["bbox"][2] >= 1 and a["bbox"][3] >= 1]

    def load(self, index: int):
        """Original-size image uint8 ``[H, W, 3]``, masks uint8 ``[K, H, W]``, boxes ``[K, 4]``,
        labels ``[K]``."""
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_dir / info["file_name"]
        try:
            check_regular_file(path, "COCO image", missing=f"COCO image not found: {path} (listed in {self.ann_file})")
            image = read_rgb(path, "COCO image")
        except DavisFormatError as e:  # a pipe, a link loop, above the pixel limit, damaged: one line naming it
            raise CocoFormatError(str(e)) from None
        h, w = image.shape[:2]
        if (h, w) != (info["height"], info["width"]):
            raise ValueError(f"{path} is {w}x{h} but {self.ann_file} says {info['width']}x{info['height']}")
        anns = self._annotations(image_id)
        for a in anns:
            problem = segmentation_problem(a.get("segmentation"), h, w)
            if problem:
                raise self._error(a, f"{problem}; fix or remove the annotation")
        with warnings.catch_warnings():  # pycocotools' numpy-2 "__array__ ... copy" deprecation notice
            warnings.simplefilter("ignore", DeprecationWarning)
            masks = []
            for a in anns:
                try:
                    masks.append(self.coco.annToMask(a))
                except Exception as e:  # noqa: BLE001 - pycocotools raises bare Exceptions
                    first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
                    raise self._error(a, f"pycocotools cannot read its segmentation ({first}); fix or remove the "
                                         "annotation") from e
            masks = np.stack(masks).astype(np.uint8)
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32)
        labels = torch.tensor([self.label_of[a["category_id"]] for a in anns], dtype=torch.int64)
        return image, masks, boxes, labels

    def sample(self, index: int, shorter: int | None = None, flipped: bool = False):
        """Image ``index`` with its shorter side scaled to ``shorter`` (None: original size)."""
        image, masks, boxes, labels = self.load(index)
        h, w = image.shape[:2]
        size = (h, w) if shorter is None else T.scaled_size(h, w, shorter, self.max_size)
        img, m = T.apply_geometry(T.to_tensor(image), torch.from_numpy(masks), size, flipped)
        boxes = T.scale_boxes(boxes, (h, w), size)
        if flipped:
            boxes = T.hflip_boxes(boxes, size[1])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, size[1])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, size[0])
        return img, {"boxes": boxes, "labels": labels, "masks": m, "image_id": int(self.image_ids[index])}

    def get(self, index: int, rng: random.Random):
        """Training sample: one scale-jitter and flip draw from ``rng``."""
        shorter, flipped = T.draw_geometry(rng, self.scales, self.flip)
        return self.sample(index, shorter, flipped)

    def __getitem__(self, index: int):
        return self.sample(index)


class CocoMixture(torch.utils.data.Dataset):
    """Several :class:`CocoInstances` read as one: their images one after another, their
    categories side by side (labels of the second set follow those of the first, and so on).

    Used to pre-train on COCO tiny plus procedural images (``data="coco_tiny+procedural"``)."""

    def __init__(self, parts: list, names: list[str]):
        if not parts:
            raise ValueError("CocoMixture needs at least one dataset")
        self.parts = list(parts)
        self.starts = [0]  # index of each part's first image, then the total
        self.offsets = [0]  # label offset of each part
        for part in self.parts:
            self.starts.append(self.starts[-1] + len(part))
            self.offsets.append(self.offsets[-1] + part.num_classes)
        self.category_names = [f"{name}/{c}" for name, part in zip(names, self.parts) for c in part.category_names]

    @property
    def num_classes(self) -> int:
        return len(self.category_names)

    def __len__(self) -> int:
        return self.starts[-1]

    def _locate(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        k = bisect.bisect_right(self.starts, index) - 1
        return self.parts[k], index - self.starts[k], self.offsets[k]

    def _shift(self, sample, offset: int):
        image, target = sample
        return image, {**target, "labels": target["labels"] + offset}

    def get(self, index: int, rng: random.Random):
        part, i, offset = self._locate(index)
        return self._shift(part.get(i, rng), offset)

    def __getitem__(self, index: int):
        part, i, offset = self._locate(index)
        return self._shift(part[i], offset)
