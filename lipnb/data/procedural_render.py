"""Drawing primitives for the procedural data: shapes, textures, rasterisation.

Shared by :mod:`lipnb.data.procedural_images` (COCO format) and
:mod:`lipnb.data.procedural_videos` (DAVIS format). Everything is numpy and
deterministic given a ``numpy.random.Generator``.

An object's look is an :class:`Appearance`: a base colour, a stripe colour, a stripe
period and angle. Stripes live in the object's own frame, so they turn and stretch with
it (pose and scale change are visible in the pixels, not only in the mask).
Masks are rasterised with pycocotools from the same polygons the COCO files store.
"""

from __future__ import annotations

import colorsys
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from pycocotools import mask as mask_utils

#: Shape kinds; in the COCO-format images they are the categories (id = index + 1).
SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "star", "cross", "hexagon")


def unit_polygon(kind: str) -> np.ndarray:
    """Vertices ``[V, 2]`` (x, y) of a shape inscribed in the unit circle."""
    t = lambda n, off=0.0: np.linspace(0, 2 * np.pi, n, endpoint=False) + off  # noqa: E731
    if kind == "disc":
        a = t(32)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "square":
        a = t(4, np.pi / 4)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "triangle":
        a = t(3, -np.pi / 2)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "hexagon":
        a = t(6)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "star":
        a = t(10, -np.pi / 2)
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if kind == "cross":
        w = 0.35
        pts = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1),
               (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)]
        return np.array(pts, dtype=np.float64) / np.hypot(1, w)
    raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPES}")


def place_polygon(kind: str, cx: float, cy: float, radius: float, angle: float,
                  aspect: float = 1.0) -> np.ndarray:
    """Shape ``kind`` stretched by ``aspect`` in x, turned by ``angle`` (radians), scaled to
    ``radius`` pixels and centred at ``(cx, cy)``: vertices ``[V, 2]``."""
    p = unit_polygon(kind) * np.array([aspect, 1.0])
    c, s = np.cos(angle), np.sin(angle)
    p = p @ np.array([[c, s], [-s, c]])
    return p * radius + np.array([cx, cy])


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Polygon ``[V, 2]`` -> bool mask ``[H, W]`` (pycocotools' polygon rasteriser)."""
    rle = mask_utils.frPyObjects([polygon.reshape(-1).tolist()], height, width)
    with warnings.catch_warnings():  # pycocotools' numpy-2 "__array__ ... copy" deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(mask_utils.merge(rle)).astype(bool)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


@dataclass
class Appearance:
    """How an object is painted. ``hue`` in [0, 1); the stripe colour is the base colour
    with value ``stripe_value``; stripes have ``period`` (in object radii) and ``angle``."""

    hue: float
    saturation: float
    value: float
    stripe_value: float
    period: float
    angle: float

    @staticmethod
    def random(rng: np.random.Generator) -> "Appearance":
        return Appearance(hue=float(rng.random()), saturation=float(rng.uniform(0.55, 0.95)),
                          value=float(rng.uniform(0.6, 0.95)), stripe_value=float(rng.uniform(0.15, 0.4)),
                          period=float(rng.uniform(0.35, 0.8)), angle=float(rng.uniform(0, np.pi)))

    def drifted(self, amount: float) -> "Appearance":
        """The same look with the hue turned by ``amount`` and the value pulled slightly."""
        d = asdict(self)
        d["hue"] = (self.hue + amount) % 1.0
        d["value"] = float(np.clip(self.value - 0.25 * abs(amount), 0.35, 1.0))
        return Appearance(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def paint(canvas: np.ndarray, mask: np.ndarray, look: Appearance, cx: float, cy: float,
          radius: float, angle: float) -> None:
    """Paint a striped object into ``canvas`` (float ``[H, W, 3]``, 0..255) where ``mask``.

    The stripe phase is computed in the object's frame (centre ``cx, cy``, turned by
    ``angle``, measured in radii), so the pattern follows the object's pose and scale.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    u = ((xs - cx) * np.cos(look.angle + angle) + (ys - cy) * np.sin(look.angle + angle)) / max(radius, 1e-6)
    stripe = (np.floor(u / look.period) % 2).astype(bool)
    base = hsv(look.hue, look.saturation, look.value)
    dark = hsv(look.hue, look.saturation, look.stripe_value)
    # soft shading towards the rim so that objects are not flat discs of colour
    r = np.hypot(xs - cx, ys - cy) / max(radius, 1e-6)
    shade = (1.0 - 0.25 * np.clip(r, 0, 1))[:, None]
    canvas[ys, xs] = np.where(stripe[:, None], dark, base) * shade


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth, low-contrast coloured noise ``[H, W, 3]`` (0..255) for a scene."""
    gh, gw = 4, 6
    grid = rng.uniform(60, 190, size=(gh, gw, 3))
    yi = np.linspace(0, gh - 1, height)
    xi = np.linspace(0, gw - 1, width)
    y0, x0 = np.floor(yi).astype(int), np.floor(xi).astype(int)
    y1, x1 = np.minimum(y0 + 1, gh - 1), np.minimum(x0 + 1, gw - 1)
    fy, fx = (yi - y0)[:, None, None], (xi - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bot = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    img = top * (1 - fy) + bot * fy
    return img + rng.normal(0, 6, size=img.shape)


def finish(canvas: np.ndarray, rng: np.random.Generator, noise: float = 4.0) -> np.ndarray:
    """Add sensor noise and quantise: float ``[H, W, 3]`` -> uint8."""
    return np.clip(canvas + rng.normal(0, noise, size=canvas.shape), 0, 255).astype(np.uint8)
