"""Input files (issue 24): the mask policy, frame order, non-regular files, the pixel limit and
COCO annotations. Every refusal is one line naming the file, and no input changes."""

import errno
import hashlib
import json
import os
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from lipnb.data.davis import DavisDataset, DavisFormatError, read_mask, write_mask
from lipnb.data.files import check_regular_file, list_frames, natural_key, read_rgb
from lipnb.data.masks import MaskSnappedWarning, read_first_mask
from lipnb.data.png import decode_mask_png


def sha256s(*folders):
    """Checksums of every regular file under ``folders`` (links to files by their target)."""
    out = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                if os.path.isfile(path):  # follows links; a pipe is no file and is never opened
                    with open(path, "rb") as f:
                        out[path] = hashlib.sha256(f.read()).hexdigest()
                else:
                    out[path] = "not a regular file"
    return out


def one_line_naming(error, path):
    text = str(error.value if hasattr(error, "value") else error)
    assert "\n" not in text, text
    assert str(path) in text, text
    return text


def within(seconds, fn, *args, **kwargs):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it takes over ``seconds``."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} still running after {seconds} s (blocked on a pipe?)"
    return box


def release(fifo):
    """Unblock any reader stuck opening ``fifo`` (only a safety net: nothing should be)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def grey(path, values):
    Image.fromarray(np.asarray(values, dtype=np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- 1. mask policy


def test_palette_indices_are_ids_and_255_is_void(tmp_path):
    path = tmp_path / "first.png"
    write_mask(path, np.array([[0, 1, 2], [255, 3, 0]], dtype=np.uint8))
    before = sha256s(tmp_path)
    assert read_first_mask(path).tolist() == [[0, 1, 2], [0, 3, 0]]
    assert read_first_mask(path, grey_levels="objects").tolist() == [[0, 1, 2], [0, 3, 0]]  # palette: ignored
    assert read_mask(path, "2017").tolist() == [[0, 1, 2], [0, 3, 0]]
    assert sha256s(tmp_path) == before


@pytest.mark.parametrize("level", [1, 100, 128, 255])
def test_two_grey_levels_are_one_object(tmp_path, level):
    path = grey(tmp_path / "first.png", [[0, level, level], [0, 0, level]])
    before = sha256s(tmp_path)
    assert read_first_mask(path).tolist() == [[0, 1, 1], [0, 0, 1]]
    assert read_mask(path, "2016").tolist() == [[0, 1, 1], [0, 0, 1]]  # DAVIS 2016: {0, v}, v the object
    assert sha256s(tmp_path) == before


def test_two_colours_are_one_object_and_grey_rgb_is_grey(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[1:3, 1:4] = (200, 30, 90)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    assert read_first_mask(path).tolist() == (rgb.any(axis=2)).astype(np.uint8).tolist()
    rgb[0, 0] = (0, 255, 0)
    Image.fromarray(rgb).save(path)
    before = sha256s(tmp_path)
    with pytest.raises(DavisFormatError) as error:
        read_first_mask(path)
    assert "3 colours" in one_line_naming(error, path) and "palette PNG" in str(error.value)
    greys = np.repeat(np.array([[0, 255], [255, 0]], dtype=np.uint8)[..., None], 3, axis=2)
    Image.fromarray(greys).save(tmp_path / "grey_rgb.png")
    assert read_first_mask(tmp_path / "grey_rgb.png").tolist() == [[0, 1], [1, 0]]
    assert sha256s(tmp_path)[str(path)] == before[str(path)]


def test_three_grey_levels_are_refused_unless_told_how(tmp_path):
    values = np.zeros((20, 30), dtype=np.uint8)
    values[2:8, 2:10] = 128
    values[10:18, 15:28] = 255
    path = grey(tmp_path / "first.png", values)
    before = sha256s(tmp_path)
    with pytest.raises(DavisFormatError) as error:
        read_first_mask(path)
    text = one_line_naming(error, path)
    assert "has 3 grey levels (0, 128, 255)" in text and "palette PNG with one index per object" in text
    assert "grey_levels=objects" in text and "grey_levels=ids" in text
    with pytest.raises(DavisFormatError, match="--grey-levels objects"):  # a command line spells its flag
        read_first_mask(path, option="--grey-levels ")
    objects = read_first_mask(path, grey_levels="objects")  # each level one object, ascending
    assert set(np.unique(objects)) == {0, 1, 2} and objects[5, 5] == 1 and objects[12, 20] == 2
    ids = read_first_mask(path, grey_levels="ids")  # values are ids, as palette indices: 255 void
    assert set(np.unique(ids)) == {0, 128}
    with pytest.raises(ValueError, match="grey_levels must be one of"):
        read_first_mask(path, grey_levels="bogus")
    assert sha256s(tmp_path) == before


def test_anti_aliased_edges_are_snapped_with_a_warning(tmp_path):
    yy, xx = np.mgrid[:120, :160]
    sharp = (((yy - 60) ** 2 + (xx - 70) ** 2 < 35 ** 2) * 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(sharp).resize((57, 43), Image.BILINEAR))  # what resizing leaves
    assert len(np.unique(smooth)) > 15
    path = grey(tmp_path / "first.png", smooth)
    before = sha256s(tmp_path)
    with pytest.warns(MaskSnappedWarning) as caught:
        ids = read_first_mask(path)
    assert len(caught) == 1 and str(path) in str(caught[0].message) and "\n" not in str(caught[0].message)
    assert set(np.unique(ids)) == {0, 1}  # one object, not 15
    assert (ids == (smooth > 127)).all()  # the nearer of 0 and 255
    assert sha256s(tmp_path) == before


def test_dataset_reader_keeps_the_davis_conventions(tmp_path):
    """read_mask (annotations, results) keeps the toolkit's reading: nothing valid changes."""
    values = np.array([[0, 255, 128], [127, 1, 0]], dtype=np.uint8)
    path = grey(tmp_path / "gray.png", values)
    assert read_mask(path, "2016").tolist() == [[0, 1, 1], [0, 0, 0]]  # DAVIS 2016: > 127
    assert read_mask(path, "2017").tolist() == [[0, 0, 128], [127, 1, 0]]  # ids, 255 void
    assert read_mask(grey(tmp_path / "b.png", [[0, 255]]), "2017").tolist() == [[0, 0]]


