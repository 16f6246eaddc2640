"""DAVIS 2016 and 2017 on disk: sequences, their frames and masks, and writing results.

Layout (both years; ``<res>`` is ``480p`` or ``Full-Resolution``, DAVIS 2016 also ``240p``)::

    ROOT/JPEGImages/<res>/<sequence>/00000.jpg ...   frames
    ROOT/Annotations/<res>/<sequence>/00000.png ...  masks (test sets: first frame only)
    ROOT/ImageSets/<year>/<split>.txt                 one sequence name per line

Masks differ between the years (DAVIS 2016: one object, grayscale 0/255; DAVIS 2017: palette
PNGs of object ids, 255 void); how every mask file is read is the mask policy of
:mod:`lipnb.data.masks`, the one place it is written down. A result holding an id that is not
an object of the ground truth is an error, as in the official toolkit.

Frames and masks are listed in natural order (``0.jpg, 1.jpg, ..., 10.jpg``; DAVIS's
``00000.jpg ...`` in name order), only regular files, within Pillow's pixel limit
(:mod:`lipnb.data.files`).

Frames may come at another resolution than the masks (``../shared/data/davis2016`` ships
240p frames and 480p masks): :class:`DavisDataset` takes the masks from ``resolution`` and
the frames from ``frames_resolution``, falling back to any ``JPEGImages/<res>`` folder that
holds the sequence. Results are always written and scored at the masks' resolution.

Masks are written as indexed PNGs with the DAVIS palette at the smallest bit depth that
holds the ids. Reading decodes the common mask encodings (unfiltered or "Sub"-filtered
rows, as in DAVIS and in our results) with :mod:`lipnb.data.png`, exactly and about twice as fast
as Pillow, which decodes everything else.

Every problem with a folder or a PNG raises :class:`DavisFormatError` naming the file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from lipnb.data.files import DavisFormatError, check_regular_file, list_frames, open_image, read_rgb  # noqa: F401
from lipnb.data.masks import OTHER_FORMATS, PNG_SIGNATURE, VOID, YEARS, read_first_mask, read_mask  # noqa: F401
from lipnb.data.palette import DAVIS_PALETTE
from lipnb.data.png import encode_indexed_png

__all__ = ["DavisDataset", "DavisSequence", "DavisFormatError", "read_mask", "read_first_mask", "write_mask",
           "encode_indexed_png", "resize_mask", "list_frames", "DAVIS_PALETTE", "YEARS", "VOID", "PNG_SIGNATURE"]


# ----------------------------------------------------------------------------- masks


def write_mask(path: str | os.PathLike, ids: np.ndarray) -> None:
    """Write object ids [H, W] (uint8) as an indexed PNG with the DAVIS palette.

    See :func:`encode_indexed_png` for the format. The file appears atomically (written to
    a temporary name in the same folder, then renamed); parent folders are created.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.size == 0:
        raise ValueError(f"write_mask: ids must be a non-empty [H, W] array, got shape {ids.shape}")
    if ids.dtype != np.uint8:
        if ids.min() < 0 or ids.max() > 255:
            raise ValueError(f"write_mask: ids must lie in 0..255 for {path}")
        ids = ids.astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(encode_indexed_png(ids))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def resize_mask(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ids [h, w] (uint8) to ``size`` = (H, W)."""
    if ids.shape == tuple(size):
        return ids
    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))
    return np.asarray(image.resize((size[1], size[0]), Image.NEAREST))


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image from its header, without decoding it (a regular file within the pixel limit)."""
    check_regular_file(path, "file", missing=f"missing file: {path}")
    with open_image(path, "image header of") as image:
        width, height = image.size
    return height, width


# ----------------------------------------------------------------------------- sequences


@dataclass
class DavisSequence:
    """One video: its frames and masks on disk.

    Attributes:
        name: sequence name, e.g. ``"blackswan"``.
        year: ``"2016"`` or ``"2017"`` (how masks are read).
        frame_paths: ``num_frames`` JPEGs, in order.
        annotation_paths: the masks, in order: one per frame, or only the first frame's
            (test sets). Their names match the frames' (``00000.png`` for ``00000.jpg``).
    """

    name: str
    year: str
    frame_paths: list[Path]
    annotation_paths: list[Path] = field(repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    @property
    def frame_names(self) -> list[str]:
        """File stems of the frames, e.g. ``["00000", "00001", ...]``; results use them."""
        return [p.stem for p in self.frame_paths]

    @property
    def fully_annotated(self) -> bool:
        return len(self.annotation_paths) == self.num_frames

    @cached_property
    def size(self) -> tuple[int, int]:
        """(H, W) of the annotations: the resolution results are written and scored at."""
        return image_size(self.annotation_paths[0])

    @cached_property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the frames (may differ from :attr:`size`)."""
        return image_size(self.frame_paths[0])

    @cached_property
    def object_ids(self) -> list[int]:
        """Ids of the objects present in the first mask, ascending (background excluded)."""
        ids = [int(i) for i in np.unique(self.first_mask()) if i != 0]
        if not ids:
            hint = " (a DAVIS 2016 0/255 mask? use year='2016')" if self.year == "2017" else ""
            raise DavisFormatError(f"{self.annotation_paths[0]}: first mask has no object{hint}")
        return ids

    def read_frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as RGB: uint8 [H, W, 3] (at :attr:`frame_size`)."""
        return read_rgb(self.frame_paths[i], "frame")

    def read_mask(self, i: int) -> np.ndarray:
        """Ground-truth ids of frame ``i``: uint8 [H, W] (at :attr:`size`), 0 = background."""
        if not 0 <= i < len(self.annotation_paths):
            raise DavisFormatError(
                f"sequence {self.name!r}: no annotation for frame {i} "
                f"({len(self.annotation_paths)} annotated of {self.num_frames})")
        return read_mask(self.annotation_paths[i], self.year)

    def first_mask(self) -> np.ndarray:
        """Ids of the first frame, the semi-supervised input: uint8 [H, W]."""
        return self.read_mask(0)

    def result_path(self, results_dir: str | os.PathLike, i: int) -> Path:
        """Where frame ``i``'s prediction lives: ``results_dir/<name>/<frame stem>.png``."""
        return Path(results_dir) / self.name / f"{self.frame_paths[i].stem}.png"

    def write_result(self, results_dir: str | os.PathLike, i: int, ids: np.ndarray) -> Path:
        """Write frame ``i``'s predicted ids, resized (nearest) to the annotations' size."""
        path = self.result_path(results_dir, i)
        write_mask(path, resize_mask(ids, self.size))
        return path


# ----------------------------------------------------------------------------- dataset


def _list_files(folder: Path, suffix: str) -> list[Path]:
    """The ``suffix`` files of ``folder`` in natural order (DAVIS's ``00000``...: name order)."""
    return list_frames(folder, (suffix,), what="frame" if suffix == ".jpg" else "mask")


class DavisDataset:
    """The sequences of one DAVIS split.

    >>> ds = DavisDataset(root, year="2016", split="val", resolution="480p")
    >>> ds.sequences[:2], len(ds), ds["blackswan"].num_frames
    (['blackswan', 'bmx-trees'], 16, 50)

    Args:
        root: folder holding ``JPEGImages``, ``Annotations`` and ``ImageSets``.
        year: ``"2016"`` (one object per sequence) or ``"2017"`` (several).
        split: ``train``, ``val``, ``test-dev``...: ``ImageSets/<year>/<split>.txt``.
            DAVIS 2016's original lists (``ImageSets/<res>/<split>.txt``, one frame/mask
            path pair per line) are read when the former is absent.
        resolution: the annotations' folder, ``Annotations/<resolution>``.
        frames_resolution: the frames' folder (default: ``resolution``); a sequence it
            lacks is taken from any other ``JPEGImages/<res>`` that has it.
    """

    def __init__(self, root: str | os.PathLike, year: str = "2017", split: str = "val",
                 resolution: str = "480p", frames_resolution: str | None = None):
        if str(year) not in YEARS:
            raise ValueError(f"year must be one of {YEARS}, got {year!r}")
        self.root = Path(root)
        self.year, self.split, self.resolution = str(year), split, resolution
        self.frames_resolution = frames_resolution or resolution
        if not self.root.is_dir():
            raise DavisFormatError(f"DAVIS folder not found: {self.root}")
        self.annotations_dir = self.root / "Annotations" / resolution
        if not self.annotations_dir.is_dir():
            raise DavisFormatError(f"annotation folder not found: {self.annotations_dir}")
        self.split_file, self.sequences = self._read_split()
        self._cache: dict[str, DavisSequence] = {}

    def _read_split(self) -> tuple[Path, list[str]]:
        path = self.root / "ImageSets" / self.year / f"{self.split}.txt"
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            return path, names
        legacy = self.root / "ImageSets" / self.resolution / f"{self.split}.txt"
        if self.year == "2016" and legacy.is_file():  # "/JPEGImages/480p/bear/00000.jpg /Annotations/..."
            names = [line.split()[0].split("/")[-2] for line in legacy.read_text().splitlines() if line.strip()]
            return legacy, list(dict.fromkeys(names))
        raise DavisFormatError(f"sequence list not found: {path}")

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self):
        return (self[name] for name in self.sequences)

    def __contains__(self, name: str) -> bool:
        return name in self.sequences

    def __getitem__(self, name: str) -> DavisSequence:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _frames_dir(self, name: str) -> Path:
        preferred = self.root / "JPEGImages" / self.frames_resolution / name
        if preferred.is_dir():
            return preferred
        frames_root = self.root / "JPEGImages"
        others = sorted(frames_root.iterdir()) if frames_root.is_dir() else []
        for res_dir in others:
            if (res_dir / name).is_dir():
                return res_dir / name
        raise DavisFormatError(f"frames of sequence {name!r} not found: {preferred} "
                               f"(nor in any other {frames_root}/<res>)")

    def _load(self, name: str) -> DavisSequence:
        if name not in self.sequences:
            raise DavisFormatError(f"unknown sequence {name!r}: not listed in {self.split_file}")
        annotations_dir = self.annotations_dir / name
        if not annotations_dir.is_dir():
            raise DavisFormatError(f"annotation folder not found: {annotations_dir}")
        frames_dir = self._frames_dir(name)
        frames = _list_files(frames_dir, ".jpg")
        annotations = _list_files(annotations_dir, ".png")
        if not frames:
            raise DavisFormatError(f"no .jpg frames in {frames_dir}")
        if not annotations:
            raise DavisFormatError(f"no .png masks in {annotations_dir}")
        stems = [p.stem for p in frames]
        if [p.stem for p in annotations] != stems[: len(annotations)] or len(annotations) not in (1, len(frames)):
            missing = sorted(set(stems) - {p.stem for p in annotations})[:5]
            extra = sorted({p.stem for p in annotations} - set(stems))[:5]
            raise DavisFormatError(
                f"frame-count mismatch in sequence {name!r}: {len(frames)} frames in {frames_dir}, "
                f"{len(annotations)} masks in {annotations_dir} (need all frames or only the "
                f"first; masks missing for {missing}, masks without a frame {extra})")
        return DavisSequence(name, self.year, frames, annotations)

    def __repr__(self) -> str:
        return (f"DavisDataset({str(self.root)!r}, year={self.year!r}, split={self.split!r}, "
                f"resolution={self.resolution!r}, {len(self)} sequences)")
