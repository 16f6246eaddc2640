"""Outlines of binary masks: the band of pixels along an object's border, in numpy only.

    inner, rim = border(ids == k, width=2)

``inner`` is the band ``width`` pixels wide just inside the mask (what :func:`overlay
<lipnb.report.figures.overlay>` paints in the object's colour); ``rim`` the one-pixel ring just
outside it (painted white, so the outline stands out on a frame of the same colour).
"""

from __future__ import annotations

import numpy as np


def _shifted_any(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask`` by a square of side ``2 * radius + 1``."""
    if radius <= 0:
        return mask.copy()
    h, w = mask.shape
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Pixels within ``radius`` (chessboard distance) of the mask."""
    return _shifted_any(mask.astype(bool), radius)


def erode(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Pixels whose whole ``radius`` neighbourhood lies in the mask (outside the image counts as outside)."""
    return ~_shifted_any(~mask.astype(bool), radius)


def border(mask: np.ndarray, width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(inner, rim)``: the mask minus its erosion by ``width``, and its dilation by 1 minus the mask."""
    mask = mask.astype(bool)
    return mask & ~erode(mask, width), dilate(mask, 1) & ~mask


def outline_width(shape: tuple) -> int:
    """Outline width in pixels for a frame of ``shape``: 2, or 1 per 120 px of its short side when wider."""
    return max(2, round(min(shape[:2]) / 120))