# ----------------------------------------------------------------------------- 2. frame order


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (4, 3), (10, 20, 30)).save(folder / name)


def test_frames_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    touch(folder, *[f"{i}.jpg" for i in range(12)])
    before = sha256s(folder)
    assert [p.name for p in list_frames(folder)] == [f"{i}.jpg" for i in range(12)]
    assert sha256s(folder) == before
    assert natural_key("frame10") > natural_key("frame9")


def test_davis_names_keep_their_order(tmp_path):
    folder = tmp_path / "frames"
    names = [f"{i:05d}.jpg" for i in range(0, 120, 7)]
    touch(folder, *names)
    assert [p.name for p in list_frames(folder)] == sorted(names)


def test_davis_dataset_lists_frames_in_natural_order(tmp_path):
    root = tmp_path / "davis"
    touch(root / "JPEGImages" / "480p" / "s", *[f"{i}.jpg" for i in range(12)])
    (root / "Annotations" / "480p" / "s").mkdir(parents=True)
    write_mask(root / "Annotations" / "480p" / "s" / "0.png", np.array([[0, 1, 1, 0]] * 3, dtype=np.uint8))
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("s\n")
    assert DavisDataset(root)["s"].frame_names == [str(i) for i in range(12)]


@pytest.mark.parametrize("names, message", [
    (["1.jpg", "01.jpg", "2.jpg"], "have the same name or number"),
    (["1.jpg", "1.png"], "have the same name or number"),
    (["a.jpg", "1.jpg", "2.jpg"], "mix numbered names"),
])
def test_ambiguous_frame_names_are_refused(tmp_path, names, message):
    folder = tmp_path / "frames"
    touch(folder, *names)
    before = sha256s(folder)
    with pytest.raises(DavisFormatError, match=message) as error:
        list_frames(folder)
    text = one_line_naming(error, folder)
    assert "ambiguous" in text
    assert sha256s(folder) == before


