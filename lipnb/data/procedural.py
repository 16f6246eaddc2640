"""The embedded default data: procedural COCO-format images + DAVIS-format videos.

:func:`ensure_procedural` generates both from a :class:`ProceduralSpec` (sizes, counts and
the seed) into a cache folder named after the spec's hash, unless it is already there::

    <cache>/<hash>/coco/   annotations/instances_{train,val}2017.json, train2017/, val2017/
    <cache>/<hash>/davis/  JPEGImages/480p, Annotations/480p, ImageSets/2017/{train,val}.txt
    <cache>/<hash>/spec.json   the spec (seed included) that regenerates the folder

Generation writes to a temporary sibling and renames it into place, so an interrupted run
never leaves a half-written set that later runs would trust. See
:mod:`lipnb.data.procedural_images` and :mod:`lipnb.data.procedural_videos` for what is drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lipnb.paths import RESULTS_DIR

DEFAULT_CACHE = RESULTS_DIR / "cache" / "procedural"
FORMAT_VERSION = 2  # bump when the generators change what they draw (2: crossing twins, a leaver)


@dataclass(frozen=True)
class ProceduralSpec:
    """Everything that determines the generated data. The defaults are the ``smoke`` set
    (about 5 s to generate on one core)."""

    seed: int = 0
    # COCO-format images
    coco_train: int = 96
    coco_val: int = 16
    image_height: int = 96
    image_width: int = 128
    max_objects: int = 4
    crowd_prob: float = 0.2
    # DAVIS-format videos
    davis_train: int = 8
    davis_val: int = 4
    num_frames: int = 24
    video_height: int = 96
    video_width: int = 160
    num_objects: int = 3
    occlusion_frames: int = 4
    drift: float = 0.3

    def digest(self) -> str:
        text = json.dumps({"version": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ProceduralData:
    """Where a generated set lives."""

    root: Path
    spec: ProceduralSpec

    @property
    def coco(self) -> Path:
        return self.root / "coco"

    @property
    def davis(self) -> Path:
        return self.root / "davis"


def generate(spec: ProceduralSpec, root: Path, progress: bool = False) -> None:
    """Write both halves of ``spec`` under ``root`` (which must not hold a previous set)."""
    from lipnb.data.procedural_images import generate_coco
    from lipnb.data.procedural_videos import generate_davis

    s = spec
    generate_coco(root / "coco", s.seed, {"train2017": s.coco_train, "val2017": s.coco_val},
                  s.image_height, s.image_width, s.max_objects, s.crowd_prob, progress=progress)
    generate_davis(root / "davis", s.seed, {"train": s.davis_train, "val": s.davis_val}, s.num_frames,
                   s.video_height, s.video_width, s.num_objects, s.occlusion_frames, s.drift, progress=progress)
    (root / "spec.json").write_text(json.dumps({"version": FORMAT_VERSION, **asdict(s)}, indent=1))


def ensure_procedural(spec: ProceduralSpec | None = None, cache_dir: Path | str | None = None,
                      progress: bool = False) -> ProceduralData:
    """The generated set for ``spec`` (default :class:`ProceduralSpec`), generating it if needed."""
    spec = spec or ProceduralSpec()
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    root = cache_dir / spec.digest()
    if not (root / "spec.json").exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        ignore = cache_dir / ".gitignore"  # generated data never enters git history
        if not ignore.exists():
            ignore.write_text("*\n")
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.digest()}-", dir=cache_dir))
        try:
            generate(spec, tmp, progress=progress)
            try:
                os.replace(tmp, root)
            except OSError:  # another process finished first: keep its copy
                if not (root / "spec.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ProceduralData(root, spec)
