"""A small exact PNG codec for masks: the fast path of reading and writing DAVIS masks.

Decoding handles what DAVIS annotations and our results use (non-interlaced 8-bit grayscale
or 1/2/4/8-bit indexed images whose rows are all unfiltered or all "Sub"-filtered) with zlib
and numpy, about twice as fast as Pillow; it returns None for anything else, and callers
then let Pillow decode the file (and report any damage). Encoding writes indexed PNGs at
the smallest bit depth that holds the ids.

Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) holds here too: a PNG whose
IHDR declares more pixels is refused before anything is decompressed, and the image data is
never inflated beyond the size the header declares.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from lipnb.data.files import check_pixel_limit
from lipnb.data.palette import DAVIS_PALETTE


def _unfilter_sub(raw: np.ndarray) -> np.ndarray:
    """Undo PNG filter 1 ("Sub": each byte stores its difference to the byte on its left).

    Args:
        raw: uint8 [h, 1 + n], each row its filter byte (1) then n filtered bytes.
    Returns:
        uint8 [h, n]: running sums mod 256 along each row.

    Masks are runs of equal values, so most differences are 0: the row is rebuilt from its
    few non-zero bytes (found a 64-bit word at a time) and the runs between them.
    """
    h, n1 = raw.shape
    flat = raw.reshape(-1)
    words = np.zeros(-(-flat.size // 8), dtype="<u8")
    words.view(np.uint8)[: flat.size] = flat
    nonzero_words = np.flatnonzero(words)
    within = np.flatnonzero(words[nonzero_words].view(np.uint8).reshape(-1, 8))
    starts = nonzero_words[within // 8] * 8 + within % 8  # non-zero bytes, filter bytes included
    increments = flat[starts].astype(np.int64)
    is_row_start = starts % n1 == 0
    increments[is_row_start] = 0  # the running sum restarts at each row's filter byte
    total = np.cumsum(increments)
    row_base = total[np.flatnonzero(is_row_start)][np.cumsum(is_row_start) - 1]
    values = (total - row_base).astype(np.uint8)
    out = np.repeat(values, np.diff(np.append(starts, flat.size)))
    return out.reshape(h, n1)[:, 1:]


def _unpack_depth(data: np.ndarray, depth: int, width: int) -> np.ndarray:
    """Rows of 1-, 2- or 4-bit samples, most significant first: uint8 [h, n] -> [h, width]."""
    if depth == 8:
        return data[:, :width]
    if depth == 1:
        return np.unpackbits(data, axis=1, count=width)
    shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)  # 4 bits: (4, 0); 2 bits: (6, 4, 2, 0)
    samples = (data[:, :, None] >> shifts) & np.uint8(2 ** depth - 1)
    return samples.reshape(data.shape[0], -1)[:, :width]


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk (the first chunk), or None if there is none."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack_from(">II", data, 16)


def decode_mask_png(data: bytes, path=None) -> tuple[np.ndarray, str] | None:
    """Fast exact decoding of the PNGs masks are usually stored as, else None.

    Handles non-interlaced 8-bit grayscale and 1/2/4/8-bit indexed PNGs whose rows are all
    unfiltered or all "Sub"-filtered (DAVIS annotations, our results). Returns
    (values uint8 [H, W], Pillow mode "L" or "P"); None for anything else, including damaged
    files: Pillow decodes those (and reports the damage).

    Raises :class:`~lipnb.data.files.DavisFormatError` (naming ``path``) when the header declares
    more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``, before decompressing anything.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    size = png_size(data)
    if size is not None:
        check_pixel_limit(*size, path if path is not None else "PNG image")
    pos, header, idat = 8, None, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8: pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            return None
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            return None
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        return None
    width, height, depth, color, _, _, interlace = header
    if interlace or not ((color == 0 and depth == 8) or (color == 3 and depth in (1, 2, 4, 8))):
        return None
    check_pixel_limit(width, height, path if path is not None else "PNG image")
    row_bytes = (width * depth + 7) // 8
    try:  # never inflate more than the header declares (plus one byte, to see an excess)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(b"".join(idat), height * (row_bytes + 1) + 1)
    except zlib.error:
        return None
    if not inflate.eof or len(raw) != height * (row_bytes + 1):  # truncated, or more than declared
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, row_bytes + 1)
    filters = rows[:, 0]
    if not filters.any():
        values = rows[:, 1:]
    elif (filters == 1).all():
        values = _unfilter_sub(rows)
    else:  # "Up", "Average", "Paeth" or a mix: leave it to Pillow
        return None
    return _unpack_depth(values, depth, width), ("L" if color == 0 else "P")


def _palette_bits(max_id: int) -> int:
    """Smallest PNG bit depth (1, 2, 4 or 8) whose palette holds ids 0..max_id."""
    return next(bits for bits in (1, 2, 4, 8) if max_id < 2 ** bits)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def encode_indexed_png(ids: np.ndarray) -> bytes:
    """PNG bytes of ids uint8 [H, W]: indexed colour, DAVIS palette, unfiltered rows.

    The bit depth is the smallest that holds the largest id (1, 2, 4 or 8), the palette the
    first 2**bits DAVIS colours: every PNG reader sees the same indices, and the files are
    small and decode fast (:func:`decode_mask_png`).
    """
    height, width = ids.shape
    bits = _palette_bits(int(ids.max()) if ids.size else 0)
    per_byte = 8 // bits
    padded = np.zeros((height, -(-width // per_byte) * per_byte), dtype=np.uint8)
    padded[:, :width] = ids
    if bits == 1:
        packed = np.packbits(padded, axis=1)
    else:
        shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)  # first sample in the high bits
        packed = np.bitwise_or.reduce(padded.reshape(height, -1, per_byte) << shifts, axis=2)
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), packed], axis=1)  # filter 0
    header = struct.pack(">IIBBBBB", width, height, bits, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"PLTE", DAVIS_PALETTE[: 2 ** bits].tobytes())
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))
