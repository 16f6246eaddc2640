"""How lipnb reads a mask file: the one mask policy of every command.

Two readers share it: :func:`read_mask` (DAVIS annotations and results: the dataset reader,
``evaluate``, figures) and :func:`read_first_mask` (a user's first-frame mask: ``segment
--first-mask``). Both return object ids, uint8 [H, W], 0 = background. By the PNG's mode:

**Palette (indexed, ``P``; ``PA`` with its alpha dropped).** The index of a pixel is its object
id. 255 is *void* (pixels the DAVIS 2017 toolkit does not score; read as background): that is
the DAVIS 2017 convention for palette PNGs, and it applies to palette PNGs only, with one
exception kept for the official toolkit (below). ``read_mask(year="2016")``: DAVIS 2016 has one
object per sequence, so any non-zero index is that object (id 1).

**Bilevel (``1``).** 1 is the object (id 1).

**Grayscale (``L``; ``LA`` with its alpha dropped; for first masks also ``RGB``/``RGBA`` whose
pixels are all grey).**

- ``read_mask(year="2016")``, the DAVIS 2016 convention (one object, grayscale 0/255): a file
  with exactly two levels ``{0, v}`` has ``v`` as its object (0/255 and 0/1 alike); any other
  file has its object where the value is > 127 (DAVIS 2016's threshold, which also reads an
  anti-aliased edge as the nearer of 0 and 255).
- ``read_mask(year="2017")`` reads grey values as the official DAVIS 2017 toolkit does: as
  palette indices, 255 void. (So a DAVIS 2016 0/255 mask read as 2017 has no object, and the
  dataset says so: "use year='2016'".)
- :func:`read_first_mask`, a user's mask:

  - one level, or exactly two levels ``{0, v}``: one object (id 1 where the value is ``v``).
  - **anti-aliased edges** (a two-level mask resized or drawn smoothly): snapped, with a
    :class:`MaskSnappedWarning` naming the file. Detected as: besides 0 and the main level
    ``M`` (the most frequent non-zero level) every other level lies strictly between 0 and
    ``M``; those intermediate pixels are no more than the ``M`` pixels; each lies within
    :data:`EDGE_RADIUS` pixels of a 0 pixel and of an ``M`` pixel, and touches a pixel of
    another value (no flat region of its own). Each pixel becomes the nearer of 0 and ``M``
    (a tie goes to 0): one object.
  - more than two levels otherwise (e.g. 0, 128, 255: two objects, or an object and void?):
    **refused** with advice, unless the caller says how to read them with ``grey_levels``:

    - ``grey_levels="objects"``: each distinct non-zero level is one object, numbered
      1, 2, ... in ascending order of level (255 is an object like any other).
    - ``grey_levels="ids"``: each value is an object id, read exactly as a palette index
      (so 255 is void, as in DAVIS 2017).

    Given, ``grey_levels`` applies to every grayscale first mask (one with one or two levels
    included): the caller said how grey values are to be read.

**Colour (``RGB``, ``RGBA``).** ``read_mask`` refuses colour PNGs (a DAVIS mask holds ids, not
colours). :func:`read_first_mask` reads black plus exactly one other colour as one object and
refuses more colours with advice (save a palette PNG).

Every refusal raises :class:`~lipnb.data.davis.DavisFormatError`, one line naming the file and
saying what to do. Before decoding, a mask must be a regular file (a pipe is refused, never
opened) within Pillow's pixel limit (:mod:`lipnb.data.files`).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from lipnb.data.files import DavisFormatError, check_pixel_limit, check_regular_file
from lipnb.data.png import decode_mask_png, png_size

YEARS = ("2016", "2017")
VOID = 255  # palette PNGs (DAVIS 2017): pixels not scored by the toolkit (read as background)
GREY_LEVELS = (None, "objects", "ids")  # how read_first_mask reads grayscale: see the module docstring
EDGE_RADIUS = 8  # anti-aliased edges: intermediate pixels lie within this many pixels of 0 and of the main level
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OTHER_FORMATS = ((b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"),
                 (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))

__all__ = ["read_mask", "read_first_mask", "MaskSnappedWarning", "GREY_LEVELS", "EDGE_RADIUS", "VOID", "YEARS"]


class MaskSnappedWarning(UserWarning):
    """A first mask's anti-aliased edges were snapped to its two main levels (the message names the file)."""


