"""Contour accuracy F: the boundary F-measure of two masks, as the DAVIS benchmark computes it.

1. Boundary maps (the toolkit's ``_seg2bmap``): a pixel is on the boundary when it differs
   from its right, lower or lower-right neighbour. On the last row only the right neighbour
   counts, on the last column only the lower one, and the bottom-right pixel never: that is
   the same as extending the mask by copying its last row and column.
2. Tolerance: a disk of radius ``ceil(0.008 * hypot(H, W))`` pixels (8 at 480x854), the
   offsets with ``dx**2 + dy**2 <= r**2``.
3. Precision = fraction of predicted boundary pixels within the disk of a ground-truth
   boundary pixel; recall = the converse; ``F = 2PR / (P + R)``.
   F = 1 when both boundaries are empty, 0 when exactly one is.

Exact and fast:

- Crop. Boundary pixels lie in the bounding box of the two masks grown by one pixel. The
  crop's last row (column) is the image's, or an empty margin whose copy is as empty as
  the image beyond it, so the copy rule of 1. gives the image's boundary on the crop.
  Dilated maps are only read at boundary pixels, all inside the crop, so the dilation
  needs nothing outside it either.
- Disk dilation = union over row offsets ``dy`` of horizontal runs of half-width
  ``isqrt(r**2 - dy**2)`` moved by ``dy`` rows; the runs are grown by doubling.
- Everything runs on bit-packed rows (:mod:`lipnb.metrics.bitrows`), 64 pixels a word.
"""

from __future__ import annotations

import math

import numpy as np

from lipnb.metrics.bitrows import WORD_BITS, count, pack_rows, shift_columns, unpack_rows

BOUND_TH = 0.008  # tolerance, as a fraction of the image diagonal


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Tolerance radius in pixels for an image of ``shape`` = (H, W); ``bound_th`` >= 1 is pixels."""
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    height, width = shape[-2:]
    return int(math.ceil(bound_th * math.sqrt(height * height + width * width)))


def disk_half_widths(radius: int) -> list[int]:
    """Half-width of the disk's row at offset ``dy`` = 0..radius: ``isqrt(r**2 - dy**2)``."""
    return [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), half-open, of the True pixels of ``mask`` [H, W]; None if empty."""
    rows = np.flatnonzero(mask.max(axis=1))  # max: faster than any, same answer
    if rows.size == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y0:y1].max(axis=0))
    return y0, y1, int(cols[0]), int(cols[-1]) + 1


def boundary_crop(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Slices of the crop that holds every boundary pixel of masks inside ``box``: the box
    grown by one pixel on each side, clipped to the image of ``shape`` = (H, W)."""
    y0, y1, x0, x1 = box
    height, width = shape
    return slice(max(y0 - 1, 0), min(y1 + 1, height)), slice(max(x0 - 1, 0), min(x1 + 1, width))


# ----------------------------------------------------------------------------- packed rows


def extend_masks(masks: list[np.ndarray]) -> np.ndarray:
    """Masks bool [h, w] -> stacked bool [len(masks), h + 1, w + 1], last row and column copied."""
    h, w = masks[0].shape
    extended = np.empty((len(masks), h + 1, w + 1), dtype=bool)
    for i, mask in enumerate(masks):
        extended[i, :h, :w] = mask
    extended[:, h, :w] = extended[:, h - 1, :w]
    extended[:, :, w] = extended[:, :, w - 1]
    return extended


def packed_boundaries(extended: np.ndarray, pad_words: int = 1) -> np.ndarray:
    """Boundary maps of masks given by :func:`extend_masks`: bool [..., h + 1, w + 1]
    -> packed uint64 [..., h, n] (see :mod:`lipnb.metrics.bitrows`)."""
    h, w = extended.shape[-2] - 1, extended.shape[-1] - 1
    seg = pack_rows(extended, pad_words)
    right = shift_columns(seg, -1)  # right[x] = seg[x + 1]
    here, below, below_right = seg[..., :-1, :], seg[..., 1:, :], right[..., 1:, :]
    b = (here ^ right[..., :-1, :]) | (here ^ below) | (here ^ below_right)
    inside = pack_rows(np.arange(w + 1)[None] < w, pad_words)  # [1, n]: drop the copied column
    b &= np.tile(inside, (h, 1))
    return b


def packed_dilate_disk(words: np.ndarray, radius: int) -> np.ndarray:
    """Dilation of packed maps uint64 [..., h, n] by the disk of ``radius``.

    The rows need at least ``radius`` empty columns on each side (``pad_words_for``).
    """
    widths = disk_half_widths(radius)
    runs, current, half = {}, words, 0  # half-width -> rows dilated horizontally by it
    for target in sorted(set(widths)):
        while half < target:  # [-a, a] + [-k, k] = [-a-k, a+k], no gap while k <= 2a + 1
            k = min(target - half, 2 * half + 1, WORD_BITS - 1)
            grown = shift_columns(current, k)
            grown |= shift_columns(current, -k)
            grown |= current
            current, half = grown, half + k
        runs[target] = current
    out = runs[widths[0]].copy()
    for dy in range(1, radius + 1):
        out[..., dy:, :] |= runs[widths[dy]][..., :-dy, :]
        out[..., :-dy, :] |= runs[widths[dy]][..., dy:, :]
    return out


def f_from_packed(boundaries: np.ndarray, radius: int) -> float:
    """F of packed boundary maps uint64 [2, h, n] (ground truth, prediction), tolerance ``radius``."""
    gt_boundary, pred_boundary = boundaries
    n_gt, n_pred = count(gt_boundary), count(pred_boundary)
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    gt_dil, pred_dil = packed_dilate_disk(boundaries, radius)
    precision = count(pred_boundary & gt_dil) / float(n_pred)
    recall = count(gt_boundary & pred_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def pad_words_for(radius: int) -> int:
    """Empty words each side of a packed row so that dilation by ``radius`` loses nothing."""
    return max(1, -(-radius // WORD_BITS))


# ----------------------------------------------------------------------------- public


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a mask: bool [H, W] -> bool [H, W] (DAVIS ``_seg2bmap``)."""
    seg = np.asarray(seg, dtype=bool)
    return unpack_rows(packed_boundaries(extend_masks([seg]))[0], seg.shape[-1])


def dilate_disk(maps: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by the disk of ``radius``: bool [..., H, W] -> bool [..., H, W].

    Pixels outside the image count as empty (as ``cv2.dilate`` with its default border).
    """
    pad = pad_words_for(radius)
    dilated = packed_dilate_disk(pack_rows(np.asarray(maps, dtype=bool), pad), radius)
    return unpack_rows(dilated, maps.shape[-1], pad)


def f_crop(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F of masks bool [h, w] cropped as :func:`boundary_crop` (or whole images)."""
    return f_from_packed(packed_boundaries(extend_masks([gt, pred]), pad_words_for(radius)), radius)


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of one frame: ``gt``, ``pred`` boolean masks [H, W] -> float in [0, 1]."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    box = bounding_box(gt | pred)
    if box is None:  # both masks empty: both boundaries empty
        return 1.0
    rows, cols = boundary_crop(box, gt.shape)
    return f_crop(gt[rows, cols], pred[rows, cols], boundary_radius(gt.shape, bound_th))