# ----------------------------------------------------------------------------- 3. non-regular files


def test_named_pipe_among_frames_never_blocks(tmp_path):
    folder = tmp_path / "frames"
    touch(folder, "0.jpg", "1.jpg")
    fifo = folder / "2.jpg"
    os.mkfifo(fifo)
    try:
        box = within(1.0, list_frames, folder)
        assert isinstance(box.get("error"), DavisFormatError), box
        text = one_line_naming(box["error"], fifo)
        assert "named pipe" in text and "remove it" in text
        for reader in (read_rgb, lambda p: read_mask(p), lambda p: read_first_mask(p)):
            box = within(1.0, reader, fifo)
            assert isinstance(box.get("error"), DavisFormatError) and "named pipe" in str(box["error"]), box
    finally:
        release(fifo)


def test_named_pipe_mask_never_blocks(tmp_path):
    fifo = tmp_path / "00000.png"
    os.mkfifo(fifo)
    try:
        box = within(1.0, read_mask, fifo)
        assert isinstance(box.get("error"), DavisFormatError)
        one_line_naming(box["error"], fifo)
    finally:
        release(fifo)


def test_symlink_loop_among_frames_is_named_with_advice(tmp_path):
    folder = tmp_path / "frames"
    touch(folder, "0.jpg")
    loop = folder / "1.jpg"
    os.symlink("1.jpg", loop)  # points at itself
    with pytest.raises(OSError) as raw:
        os.stat(loop)
    assert raw.value.errno == errno.ELOOP
    with pytest.raises(DavisFormatError) as error:
        list_frames(folder)
    assert one_line_naming(error, loop).endswith("is a symbolic link loop; remove it or point it at a file")
    with pytest.raises(DavisFormatError, match="symbolic link loop"):
        read_mask(loop)


def test_broken_link_and_folder_among_frames(tmp_path):
    folder = tmp_path / "frames"
    touch(folder, "0.jpg")
    os.symlink(tmp_path / "gone.jpg", folder / "1.jpg")
    with pytest.raises(DavisFormatError, match="broken symbolic link") as error:
        list_frames(folder)
    one_line_naming(error, folder / "1.jpg")
    os.unlink(folder / "1.jpg")
    (folder / "2.jpg").mkdir()
    with pytest.raises(DavisFormatError, match="found a folder"):
        list_frames(folder)
    assert check_regular_file(folder / "0.jpg").st_size > 0


# ----------------------------------------------------------------------------- 4. pixel limit


