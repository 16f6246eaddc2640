"""Procedural COCO-format instance segmentation images (the pre-training data of ``smoke``).

Each image is a textured background with a few striped shapes; the shape kind is the
category (:data:`lipnb.data.procedural_render.SHAPES`). Shapes may overlap (later ones are
in front); the annotation is always the *visible* region, stored as

* a polygon when the shape is unoccluded (exactly the polygon that was rasterised),
* a compressed RLE when something covers part of it,
* an uncompressed-RLE ``iscrowd=1`` region for a "crowd" of small shapes of one kind,

so that all three encodings go through pycocotools like real COCO. Layout, as COCO 2017::

    root/annotations/instances_<split>.json
    root/<split>/<image_id:012d>.jpg

Every image is a function of ``(seed, split, index)`` only.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from lipnb.data.procedural_render import SHAPES, Appearance, background, finish, paint, place_polygon, rasterize

def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 1, zlib.crc32(split.encode()), index]))


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def render_image(seed: int, split: str, index: int, height: int, width: int,
                 max_objects: int = 4, crowd_prob: float = 0.2, min_area: int = 30):
    """One image and its annotations.

    Returns ``(image uint8 [H, W, 3], annotations)`` where each annotation is a dict with
    ``segmentation`` (polygon list or RLE dict), ``iscrowd``, ``category_id``, ``bbox``, ``area``.
    """
    rng = _rng(seed, split, index)
    canvas = background(rng, height, width)
    shapes = []  # (category, polygon, full mask, appearance, cx, cy, radius, angle)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cat = int(rng.integers(len(SHAPES)))
        radius = float(rng.uniform(0.1, 0.3) * min(height, width))
        cx, cy = rng.uniform(radius * 0.6, width - radius * 0.6), rng.uniform(radius * 0.6, height - radius * 0.6)
        angle, aspect = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.7, 1.4))
        poly = place_polygon(SHAPES[cat], cx, cy, radius, angle, aspect)
        shapes.append((cat, poly, rasterize(poly, height, width), Appearance.random(rng), cx, cy, radius, angle))

    crowd = None
    if rng.random() < crowd_prob:  # many small shapes of one kind, annotated as one crowd region
        cat, look = int(rng.integers(len(SHAPES))), Appearance.random(rng)
        r = 0.04 * min(height, width)
        x0, y0 = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        parts = []
        for _ in range(int(rng.integers(5, 10))):
            cx, cy = x0 + rng.normal(0, 3 * r), y0 + rng.normal(0, 2 * r)
            poly = place_polygon(SHAPES[cat], cx, cy, r, float(rng.uniform(0, 6.3)))
            parts.append((poly, cx, cy))
        crowd = (cat, look, r, parts)

    annotations = []
    covered = np.zeros((height, width), dtype=bool)  # pixels taken by shapes in front
    # paint back to front, annotate front to back (visible region = mask minus what is in front)
    for cat, poly, full, look, cx, cy, radius, angle in shapes:
        paint(canvas, full, look, cx, cy, radius, angle)
    if crowd is not None:
        cat, look, r, parts = crowd
        union = np.zeros((height, width), dtype=bool)
        for poly, cx, cy in parts:
            m = rasterize(poly, height, width)
            paint(canvas, m, look, cx, cy, r, 0.0)
            union |= m
        covered |= union
        if union.sum() >= min_area:
            rle = mask_utils.encode(np.asfortranarray(union.astype(np.uint8)))
            counts = _uncompressed_counts(union)
            annotations.append({"segmentation": {"size": [height, width], "counts": counts}, "iscrowd": 1,
                                "category_id": cat + 1, "bbox": _bbox(union), "area": float(mask_utils.area(rle))})
    for cat, poly, full, look, cx, cy, radius, angle in reversed(shapes):
        visible = full & ~covered
        covered |= full
        if visible.sum() < min_area:
            continue
        if visible.sum() == full.sum():
            seg = [np.round(poly, 2).reshape(-1).tolist()]
        else:
            rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
            seg = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        annotations.append({"segmentation": seg, "iscrowd": 0, "category_id": cat + 1,
                            "bbox": _bbox(visible), "area": float(visible.sum())})
    return finish(canvas, rng), annotations


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths of the column-major mask, starting with zeros."""
    flat = mask.T.reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0] + runs


def generate_coco(root: Path, seed: int, splits: dict[str, int], height: int, width: int,
                  max_objects: int = 4, crowd_prob: float = 0.2, progress: bool = False) -> Path:
    """Write ``splits = {"train2017": n, "val2017": m}`` images under ``root``; returns ``root``."""
    from tqdm.auto import tqdm

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    for split, count in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in tqdm(range(count), desc=f"procedural coco {split}", disable=not progress):
            image_id = index + 1
            image, anns = render_image(seed, split, index, height, width, max_objects, crowd_prob)
            name = f"{image_id:012d}.jpg"
            Image.fromarray(image).save(root / split / name, quality=92)
            images.append({"id": image_id, "file_name": name, "height": height, "width": width})
            for a in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
        doc = {"info": {"description": "lipnb procedural shapes", "seed": seed},
               "images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return root
