"""Procedural DAVIS-format videos in which memory matters (the fine-tuning data of ``smoke``).

Every sequence is a static textured background, an unlabelled *pillar* (a tall occluder,
full height, near the middle) and ``num_objects >= 3`` labelled shapes. Each sequence
poses the **occlusion** problem and one of two more, by index: even-numbered sequences
(``kind = "cross"``) have **crossing** twins, odd-numbered ones (``kind = "leave"``) a
**leaver**, so any two consecutive sequences (the default val split has four) hold all
three situations. The roles:

* the **hider** (every sequence) walks from one side of the pillar, disappears completely
  behind it for ``occlusion_frames`` frames or more (its mask is empty there) and comes out
  on the other side;
* two **twins** (``cross``) look exactly alike (same shape, colours, stripes, size, pose,
  drift) and walk in opposite directions in front of the pillar, so that they swap sides:
  their x-order at the end is the reverse of frame 0's, and their vertical order swaps
  too, at another time than the horizontal one (so they never fully cover each other; the
  second passes in front of the first). At the last frame each twin is where the other
  one started: they are told apart only by their past. Both are visible in every frame;
* the **leaver** (``leave``) walks out through an image border (left, right, or the
  top/bottom one nearer to it), stays entirely outside the image for ``occlusion_frames``
  frames or more (its mask is empty because it is out of the picture, not behind anything:
  it walks in front of the pillar) and comes back in through the same border;
* the others are **distinct** shapes (colours far from every other object's) that wander
  behind the pillar, possibly overlapping one another or the hider.

Depth order, back to front: the hider and the distinct shapes, the pillar, the twins or
the leaver. All objects change scale (+-25 %, sinusoidally) and turn over the video, and
their colours drift (hue turned by ``drift`` of the colour circle from the first frame to
the last). Every object is visible in the first frame, as the semi-supervised task requires.

``procedural.json`` records, per sequence, its ``kind`` and ``situations``, the pillar's x
range, each object's ``id``, ``role``, ``layer``, ``shape`` and ``look``, the look-alike
pairs (``lookalikes``: the twins), the frames where the twins' x-order flips
(``crossings``) and, per object id, the runs ``[first, last]`` of frames in which its mask is
empty (``hidden``) and in which it is entirely outside the image (``offscreen``, a subset
of ``hidden``); ``hidden`` minus ``offscreen`` is where it is behind something. A scorer can
report J&F on those frames.

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

#: What a sequence poses besides the hider's occlusion, by ``index % 2``.
KINDS: tuple[str, ...] = ("cross", "leave")
SITUATIONS = {"cross": ["occlusion", "crossing"], "leave": ["occlusion", "leaving"]}
ROLES: tuple[str, ...] = ("hider", "twin", "leaver", "distinct")


def sequence_kind(index: int) -> str:
    """``"cross"`` (crossing twins) for even indices, ``"leave"`` (a leaver) for odd ones."""
    return KINDS[index % len(KINDS)]


@dataclass
class Track:
    """One labelled object: its shape and a pose for every frame."""

    object_id: int
    role: str  # one of ROLES
    shape: str
    look: Appearance
    aspect: float
    x: np.ndarray  # [T] centre x (pixels)
    y: np.ndarray  # [T] centre y
    radius: np.ndarray  # [T] radius (pixels)
    angle: np.ndarray  # [T] rotation (radians)
    front: bool = False  # drawn in front of the pillar


def _pose(rng, t: np.ndarray, base_radius: float):
    """Shared scale/turn schedule: radius [T] and angle [T] (twins share one draw)."""
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.3)
    radius = base_radius * (1 + 0.25 * np.sin(2 * np.pi * freq * t / max(len(t), 1) + phase))
    angle = rng.uniform(0, 2 * np.pi) + rng.choice([-1, 1]) * rng.uniform(0.03, 0.08) * t
    return radius, angle


def _new_look(rng, taken: list[float], gap: float = 0.15) -> Appearance:
    """A random appearance whose hue is at least ``gap`` (of the colour circle) from every
    hue in ``taken``: never a look-alike of the objects drawn so far."""
    look = Appearance.random(rng)
    if taken:
        # the widest free arc between taken hues, and a hue drawn in its middle part
        hues = np.sort(np.mod(taken, 1.0))
        gaps = np.diff(np.append(hues, hues[0] + 1.0))
        k = int(np.argmax(gaps))
        lo, width = hues[k] + gap, max(gaps[k] - 2 * gap, 0.0)
        look.hue = float((lo + rng.uniform(0, 1) * width) % 1.0)
    return look


def _tracks(rng, kind: str, num_frames: int, height: int, width: int, num_objects: int, occlusion_frames: int):
    """Draw the pillar and the object tracks of one sequence (``kind`` in :data:`KINDS`)."""
    t = np.arange(num_frames, dtype=np.float64)
    last = max(num_frames - 1, 1)
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
    shape, look, aspect = SHAPES[rng.integers(len(SHAPES))], _new_look(rng, []), float(rng.uniform(0.8, 1.0))
    radius, angle = _pose(rng, t, base_r)
    tracks = [Track(0, "hider", shape, look, aspect, hx, hy, radius, angle)]

    if kind == "cross":
        # twins: one look and pose schedule; point-symmetric paths about (xc, yc), so that both
        # the x-order (at t_c) and the y-order (at the middle frame) swap, at different times
        shape, look = SHAPES[rng.integers(len(SHAPES))], _new_look(rng, [look.hue])
        aspect = float(rng.uniform(0.8, 1.0))
        radius, angle = _pose(rng, t, base_r)
        t_c = (0.5 + rng.choice([-1, 1]) * rng.uniform(0.12, 0.2)) * last  # when the x-order swaps
        xc, yc = pc + rng.uniform(-0.05, 0.05) * width, bands[1]
        v = 0.3 * width / max(t_c, last - t_c)  # the farther end lies 0.3 width from xc
        sx, sy = rng.choice([-1, 1]), rng.choice([-1, 1])
        dx, dy = sx * v * (t - t_c), sy * 0.1 * height * np.cos(np.pi * t / last)
        for s in (1, -1):
            tracks.append(Track(0, "twin", shape, look, aspect, xc + s * dx, yc + s * dy, radius.copy(), angle.copy(),
                                front=True))
    elif kind == "leave":
        # leaver: out through a border at frame a, entirely outside for frames a..b, back in by the end
        shape = SHAPES[rng.integers(len(SHAPES))]
        look = _new_look(rng, [tr.look.hue for tr in tracks])
        aspect = float(rng.uniform(0.8, 1.0))
        radius, angle = _pose(rng, t, base_r * rng.uniform(0.8, 1.0))
        out = -(radius.max() * max(aspect, 1.0) + 2.0)  # every vertex 2 px past the border
        a = int(np.clip(round(rng.uniform(0.3, 0.5) * (num_frames - occlusion_frames)), 2,
                        num_frames - 2 - occlusion_frames))
        b = a + occlusion_frames - 1
        border = ("left", "right", "bottom" if bands[1] > height / 2 else "top")[rng.integers(3)]
        wobble = np.sin(2 * np.pi * t / num_frames + rng.uniform(0, 2 * np.pi))
        if border in ("left", "right"):
            d = np.interp(t, [0, a, b, num_frames - 1],
                          [rng.uniform(0.1, 0.22) * width, out, out, rng.uniform(0.1, 0.25) * width])
            x, y = (d if border == "left" else width - d), bands[1] + 0.04 * height * wobble
        else:
            near = min(bands[1], height - bands[1])  # the band's distance from its border
            d = np.interp(t, [0, a, b, num_frames - 1], [near, out, out, near * rng.uniform(0.8, 1.1)])
            x = rng.uniform(0.15, 0.85) * width + 0.05 * width * wobble
            y = d if border == "top" else height - d
        tracks.append(Track(0, "leaver", shape, look, aspect, x, y, radius, angle, front=True))
    else:
        raise ValueError(f"unknown sequence kind {kind!r}; expected one of {KINDS}")

    # distinct objects: other shapes and colours, wandering anywhere behind the pillar
    for _ in range(num_objects - len(tracks)):
        other = SHAPES[rng.integers(len(SHAPES))]
        look2 = _new_look(rng, [tr.look.hue for tr in tracks])
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
                    min_first_area: int = 40, max_tries: int = 50, split: str = "train"):
    """Render one sequence (its kind is :func:`sequence_kind` of ``index``).

    Returns ``(frames uint8 [T, H, W, 3], masks uint8 [T, H, W] of object ids, meta)``;
    ``meta`` is the sequence's entry of ``procedural.json`` (see the module docstring).
    """
    if num_objects < 3:
        raise ValueError("procedural videos need num_objects >= 3 (a hider, and two twins or a leaver and "
                         "a distinct shape)")
    if occlusion_frames < 1 or num_frames < occlusion_frames + 4:
        raise ValueError(f"num_frames={num_frames} is too short for occlusion_frames={occlusion_frames}")
    kind = sequence_kind(index)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, split_key(split), index]))
    for _ in range(max_tries):
        pillar, tracks = _tracks(rng, kind, num_frames, height, width, num_objects, occlusion_frames)
        frames, masks, alone = _draw(rng, pillar, tracks, num_frames, height, width, drift)
        areas = np.stack([(masks == tr.object_id).sum((1, 2)) for tr in tracks], 1)  # [T, N]
        if _acceptable(kind, tracks, areas, alone, min_first_area, occlusion_frames):
            break
    else:
        raise RuntimeError(f"procedural sequence {index} ({kind}): could not draw a sequence with every object "
                           f"visible in frame 0, the hider occluded for {occlusion_frames} frames and "
                           + ("the twins in view throughout" if kind == "cross" else
                              f"the leaver out of the image for {occlusion_frames} frames"))
    twins = [tr for tr in tracks if tr.role == "twin"]
    crossings = []
    if twins:
        order = np.sign(twins[0].x - twins[1].x)
        crossings = [int(f) for f in np.flatnonzero(order[1:] != order[:-1]) + 1]
    meta = {
        "kind": kind,
        "situations": SITUATIONS[kind],
        "pillar_x": [float(pillar[0]), float(pillar[1])],
        "objects": [{"id": tr.object_id, "role": tr.role, "layer": "front" if tr.front else "back",
                     "shape": tr.shape, "look": tr.look.to_dict()} for tr in tracks],
        "lookalikes": [[tr.object_id for tr in twins]] if twins else [],
        "crossings": crossings,
        "hidden": {str(tr.object_id): _empty_runs(areas[:, i] == 0) for i, tr in enumerate(tracks)},
        "offscreen": {str(tr.object_id): _empty_runs(alone[:, i] == 0) for i, tr in enumerate(tracks)},
    }
    return frames, masks, meta


def _acceptable(kind, tracks, areas, alone, min_first_area, occlusion_frames) -> bool:
    """Does a drawn sequence pose its situations? ``areas``/``alone`` [T, N]: visible pixels
    of each object in the frame / drawn with nothing in front of it."""
    last = len(areas) - 1
    if areas[0].min() < min_first_area:  # every object visible in the first frame
        return False
    roles = [tr.role for tr in tracks]
    h = roles.index("hider")
    behind = (areas[:, h] == 0) & (alone[:, h] > 0)
    if areas[-1, h] < min_first_area or not any(b - a + 1 >= occlusion_frames for a, b in _empty_runs(behind)):
        return False
    if kind == "cross":
        i, j = (k for k, r in enumerate(roles) if r == "twin")
        seen, whole = areas[:, [i, j]], alone[:, [i, j]]
        return bool(seen.min() > 0 and (seen >= 0.25 * whole).all()  # in view throughout, crossing included
                    and seen[-1].min() >= min_first_area
                    and (seen[[0, -1]] == whole[[0, -1]]).all())  # nothing in front of either at both ends
    k = roles.index("leaver")
    out = _empty_runs(areas[:, k] == 0)
    return bool(areas[-1, k] >= min_first_area and (areas[:, k] == 0).sum() == (alone[:, k] == 0).sum()
                and any(b - a + 1 >= occlusion_frames and a > 0 and b < last for a, b in out))


def _draw(rng, pillar, tracks, num_frames, height, width, drift):
    """Frames, id masks and ``alone`` [T, N]: each object's pixel count with nothing in front."""
    bg = background(rng, height, width)
    wall = Appearance.random(rng)
    wall.saturation = 0.15
    x0, x1 = int(round(pillar[0])), int(round(pillar[1]))
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    masks = np.zeros((num_frames, height, width), dtype=np.uint8)
    alone = np.zeros((num_frames, len(tracks)), dtype=np.int64)
    pillar_mask = np.zeros((height, width), dtype=bool)
    pillar_mask[:, x0:x1] = True
    order = [i for i, tr in enumerate(tracks) if not tr.front] + [None] + [i for i, tr in enumerate(tracks) if tr.front]
    for f in range(num_frames):
        canvas = bg.copy()
        ids = np.zeros((height, width), dtype=np.uint8)
        amount = drift * f / max(num_frames - 1, 1)
        for i in order:  # back to front: the back layer in track order, the pillar, the front layer
            if i is None:
                paint(canvas, pillar_mask, wall, (x0 + x1) / 2, height / 2, (x1 - x0) / 2, 0.0)
                ids[pillar_mask] = 0
                continue
            tr = tracks[i]
            poly = place_polygon(tr.shape, tr.x[f], tr.y[f], tr.radius[f], tr.angle[f], tr.aspect)
            m = rasterize(poly, height, width)
            alone[f, i] = m.sum()
            paint(canvas, m, tr.look.drifted(amount), tr.x[f], tr.y[f], tr.radius[f], tr.angle[f])
            ids[m] = tr.object_id
        frames[f], masks[f] = finish(canvas, rng), ids
    return frames, masks, alone


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