def bomb_png(width, height):
    """A PNG whose header declares width x height (8-bit grayscale) and whose data is tiny."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def test_fast_png_reader_keeps_the_pixel_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30000, 30000))
    before = sha256s(tmp_path)
    for reader in (read_mask, read_first_mask, lambda p: decode_mask_png(p.read_bytes(), p)):
        with pytest.raises(DavisFormatError) as error:
            reader(path)
        text = one_line_naming(error, path)
        assert "30000x30000" in text and "MAX_IMAGE_PIXELS" in text
    assert sha256s(tmp_path) == before


def test_pixel_limit_applies_to_every_decoder(tmp_path, monkeypatch):
    mask, frame = tmp_path / "mask.png", tmp_path / "0.jpg"
    write_mask(mask, np.ones((20, 20), dtype=np.uint8))  # the fast path decodes it
    Image.new("RGB", (20, 20)).save(frame)
    grey(tmp_path / "sub.png", np.zeros((20, 20)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 399)
    for reader, path in ((read_mask, mask), (read_first_mask, mask), (read_rgb, frame)):
        with pytest.raises(DavisFormatError, match="20x20 = 400 pixels, above Pillow's limit of 399") as error:
            reader(path)
        one_line_naming(error, path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    assert read_mask(mask).shape == (20, 20) and read_rgb(frame).shape == (20, 20, 3)


# ----------------------------------------------------------------------------- 5. COCO


@pytest.fixture
def coco_files(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(images / "a.jpg")
    good = {"id": 7, "image_id": 3, "category_id": 1, "iscrowd": 0, "area": 100.0, "bbox": [2, 2, 10, 10],
            "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]}
    data = {"images": [{"id": 3, "file_name": "a.jpg", "width": 32, "height": 24}],
            "categories": [{"id": 1, "name": "thing"}], "annotations": [good]}

    def write(annotation):
        path = tmp_path / "instances.json"
        path.write_text(json.dumps({**data, "annotations": [good, annotation]}))
        return path, images
    return write, good


@pytest.mark.parametrize("segmentation, message", [
    ([[1, 2]], "malformed polygon"),
    ([[1, 2, 3, 4]], "malformed polygon"),  # pycocotools would read 4 numbers as a box
    ([["a", "b", "c", "d", "e", "f"]], "malformed polygon"),
    ([], "empty segmentation"),
    ("oops", "malformed segmentation"),
    ({"size": [5, 5], "counts": [25]}, "malformed RLE"),
])
def test_malformed_coco_segmentation_names_file_image_and_annotation(coco_files, segmentation, message):
    from lipnb.data.coco import CocoFormatError, CocoInstances

    write, good = coco_files
    ann_file, images = write({**good, "id": 99, "segmentation": segmentation})
    before = sha256s(ann_file.parent)
    dataset = CocoInstances(ann_file.parent, ann_file=ann_file, image_dir=images)
    with pytest.raises(CocoFormatError, match=message) as error:
        dataset.load(0)
    assert "image 3, annotation 99" in one_line_naming(error, ann_file)
    assert sha256s(ann_file.parent) == before


def test_unknown_coco_category_names_file_image_and_annotation(coco_files):
    from lipnb.data.coco import CocoFormatError, CocoInstances

    write, good = coco_files
    ann_file, images = write({**good, "id": 98, "category_id": 99999})
    before = sha256s(ann_file.parent)
    with pytest.raises(CocoFormatError, match="unknown category id 99999") as error:
        CocoInstances(ann_file.parent, ann_file=ann_file, image_dir=images)
    assert "image 3, annotation 98" in one_line_naming(error, ann_file)
    assert sha256s(ann_file.parent) == before


def test_valid_coco_annotation_still_loads(coco_files):
    from lipnb.data.coco import CocoInstances

    write, good = coco_files
    ann_file, images = write({**good, "id": 8, "segmentation": {"size": [24, 32], "counts": [100, 4, 664]}})
    image, masks, boxes, labels = CocoInstances(ann_file.parent, ann_file=ann_file, image_dir=images).load(0)
    assert image.shape == (24, 32, 3) and masks.shape == (2, 24, 32) and labels.tolist() == [1, 1]
    assert masks[0, 2:12, 2:12].all()


def test_coco_image_above_the_pixel_limit_is_named(coco_files, monkeypatch):
    from lipnb.data.coco import CocoFormatError, CocoInstances

    write, good = coco_files
    ann_file, images = write({**good, "id": 8})
    dataset = CocoInstances(ann_file.parent, ann_file=ann_file, image_dir=images)
    for limit, declared in ((500, "32x24 = 768"), (100, "768")):  # Pillow itself refuses above twice the limit
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(CocoFormatError, match=f"declares {declared} pixels, above Pillow's limit of {limit}") as e:
            dataset.load(0)
        one_line_naming(e, images / "a.jpg")
