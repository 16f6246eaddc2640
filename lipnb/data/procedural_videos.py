"""Procedural DAVIS-format videos in which memory matters (the fine-tuning data of ``smoke``).

Every sequence is a static textured background, an unlabelled *pillar* (a tall occluder
drawn in front of everything) and ``num_objects >= 2`` labelled shapes:

* the **hider** walks from one side of the pillar, disappears completely behind it for
  ``occlusion_frames`` frames (its mask is empty there) and comes out on the other side;
* its **twin** looks exactly like it (same shape, colours, stripes, size, pose, drift) and
  stays on the hider's starting side, in the other half of the frame: the two are told
  apart only by where they were;
* the others are **distinct** shapes that wander, possibly overlapping one another.

All objects change scale (+-25 %, sinusoidally) and turn over the video, and their colours
drift (hue turned by ``drift`` of the colour circle from the first frame to the last).
Every object is visible in the first frame, as the semi-supervised task requires.

Layout (DAVIS 2017; masks are indexed PNGs written by :func:`lipnb.data.davis.write_mask`)::

    root/JPEGImages/<res>/<seq>/00000.jpg   root/Annotations/<res>/<seq>/00000.png
    root/ImageSets/2017/{train,val}.txt     root/procedural.json (seed, parameters, roles)

A sequence is a function of ``(seed, split, index)`` and the size parameters only.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lipnb.data.procedural_render import SHAPES, Appearance, background, finish, paint, place_polygon, rasterize


@dataclass
class Track:
    """One labelled object: its shape and a pose for every frame."""

    object_id: int
    role: str  # "hider" | "twin" | "distinct"
    shape: str
    look: Appearance
    aspect: float
    x: np.ndarray  # [T] centre x (pixels)
    y: np.ndarray  # [T] centre y
    radius: np.ndarray  # [T] radius (pixels)
    angle: np.ndarray  # [T] rotation (radians)


def _pose(rng, t: np.ndarray, base_radius: float):
    """Shared scale/turn schedule: radius [T] and angle [T] (twins share one draw)."""
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.3)
    radius = base_radius * (1 + 0.25 * np.sin(2 * np.pi * freq * t / max(len(t), 1) + phase))
    angle = rng.uniform(0, 2 * np.pi) + rng.choice([-1, 1]) * rng.uniform(0.03, 0.08) * t
    return radius, angle


def _tracks(rng, num_frames: int, height: int, width: int, num_objects: int, occlusion_frames: int):
    """Draw the pillar and the object tracks of one sequence."""
    t = np.arange(num_frames, dtype=np.float64)
    pillar_w = 0.26 * width
    pc = rng.uniform(0.45, 0.55) * width
    pillar = (pc - pillar_w / 2, pc + pillar_w / 2)
    base_r = (pillar_w / 2 - 2.0) / 1.25  # the hider fits behind the pillar at its largest
    bands = [0.27 * height, 0.73 * height]
    rng.shuffle(bands)
    side = rng.choice([-1, 1])  # side the hider starts on
    x_start = pc + side * (pillar_w / 2 + (0.5 * width - pillar_w / 2) / 2 + 0.02 * width)
    x_end = 2 * pc - x_start

    # hider: enter behind the pillar, stay hidden, leave on the other side
    t_in = max(1, round(0.33 * (num_frames - occlusion_frames)))
    t_out = t_in + occlusion_frames - 1
    hx = np.interp(t, [0, t_in, t_out, num_frames - 1], [x_start, pc, pc, x_end])
    hy = bands[0] + 0.04 * height * np.sin(2 * np.pi * t / num_frames * 1.5)
    shape, look, aspect = SHAPES[rng.integers(len(SHAPES))], Appearance.random(rng), float(rng.uniform(0.8, 1.0))
    radius, angle = _pose(rng, t, base_r)
    tracks = [Track(0, "hider", shape, look, aspect, hx, hy, radius, angle)]

    # twin: same look and pose schedule, other band, wanders on the hider's starting side
    tx = x_start + side * 0.05 * width * np.sin(2 * np.pi * t / num_frames + rng.uniform(0, 6.3))
    ty = bands[1] + 0.03 * height * np.cos(2 * np.pi * t / num_frames)
    tracks.append(Track(0, "twin", shape, look, aspect, tx, ty, radius.copy(), angle.copy()))

    # distinct objects: other shapes and colours, wandering anywhere
    for _ in range(num_objects - 2):
        other = SHAPES[rng.integers(len(SHAPES))]
        look2 = Appearance.random(rng)
        look2.hue = (look.hue + rng.uniform(0.25, 0.75)) % 1.0  # never a look-alike of the twins
        r2 = base_r * rng.uniform(0.6, 1.0)
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.3, 0.7) * height
        ax, ay = rng.uniform(0.05, 0.2) * width, rng.uniform(0.05, 0.15) * height
        ph = rng.uniform(0, 2 * np.pi, size=2)
        x = cx + ax * np.sin(2 * np.pi * t / num_frames + ph[0])
        y = cy + ay * np.sin(2 * np.pi * t / num_frames + ph[1])
        rad, ang = _pose(rng, t, r2)
        tracks.append(Track(0, "distinct", other, look2, float(rng.uniform(0.7, 1.3)), x, y, rad, ang))

    ids = rng.permutation(len(tracks)) + 1  # ids do not give away the roles
    for tr, oid in zip(tracks, ids):
        tr.object_id = int(oid)
    return pillar, tracks


def split_key(split: str) -> int:
    """A stable integer for a split name (seeds streams per split)."""
    return zlib.crc32(split.encode())


def render_sequence(seed: int, index: int, num_frames: int = 24, height: int = 96, width: int = 160,
                    num_objects: int = 3, occlusion_frames: int = 4, drift: float = 0.3,
                    min_first_area: int = 40, max_tries: int = 20, split: str = "train"):
    """Render one sequence.

    Returns ``(frames uint8 [T, H, W, 3], masks uint8 [T, H, W] of object ids, meta)``;
    ``meta`` lists each object's id, role, shape and appearance, the pillar's x range, the
    look-alike pairs and, per object, the frame intervals in which its mask is empty.
    """
    if num_objects < 2:
        raise ValueError("procedural videos need num_objects >= 2 (a hider and its twin)")
    if num_frames < occlusion_frames + 4:
        raise ValueError(f"num_frames={num_frames} is too short for occlusion_frames={occlusion_frames}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, split_key(split), index]))
    for _ in range(max_tries):
        pillar, tracks = _tracks(rng, num_frames, height, width, num_objects, occlusion_frames)
        frames, masks = _draw(rng, pillar, tracks, num_frames, height, width, drift)
        areas = np.stack([(masks == tr.object_id).sum((1, 2)) for tr in tracks], 1)  # [T, N]
        hider_runs = _empty_runs(areas[:, 0] == 0)
        if (areas[0].min() >= min_first_area and areas[-1, 0] >= min_first_area
                and any(b - a + 1 >= occlusion_frames for a, b in hider_runs)):
            break
    else:
        raise RuntimeError(f"procedural sequence {index}: could not draw a sequence with every object "
                           f"visible in frame 0 and the hider occluded for {occlusion_frames} frames")
    meta = {
        "pillar_x": [float(pillar[0]), float(pillar[1])],
        "objects": [{"id": tr.object_id, "role": tr.role, "shape": tr.shape, "look": tr.look.to_dict()}
                    for tr in tracks],
        "lookalikes": [[tracks[0].object_id, tracks[1].object_id]],
        "hidden": {str(tr.object_id): _empty_runs(areas[:, i] == 0) for i, tr in enumerate(tracks)},
    }
    return frames, masks, meta


def _draw(rng, pillar, tracks, num_frames, height, width, drift):
    bg = background(rng, height, width)
    wall = Appearance.random(rng)
    wall.saturation = 0.15
    x0, x1 = int(round(pillar[0])), int(round(pillar[1]))
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    masks = np.zeros((num_frames, height, width), dtype=np.uint8)
    pillar_mask = np.zeros((height, width), dtype=bool)
    pillar_mask[:, x0:x1] = True
    for f in range(num_frames):
        canvas = bg.copy()
        ids = np.zeros((height, width), dtype=np.uint8)
        amount = drift * f / max(num_frames - 1, 1)
        for tr in tracks:  # back to front, in track order
            poly = place_polygon(tr.shape, tr.x[f], tr.y[f], tr.radius[f], tr.angle[f], tr.aspect)
            m = rasterize(poly, height, width)
            paint(canvas, m, tr.look.drifted(amount), tr.x[f], tr.y[f], tr.radius[f], tr.angle[f])
            ids[m] = tr.object_id
        paint(canvas, pillar_mask, wall, (x0 + x1) / 2, height / 2, (x1 - x0) / 2, 0.0)
        ids[pillar_mask] = 0
        frames[f], masks[f] = finish(canvas, rng), ids
    return frames, masks


def _empty_runs(empty: np.ndarray) -> list[list[int]]:
    """``[[first, last], ...]`` of the runs of True in a bool vector."""
    runs, start = [], None
    for i, e in enumerate(list(empty) + [False]):
        if e and start is None:
            start = i
        elif not e and start is not None:
            runs.append([start, i - 1])
            start = None
    return runs


def generate_davis(root: Path, seed: int, splits: dict[str, int], num_frames: int = 24, height: int = 96,
                   width: int = 160, num_objects: int = 3, occlusion_frames: int = 4, drift: float = 0.3,
                   resolution: str = "480p", progress: bool = False) -> Path:
    """Write ``splits = {"train": n, "val": m}`` sequences under ``root`` in DAVIS 2017 layout."""
    from tqdm.auto import tqdm

    from lipnb.data.davis import write_mask

    root = Path(root)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    metas = {}
    for split, count in splits.items():
        names = []
        for index in tqdm(range(count), desc=f"procedural davis {split}", disable=not progress):
            name = f"{split}-{index:03d}"
            frames, masks, meta = render_sequence(seed, index, num_frames, height, width, num_objects,
                                                  occlusion_frames, drift, split=split)
            jpg_dir = root / "JPEGImages" / resolution / name
            png_dir = root / "Annotations" / resolution / name
            jpg_dir.mkdir(parents=True, exist_ok=True)
            png_dir.mkdir(parents=True, exist_ok=True)
            for f in range(num_frames):
                Image.fromarray(frames[f]).save(jpg_dir / f"{f:05d}.jpg", quality=92)
                write_mask(png_dir / f"{f:05d}.png", masks[f])
            metas[name] = {"split": split, "index": index, **meta}
            names.append(name)
        (root / "ImageSets" / "2017" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    (root / "procedural.json").write_text(json.dumps({"seed": seed, "sequences": metas}, indent=1))
    return root
