"""Input files on disk: the checks every reader of frames and masks makes before it opens one.

- **Regular files only.** A path is ``os.stat``-ed before it is opened: a named pipe, socket or
  device among the frames or masks is refused at once (opening a pipe would wait for a writer
  forever), a symbolic link loop or a broken link is named with advice.
- **Frame order.** :func:`list_frames` lists a folder's frames in natural order: the digit runs
  of a name compare as numbers, so ``0.jpg, 1.jpg, ..., 10.jpg, 11.jpg`` come in that order,
  and DAVIS's zero-padded ``00000.jpg, 00001.jpg, ...`` in plain name order (the same). Names
  whose order would be a guess are refused: two names with the same number (``1.jpg`` and
  ``01.jpg``, or ``1.jpg`` and ``1.png``), or numbered names mixed with names without digits.
- **Pixel limit.** Every image decoder refuses an image whose header declares more pixels than
  Pillow's decompression-bomb limit, ``PIL.Image.MAX_IMAGE_PIXELS`` (read when called; None
  turns it off), before decoding it: :func:`check_pixel_limit`.

Every problem raises :class:`DavisFormatError` (also importable from :mod:`lipnb.data.davis`),
a ``ValueError`` whose message is one line naming the file and saying what to do.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")

__all__ = ["DavisFormatError", "FRAME_SUFFIXES", "check_regular_file", "check_pixel_limit", "natural_key",
           "sort_frames", "list_frames", "open_image", "read_rgb"]


class DavisFormatError(ValueError):
    """A DAVIS folder, list or PNG that is missing or not as DAVIS lays it out.

    The message names the offending path.
    """


DavisFormatError.__module__ = "lipnb.data.davis"  # its public home (pickles and reprs say so)

_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def check_regular_file(path: str | os.PathLike, what: str = "file", missing: str | None = None) -> os.stat_result:
    """``os.stat`` of ``path`` (following links), or DavisFormatError if it is no regular file.

    Never opens the path, so a named pipe cannot block. ``what`` names the file in messages
    ("mask file", "frame"); ``missing`` replaces the message for a path that does not exist.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise DavisFormatError(f"{what} {path} is a broken symbolic link (to {os.readlink(path)}, which does "
                                   "not exist); remove it or point it at a file") from None
        raise DavisFormatError(missing or f"missing {what}: {path}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DavisFormatError(f"{what} {path} is a symbolic link loop; remove it or point it at a file") from None
        raise DavisFormatError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DavisFormatError(f"expected a {what}, found a folder: {path}")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise DavisFormatError(f"{what} {path} is {kind}, not a regular file; remove it or replace it with "
                               "the image file")
    return info


def check_pixel_limit(width: int, height: int, path: str | os.PathLike) -> None:
    """Refuse an image whose header declares more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and int(width) * int(height) > limit:
        raise DavisFormatError(
            f"{path} declares {width}x{height} = {int(width) * int(height)} pixels, above Pillow's limit of "
            f"{limit} (PIL.Image.MAX_IMAGE_PIXELS, a guard against decompression bombs); use a smaller image, "
            "or raise the limit if you trust the file")


def open_image(path: str | os.PathLike, what: str = "image"):
    """``PIL.Image.open(path)`` (lazy: the header only) of a regular file within the pixel limit.

    Use it as a context manager. Pillow's own bomb check (a warning above the limit, an error
    above twice it) becomes the one-line DavisFormatError of :func:`check_pixel_limit`; any other
    failure to open is ``cannot read <what> <path>: <reason>; replace or remove it``.
    """
    from PIL import Image

    path = Path(path)
    check_regular_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one line
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        raise DavisFormatError(
            f"{path} declares {pixels.group(1) if pixels else 'too many'} pixels, above Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS} (PIL.Image.MAX_IMAGE_PIXELS, a guard against decompression bombs); use a "
            "smaller image, or raise the limit if you trust the file") from None
    except FileNotFoundError:
        raise DavisFormatError(f"missing {what}: {path}") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ...
        raise DavisFormatError(f"cannot read {what} {path}: {_reason(error)}; replace or remove it") from None
    try:
        check_pixel_limit(*image.size, path)
    except DavisFormatError:
        image.close()
        raise
    return image


def _reason(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def read_rgb(path: str | os.PathLike, what: str = "frame") -> np.ndarray:
    """An image file as RGB, uint8 [H, W, 3]: a regular file, within the pixel limit, decoded by Pillow."""
    with open_image(path, what) as image:
        try:
            return np.asarray(image.convert("RGB"))
        except Exception as error:  # noqa: BLE001 - truncated, corrupt ...
            raise DavisFormatError(f"cannot decode {what} {path}: {_reason(error)}; replace or remove it") from None


_NUMBERS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key of a file stem: its text and digit runs, the digit runs as numbers.

    ``natural_key("frame10") > natural_key("frame9")``; zero-padded names of one width sort as
    their plain names do. Keys always alternate text, number, text, ... (so any two compare).
    """
    parts = _NUMBERS.split(name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def sort_frames(paths, folder: str | os.PathLike | None = None, what: str = "frames") -> list[Path]:
    """``paths`` in natural order of their stems (see :func:`natural_key`), or DavisFormatError
    when that order would be a guess: two stems with the same key (``1`` and ``01``, or one stem
    with two suffixes), or stems with digits mixed with stems without. ``what`` names the files
    in messages ("frames", "masks")."""
    paths = [Path(p) for p in paths]
    where = folder if folder is not None else (paths[0].parent if paths else "")
    keyed = sorted(((natural_key(p.stem), p.name, p) for p in paths), key=lambda t: (t[0], t[1]))
    for (key_a, _, a), (key_b, _, b) in zip(keyed, keyed[1:]):
        if key_a == key_b:
            raise DavisFormatError(f"{what} {a.name} and {b.name} in {where} have the same name or number, so their "
                                   "order is ambiguous; rename them so each file has its own number (or remove one)")
    numbered = [p for p in paths if _NUMBERS.search(p.stem)]
    if numbered and len(numbered) != len(paths):
        plain = next(p for p in paths if not _NUMBERS.search(p.stem))
        raise DavisFormatError(f"{what} in {where} mix numbered names ({numbered[0].name}) with names without a "
                               f"number ({plain.name}), so their order is ambiguous; number every file or move the "
                               "others out of the folder")
    return [p for _, _, p in keyed]


def list_frames(folder: str | os.PathLike, suffixes=FRAME_SUFFIXES, exclude=(), what: str = "frame") -> list[Path]:
    """The frame files of ``folder`` in natural order (``0.jpg, 1.jpg, ..., 10.jpg``).

    Args:
        folder: a folder of frames.
        suffixes: the file suffixes that are frames, lower case (compared case-insensitively).
        exclude: paths that are no frames even if they lie in the folder (e.g. the first mask).
        what: what the files are, in messages ("frame", "mask").

    Returns:
        the frame paths (``folder / name``), possibly empty. Hidden files (``.name``) are
        ignored; any other entry with a frame suffix must be a regular file (or a link to one):
        a pipe, socket, device, folder, broken link or link loop raises DavisFormatError at once.
        Ambiguous names raise too (see :func:`sort_frames`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DavisFormatError(f"{what}s folder not found: {folder}")
    suffixes = tuple(s.lower() for s in suffixes)
    excluded = set()
    for p in exclude:
        try:
            excluded.add(Path(p).resolve(strict=True))
        except (OSError, RuntimeError):
            pass
    frames = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = folder / entry.name
            if entry.name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            check_regular_file(path, what)
            if excluded and path.resolve() in excluded:
                continue
            frames.append(path)
    return sort_frames(frames, folder, f"{what}s")
