"""Where data lives: the shared development copies and the project's own folders.

``LIPNB_SHARED`` overrides the shared data folder (default: ``../shared/data`` beside the
repository); ``LIPNB_DAVIS2016`` and ``LIPNB_COCO`` override the single datasets;
``LIPNB_IMAGENET_R101`` overrides the converted ImageNet ResNet-101-GN weights.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"
DATA_DIR = REPO_ROOT / "data"


def sha256(path: str | Path) -> str:
    """A file's sha256 (hex), read in 1 MiB blocks: what a download or a release is checked against."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shared_data_dir() -> Path:
    return Path(os.environ.get("LIPNB_SHARED", REPO_ROOT.parent / "shared" / "data"))


def davis2016_root() -> Path:
    """DAVIS 2016 as shipped in ``../shared/data/davis2016`` (240p frames, 480p val masks)."""
    return Path(os.environ.get("LIPNB_DAVIS2016", shared_data_dir() / "davis2016"))


def coco_root() -> Path:
    """The tiny COCO 2017 subset (``annotations/``, ``train2017/``, ``val2017/``)."""
    return Path(os.environ.get("LIPNB_COCO", shared_data_dir() / "coco_tiny"))


def imagenet_r101() -> Path:
    """Detectron's ImageNet ResNet-101-GN (``R-101-GN.pkl``) converted to torchvision names, as
    written by ``python data/download.py r101-gn`` (default ``data/pretrained/R-101-GN.pt``)."""
    return Path(os.environ.get("LIPNB_IMAGENET_R101", DATA_DIR / "pretrained" / "R-101-GN.pt"))
