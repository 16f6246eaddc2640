"""lipnb.cli.download on local archives: file:// URLs, extraction, layout, and readers on the result."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from lipnb.cli import download as D
from lipnb.data.davis import DavisDataset, write_mask
from lipnb.paths import sha256


def _jpeg(path, h=24, w=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


def _davis_tree(root, year, sequences=("bear", "camel"), frames=3):
    for s, name in enumerate(sequences):
        for i in range(frames):
            _jpeg(root / "JPEGImages" / "480p" / name / f"{i:05d}.jpg")
            ids = np.zeros((24, 32), np.uint8)
            ids[4:12, 4 + i: 14 + i] = 1
            if year == "2017":
                ids[14:20, 20:28] = 2
                write_mask(root / "Annotations" / "480p" / name / f"{i:05d}.png", ids)
            else:
                path = root / "Annotations" / "480p" / name / f"{i:05d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(ids * 255).save(path)
    if year == "2017":
        (root / "ImageSets" / "2017").mkdir(parents=True)
        (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s in sequences))
    else:  # DAVIS 2016 ships one "frame mask" pair of paths per line
        (root / "ImageSets" / "480p").mkdir(parents=True)
        lines = [f"/JPEGImages/480p/{s}/{i:05d}.jpg /Annotations/480p/{s}/{i:05d}.png"
                 for s in sequences for i in range(frames)]
        (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")


def _zip(folder, archive):
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, p.relative_to(folder.parent))
    return archive


def test_download_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 3_000_000)
    out = D.download(src.as_uri(), tmp_path / "out" / "copy.bin", progress=False, chunk=1 << 16)
    assert out.read_bytes() == src.read_bytes() and not (tmp_path / "out" / "copy.bin.part").exists()
    assert sha256(out) == sha256(src)
    src.write_bytes(b"changed")  # an existing download is kept
    assert D.download(src.as_uri(), out, progress=False).stat().st_size == 3_000_000


def test_extract_refuses_path_traversal(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../outside.txt", "no")
    with pytest.raises(ValueError, match="outside"):
        D.extract(archive, tmp_path / "x")
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("year", ["2016", "2017"])
def test_fetch_davis_from_local_zip(tmp_path, year):
    _davis_tree(tmp_path / "build" / "DAVIS", year)
    name = D.DATASETS[f"davis{year}"][0].name
    archive = _zip(tmp_path / "build" / "DAVIS", tmp_path / name)
    data = tmp_path / "data"
    root = D.fetch(f"davis{year}", data, urls={name: archive.as_uri()}, progress=False)
    assert root == data / f"davis{year}" and not (data / "archives").exists()
    ds = DavisDataset(root, year, "val", "480p")
    assert ds.sequences == ["bear", "camel"] and ds["camel"].num_frames == 3
    assert ds["bear"].object_ids == ([1] if year == "2016" else [1, 2])
    if year == "2016":
        assert (root / "ImageSets" / "2016" / "val.txt").read_text() == "bear\ncamel\n"


def test_fetch_coco_from_local_zips(tmp_path):
    from lipnb.data.coco import CocoInstances

    build = tmp_path / "build"
    for split in ("train2017", "val2017"):
        _jpeg(build / split / "000000000001.jpg", 40, 60)
    ann = {"images": [{"id": 1, "file_name": "000000000001.jpg", "height": 40, "width": 60}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 200.0,
                            "bbox": [10, 10, 20, 10], "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}],
           "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}]}
    (build / "annotations").mkdir()
    for split in ("train2017", "val2017"):
        (build / "annotations" / f"instances_{split}.json").write_text(json.dumps(ann))
    urls = {"annotations_trainval2017.zip": _zip(build / "annotations", tmp_path / "a.zip").as_uri(),
            "val2017.zip": _zip(build / "val2017", tmp_path / "v.zip").as_uri(),
            "train2017.zip": _zip(build / "train2017", tmp_path / "t.zip").as_uri()}
    root = D.fetch("coco", tmp_path / "data", urls=urls, keep_archives=True, progress=False)
    assert (tmp_path / "data" / "archives" / "train2017.zip").is_file()
    ds = CocoInstances(root, "val2017", scales=(40,), max_size=100, flip=False)
    image, target = ds[0]
    assert ds.category_names == ["car"] and target["labels"].tolist() == [1] and image.shape[-2:] == (40, 60)


def test_cli_script(tmp_path):
    _davis_tree(tmp_path / "build" / "DAVIS", "2017")
    archive = _zip(tmp_path / "build" / "DAVIS", tmp_path / "d.zip")
    assert D.main(["davis2017", "--data-dir", str(tmp_path / "data"),
                   "--url", f"DAVIS-2017-trainval-480p.zip={archive.as_uri()}"]) == 0
    assert (tmp_path / "data" / "davis2017" / "ImageSets" / "2017" / "val.txt").is_file()
