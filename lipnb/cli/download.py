"""Download DAVIS 2016, DAVIS 2017 and COCO 2017 from their official sites and lay them out
under ``data/`` the way lipnb reads them (for machines with internet access), and the paper's
ImageNet initialisation (Detectron's ResNet-101-GN), converted for ``torch.load``::

    data/davis2016/  JPEGImages/480p, Annotations/480p, ImageSets/480p/{train,val}.txt, ImageSets/2016/*.txt
    data/davis2017/  JPEGImages/480p, Annotations/480p, ImageSets/2017/{train,val}.txt
    data/coco/       train2017/, val2017/, annotations/instances_{train,val}2017.json
    data/pretrained/ R-101-GN.pt (torchvision ResNet names, RGB conv1; read by the ``paper`` profile)

    python data/download.py davis2017            # or: from lipnb.cli.download import fetch
    python data/download.py coco --keep-archives
    python data/download.py r101-gn              # or: from lipnb.cli.download import fetch_pretrained

Each archive is streamed to ``<name>.part`` and renamed when complete (an interrupted download
never looks finished), then extracted with every member checked to stay inside the target, then
moved into place. A weights pickle is read without running pickled code
(:mod:`lipnb.model.detectron_pickle`), checked against the ResNet it belongs to and converted.
Any URL ``urllib`` opens works, ``file://`` included (tests, mirrors): pass
``urls={archive name: url}``. This module is the only one in lipnb that touches the network;
the data readers (:mod:`lipnb.data`) never do.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lipnb import paths


@dataclass(frozen=True)
class Archive:
    name: str  # file name of the archive
    url: str  # the official download address


DATASETS = {
    # DAVIS 2016 (Perazzi et al., CVPR 2016): https://davischallenge.org/davis2016/code.html
    "davis2016": [Archive("DAVIS-data.zip", "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip")],
    # DAVIS 2017 train+val at 480p (Pont-Tuset et al.): https://davischallenge.org/davis2017/code.html
    "davis2017": [Archive("DAVIS-2017-trainval-480p.zip",
                          "https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip")],
    # COCO 2017 (Lin et al.): https://cocodataset.org/#download
    "coco": [Archive("annotations_trainval2017.zip",
                     "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"),
             Archive("val2017.zip", "http://images.cocodataset.org/zips/val2017.zip"),
             Archive("train2017.zip", "http://images.cocodataset.org/zips/train2017.zip")],
}


@dataclass(frozen=True)
class Weights:
    archive: Archive  # the pickle as published
    converted: str  # file name of the converted weights under DATA_DIR/pretrained/
    depth: int  # the ResNet (ResNetBody(depth, width)) whose every tensor the file must hold
    width: float = 1.0


PRETRAINED = {
    # Detectron's ImageNet ResNet-101 with GroupNorm (G=32), the paper's initialisation; listed in
    # Detectron's projects/GN/README.md ("Pretrained Models with GN", 22.6% top-1 error).
    "r101-gn": Weights(Archive("R-101-GN.pkl",
                               "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/47592356/R-101-GN.pkl"),
                       "R-101-GN.pt", depth=101),
}


def download(url: str, dest: str | Path, progress: bool = True, chunk: int = 1 << 20) -> Path:
    """Stream ``url`` (http, https, file) to ``dest``; returns ``dest``. An existing ``dest`` is kept."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url) as response, open(part, "wb") as out:  # noqa: S310 - official URLs
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while block := response.read(chunk):
            out.write(block)
            done += len(block)
            if progress and total:
                print(f"\r{dest.name}: {done / 2**20:.0f} / {total / 2**20:.0f} MiB", end="", file=sys.stderr)
    if progress and total:
        print(file=sys.stderr)
    if total and done != total:
        part.unlink(missing_ok=True)
        raise OSError(f"{url}: got {done} bytes, expected {total}")
    part.rename(dest)
    return dest


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unzip ``archive`` into ``dest``, refusing members that would land outside it."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            target = (dest / member).resolve()
            if target != dest and dest not in target.parents:
                raise ValueError(f"{archive}: member {member!r} would be written outside {dest}")
        z.extractall(dest)
    return dest


def _find_root(folder: Path, marker: str) -> Path:
    """The folder under ``folder`` (itself included) that directly holds ``marker``."""
    if (folder / marker).exists():
        return folder
    found = sorted(p.parent for p in folder.rglob(marker) if p.is_dir())
    if not found:
        raise FileNotFoundError(f"no {marker}/ folder in the extracted archive ({folder})")
    return found[0]


