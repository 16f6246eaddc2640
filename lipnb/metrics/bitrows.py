"""Bit-packed mask rows: 64 pixels per machine word, for fast exact morphology.

A boolean mask [..., h, w] becomes uint64 [..., h, n]: pixel ``x`` of a row is bit
``x % 64`` of word ``pad + x // 64`` (``np.packbits(bitorder="little")`` read as
little-endian uint64), with ``pad`` empty words on each side. Moving a row by ``k``
columns is then a shift and an OR per word, a vertical move is a slice, and counting
pixels is ``np.bitwise_count``: every operation touches 1/64 of the bytes of a bool array.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 64
_SHIFTS = [np.uint64(k) for k in range(WORD_BITS)]


def pack_rows(masks: np.ndarray, pad_words: int = 1) -> np.ndarray:
    """bool [..., h, w] -> uint64 [..., h, pad_words + ceil(w / 64) + pad_words]."""
    packed = np.packbits(masks, axis=-1, bitorder="little")  # [..., h, ceil(w / 8)] bytes
    n_words = -(-packed.shape[-1] // 8) + 2 * pad_words
    out = np.zeros(packed.shape[:-1] + (n_words * 8,), dtype=np.uint8)
    out[..., pad_words * 8: pad_words * 8 + packed.shape[-1]] = packed
    return out.view("<u8")


def unpack_rows(words: np.ndarray, width: int, pad_words: int = 1) -> np.ndarray:
    """Inverse of :func:`pack_rows`: uint64 [..., h, n] -> bool [..., h, width]."""
    raw = np.ascontiguousarray(words).view(np.uint8)[..., pad_words * 8:]
    return np.unpackbits(raw, axis=-1, count=width, bitorder="little").astype(bool)


def shift_columns(words: np.ndarray, k: int) -> np.ndarray:
    """Move every pixel ``k`` columns right (``k > 0``) or left (``k < 0``), ``0 < |k| < 64``.

    The rows are processed as one run of words (fast): a pixel pushed past the end of its
    row lands in the padding words, so rows stay apart as long as the total move is at
    most ``64 * pad_words`` columns.
    """
    flat = words.reshape(words.shape[:-2] + (-1,))
    if k > 0:  # column x -> x + k: towards the higher bits
        out = flat << _SHIFTS[k]
        out[..., 1:] |= flat[..., :-1] >> _SHIFTS[WORD_BITS - k]
    else:
        out = flat >> _SHIFTS[-k]
        out[..., :-1] |= flat[..., 1:] << _SHIFTS[WORD_BITS + k]
    return out.reshape(words.shape)


def count(words: np.ndarray) -> int:
    """Number of set pixels."""
    return int(np.bitwise_count(words).sum())