def _decode_png(path: Path) -> tuple[np.ndarray, str]:
    """Pixel values and Pillow mode of a PNG (any mode), or raise DavisFormatError naming it."""
    check_regular_file(path, "mask file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DavisFormatError(f"missing mask file: {path}") from None
    except IsADirectoryError:
        raise DavisFormatError(f"expected a PNG file, found a folder: {path}") from None
    if not data:
        raise DavisFormatError(f"{path} is empty (0 bytes); write the mask again as an indexed PNG")
    if not data.startswith(PNG_SIGNATURE):
        kind = next((name for magic, name in OTHER_FORMATS if data.startswith(magic)), None)
        raise DavisFormatError(f"{path} is not a PNG file" + (f" (it holds a {kind} image)" if kind else "")
                               + "; save masks as indexed (or grayscale) PNGs, never as JPEG")
    size = png_size(data)
    if size is not None:
        check_pixel_limit(*size, path)
    fast = decode_mask_png(data, path)
    if fast is not None:
        return fast  # uint8 [H, W], mode L or P
    try:
        image = Image.open(io.BytesIO(data))
        check_pixel_limit(*image.size, path)
        image.load()
    except DavisFormatError:
        raise
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error...
        reason = str(error).split(" <_io.")[0] if "<_io." in str(error) else str(error)
        raise DavisFormatError(f"cannot decode PNG {path}: {reason}; write the mask again") from None
    if image.mode in ("P", "L", "1"):
        return np.asarray(image).astype(np.uint8), image.mode  # a writable copy; mode 1: booleans -> 0/1
    return np.asarray(image), image.mode


def _read_png(path: Path) -> tuple[np.ndarray, str]:
    """Pixel values uint8 [H, W] and Pillow mode (P, L or 1) of a mask PNG, or raise DavisFormatError."""
    values, mode = _decode_png(path)
    if mode in ("LA", "PA"):  # a transparency channel: keep the values, drop it
        return values[..., 0], mode[0]
    if mode not in ("P", "L", "1"):
        raise DavisFormatError(
            f"{path}: PNG mode {mode!r}; a DAVIS mask must be an indexed (P) or "
            f"grayscale (L) PNG whose values are object ids, not colours")
    return values, mode


def read_mask(path: str | os.PathLike, year: str = "2017") -> np.ndarray:
    """Read a DAVIS mask (annotation or result) as object ids, by the mask policy of this module.

    Args:
        path: an indexed (``P``) or grayscale (``L``, ``1``) PNG; an alpha channel
            (``LA``, ``PA``, found in a few DAVIS 2016 masks) is ignored.
        year: ``"2016"``: one object (id 1): a non-zero palette index; in grayscale, ``v`` of a
            two-level ``{0, v}`` mask, else a value > 127. ``"2017"``: pixel values are ids;
            void (255) -> 0.

    Returns:
        ids: uint8 array [H, W], 0 = background.
    """
    if year not in YEARS:
        raise ValueError(f"year must be one of {YEARS}, got {year!r}")
    values, mode = _read_png(Path(path))
    if mode == "1":
        return values  # 0/1 already
    if year == "2016":
        if mode != "L":
            return (values != 0).view(np.uint8)
        top = values.max(initial=0)
        if top > 127 or not values.any():  # 0/255 and anything reaching over the threshold
            return (values > 127).view(np.uint8)
        if ((values == 0) | (values == top)).all():  # {0, v}: v is the object (0/1 included)
            return (values != 0).view(np.uint8)
        return (values > 127).view(np.uint8)  # several levels, all <= 127: DAVIS 2016's threshold
    if VOID in values:
        values = np.where(values == VOID, 0, values).astype(np.uint8)
    return values


# ----------------------------------------------------------------------------- first masks


def _levels_text(levels) -> str:
    levels = [int(v) for v in levels]
    shown = levels if len(levels) <= 8 else levels[:6] + ["..."] + levels[-1:]
    return ", ".join(str(v) for v in shown)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Chebyshev distance) of a True pixel of ``mask`` (bool [H, W])."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        n = out.shape[axis]
        for shift in range(1, min(radius, n - 1) + 1):
            if axis == 0:
                grown[shift:] |= out[:-shift]
                grown[:-shift] |= out[shift:]
            else:
                grown[:, shift:] |= out[:, :-shift]
                grown[:, :-shift] |= out[:, shift:]
        out = grown
    return out


