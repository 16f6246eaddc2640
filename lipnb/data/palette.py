"""The DAVIS palette: colour of each object id in an indexed (palette) PNG.

DAVIS annotations and results are indexed PNGs whose pixel values are object ids
(0 = background) and whose palette is the PASCAL VOC colour map: the bits of an id are
dealt out in turn to red, green and blue, most significant colour bits first, so that
id 1 is dark red (128, 0, 0), 2 dark green (0, 128, 0), 3 olive (128, 128, 0), ...
"""

from __future__ import annotations

import numpy as np


def pascal_colormap(n: int = 256) -> np.ndarray:
    """Colours of ids ``0..n-1``: uint8 array [n, 3] (RGB).

    Bit ``3*j + c`` of the id becomes bit ``7 - j`` of colour channel ``c``.
    """
    ids = np.arange(n)
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for j in range(8):  # j-th group of three id bits -> bit 7-j of (R, G, B)
        for channel in range(3):
            cmap[:, channel] |= (((ids >> (3 * j + channel)) & 1) << (7 - j)).astype(np.uint8)
    return cmap


DAVIS_PALETTE: np.ndarray = pascal_colormap(256)  # [256, 3] uint8
DAVIS_PALETTE.setflags(write=False)


def colorize(ids: np.ndarray) -> np.ndarray:
    """Object ids [H, W] (uint8) -> RGB picture [H, W, 3] (uint8) in DAVIS colours."""
    return DAVIS_PALETTE[ids]