def _move_contents(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dest / item.name
        if target.exists():
            if item.is_dir() and target.is_dir():
                _move_contents(item, target)
                continue
            raise FileExistsError(f"{target} exists; remove it to re-install")
        shutil.move(str(item), str(target))


def layout_davis(extracted: Path, dest: Path, year: str) -> Path:
    """The DAVIS archive's ``DAVIS/`` folder -> ``dest``. DAVIS 2016 ships per-frame lists
    (``ImageSets/480p/<split>.txt``); ``ImageSets/2016/<split>.txt`` (one sequence per line) is
    written from them."""
    root = _find_root(extracted, "JPEGImages")
    _move_contents(root, dest)
    if year == "2016":
        for legacy in sorted((dest / "ImageSets" / "480p").glob("*.txt")):
            names = [line.split()[0].split("/")[-2] for line in legacy.read_text().splitlines() if line.strip()]
            out = dest / "ImageSets" / "2016" / legacy.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(f"{n}\n" for n in dict.fromkeys(names)))
    return dest


def layout_coco(extracted: Path, dest: Path) -> Path:
    """``train2017/``, ``val2017/`` and ``annotations/`` -> ``dest``."""
    for part in ("annotations", "train2017", "val2017"):
        found = [p for p in [extracted / part, *extracted.rglob(part)] if p.is_dir()]
        if found:
            _move_contents(found[0], dest / part)
    return dest


def fetch(name: str, data_dir: str | Path = paths.DATA_DIR, urls: dict | None = None,
          keep_archives: bool = False, progress: bool = True) -> Path:
    """Download, extract and lay out dataset ``name`` (``davis2016``, ``davis2017``, ``coco``)
    into ``data_dir/<name>``; returns that folder. ``urls`` maps archive names to other URLs."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    data_dir = Path(data_dir)
    dest = data_dir / name
    archives_dir = data_dir / "archives"
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=data_dir if data_dir.exists() else None) as tmp:
        tmp = Path(tmp)
        for archive in DATASETS[name]:
            url = (urls or {}).get(archive.name, archive.url)
            path = download(url, archives_dir / archive.name, progress)
            if progress:
                print(f"extracting {path.name}", file=sys.stderr)
            extract(path, tmp / "extracted")
        if name == "coco":
            layout_coco(tmp / "extracted", dest)
        else:
            layout_davis(tmp / "extracted", dest, name[-4:])
    if not keep_archives:
        for archive in DATASETS[name]:
            (archives_dir / archive.name).unlink(missing_ok=True)
        if archives_dir.is_dir() and not any(archives_dir.iterdir()):
            archives_dir.rmdir()
    return dest


def fetch_pretrained(name: str, data_dir: str | Path = paths.DATA_DIR, urls: dict | None = None,
                     keep_archives: bool = False, progress: bool = True) -> Path:
    """Download the weights pickle ``name`` (``r101-gn``) to ``data_dir/archives`` and convert it to
    ``data_dir/pretrained/<converted>`` (e.g. ``R-101-GN.pt``, what :func:`lipnb.paths.imagenet_r101`
    points at by default); returns that file. An existing converted file is kept. ``urls`` maps the
    pickle's name to another URL."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown weights {name!r}; choose from {sorted(PRETRAINED)}")
    spec = PRETRAINED[name]
    data_dir = Path(data_dir)
    dest = data_dir / "pretrained" / spec.converted
    if dest.is_file():
        return dest
    from lipnb.model.backbone import ResNetBody
    from lipnb.model.detectron_pickle import convert_detectron_pickle

    archives_dir = data_dir / "archives"
    archive = download((urls or {}).get(spec.archive.name, spec.archive.url), archives_dir / spec.archive.name, progress)
    if progress:
        print(f"converting {archive.name} -> {dest}", file=sys.stderr)
    convert_detectron_pickle(archive, dest, expect=ResNetBody(spec.depth, spec.width))
    if not keep_archives:
        archive.unlink(missing_ok=True)
        if archives_dir.is_dir() and not any(archives_dir.iterdir()):
            archives_dir.rmdir()
    return dest


def main(argv: list | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python data/download.py", description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", choices=sorted(DATASETS) + sorted(PRETRAINED),
                   help="datasets, or weights (r101-gn: the paper's ImageNet ResNet-101-GN)")
    p.add_argument("--data-dir", default=str(paths.DATA_DIR), help="(default: %(default)s)")
    p.add_argument("--url", action="append", default=[], metavar="ARCHIVE=URL",
                   help="another address for one archive, e.g. a mirror or a file:// path")
    p.add_argument("--keep-archives", action="store_true", help="keep the .zip/.pkl files in DATA_DIR/archives")
    args = p.parse_args(argv)
    urls = dict(pair.split("=", 1) for pair in args.url)
    for name in args.datasets:
        get = fetch_pretrained if name in PRETRAINED else fetch
        print(get(name, args.data_dir, urls, args.keep_archives))
    return 0