def _touches_other_value(values: np.ndarray) -> np.ndarray:
    """Pixels with an 8-neighbour of another value (bool [H, W])."""
    padded = np.pad(values, 1, mode="edge")
    h, w = values.shape
    out = np.zeros(values.shape, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                out |= padded[dy: dy + h, dx: dx + w] != values
    return out


def _main_level(values: np.ndarray, levels: np.ndarray, counts: np.ndarray) -> int | None:
    """The main level ``M`` of an anti-aliased two-level mask, or None if ``values`` is not one."""
    if levels[0] != 0 or len(levels) < 3:
        return None
    main = int(levels[1:][np.argmax(counts[1:])])
    if levels[-1] != main:  # a level above the main one: no edge between 0 and M
        return None
    between = (values != 0) & (values != main)
    if between.sum() > counts[-1]:
        return None
    near = _dilate(values == 0, EDGE_RADIUS) & _dilate(values == main, EDGE_RADIUS) & _touches_other_value(values)
    return main if not (between & ~near).any() else None


def _grey_ids(values: np.ndarray, path: Path, grey_levels: str | None, option: str) -> np.ndarray:
    """Object ids of a grayscale first mask (uint8 [H, W]) by the policy of this module."""
    if grey_levels == "ids":
        return np.where(values == VOID, 0, values).astype(np.uint8)
    levels, counts = np.unique(values, return_counts=True)
    if grey_levels == "objects":
        nonzero = levels[levels != 0]
        lookup = np.zeros(256, dtype=np.uint8)
        lookup[nonzero] = np.arange(1, len(nonzero) + 1, dtype=np.uint8)
        return lookup[values]
    if len(levels) == 1 or (len(levels) == 2 and levels[0] == 0):
        return (values != 0).view(np.uint8) if len(levels) == 2 or levels[0] == 0 else np.ones_like(values)
    main = _main_level(values, levels, counts)
    if main is not None:
        snapped = values.astype(np.int32) * 2 > main  # the nearer of 0 and M; a tie goes to 0
        warnings.warn(f"{path}: anti-aliased edges: {int(((values != 0) & (values != main)).sum())} pixel(s) at "
                      f"{len(levels) - 2} grey level(s) between 0 and {main} snapped to the nearer of 0 and {main} "
                      f"(one object); save the mask without smoothing, or as a palette PNG, to avoid this",
                      MaskSnappedWarning, stacklevel=3)
        return snapped.view(np.uint8)
    background = "" if levels[0] == 0 else ", none of them 0 (background)"
    raise DavisFormatError(
        f"{path} has {len(levels)} grey levels ({_levels_text(levels)}){background}, so it is not one object on "
        f"black; save it as a palette PNG with one index per object, or pass how to read it: {option}objects "
        f"(each non-zero level is one object, in ascending order) or {option}ids (each level is an object id, "
        f"255 void)" + ("; if it is one object with soft edges, threshold it to two levels first" if len(levels) > 8
                       else ""))


def read_first_mask(path: str | os.PathLike, grey_levels: str | None = None,
                    option: str = "grey_levels=") -> np.ndarray:
    """Object ids of a user's first-frame mask, by the mask policy of this module.

    Args:
        path: a PNG: palette (index = object id, 255 void), bilevel, grayscale or RGB(A).
        grey_levels: how to read a grayscale mask (see the module docstring):

            - ``None`` (default): 0 and one level ``v`` are one object; anti-aliased edges
              are snapped (with a :class:`MaskSnappedWarning`); more levels are refused.
            - ``"objects"``: each distinct non-zero level is one object, ids 1..K in
              ascending order of level.
            - ``"ids"``: each value is an object id, as a palette index (255 void).

            Palette, bilevel and colour masks ignore it.
        option: how the refusal's advice spells the option, e.g. ``"--grey-levels "`` for a
            command line (the default names this parameter: ``grey_levels=objects``).

    Returns:
        ids: uint8 [H, W], 0 = background.

    Raises:
        DavisFormatError: one line naming the file: not a regular file, not a PNG, above the
            pixel limit, undecodable, a grayscale mask of several levels without
            ``grey_levels``, a colour mask of several colours.
    """
    if grey_levels not in GREY_LEVELS:
        raise ValueError(f"grey_levels must be one of {GREY_LEVELS}, got {grey_levels!r}")
    path = Path(path)
    values, mode = _decode_png(path)
    if mode in ("P", "PA"):  # DAVIS 2017 palette PNG: indices are ids, 255 void
        values = values[..., 0] if mode == "PA" else values
        return np.where(values == VOID, 0, values).astype(np.uint8)
    if mode == "1":
        return values.astype(np.uint8)
    if mode in ("L", "LA"):
        return _grey_ids((values[..., 0] if mode == "LA" else values).astype(np.uint8, copy=False), path,
                         grey_levels, option)
    if mode in ("RGB", "RGBA"):
        rgb = np.ascontiguousarray(values[..., :3], dtype=np.uint8)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():  # grey, saved as RGB
            return _grey_ids(rgb[..., 0].copy(), path, grey_levels, option)
        colours = np.unique(rgb.reshape(-1, 3), axis=0)
        black = (colours == 0).all(axis=1)
        if len(colours) == 1 or (len(colours) == 2 and black.any()):  # (black and) one colour: one object
            return (rgb != 0).any(axis=2).view(np.uint8)
        shown = ", ".join(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in colours[:4].tolist())
        more = ", ..." if len(colours) > 4 else ""
        raise DavisFormatError(
            f"{path} is a colour ({mode}) PNG with {len(colours)} colours ({shown}{more}), not one colour on black; "
            "save it as a palette PNG with one index per object (or a grayscale PNG with one grey level per object)")
    raise DavisFormatError(f"{path}: PNG mode {mode!r}; a first mask must be an indexed (P) or grayscale (L) PNG "
                           "whose values are object ids")
