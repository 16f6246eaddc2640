"""DAVIS 2016/2017 reading and writing: layouts, masks, palette, and clear errors."""

import io
import shutil
import sys
import subprocess

import numpy as np
import pytest
from PIL import Image

from lipnb.data.davis import (DAVIS_PALETTE, DavisDataset, DavisFormatError, DavisSequence, read_mask,
                              resize_mask, write_mask)
from lipnb.data.palette import pascal_colormap


def make_davis2017(root, sequences, num_frames=4, size=(12, 16)):
    """A tiny DAVIS 2017 layout: sequences {name: number of objects}; returns root."""
    h, w = size
    for name, num_objects in sequences.items():
        for t in range(num_frames):
            ids = np.zeros(size, dtype=np.uint8)
            for k in range(1, num_objects + 1):
                ids[2 * k: 2 * k + 2, t + 2 * k: t + 2 * k + 3] = k
            frame = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((h, w, 3), 40 * t, dtype=np.uint8)).save(frame)
            write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", ids)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(sequences) + "\n")
    return root


# ----------------------------------------------------------------------------- palette and masks


def test_palette_is_pascal_voc():
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    assert DAVIS_PALETTE[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert DAVIS_PALETTE[8].tolist() == [64, 0, 0] and DAVIS_PALETTE[255].tolist() == [224, 224, 192]
    assert (pascal_colormap(16) == DAVIS_PALETTE[:16]).all()


@pytest.mark.parametrize("max_id", [1, 2, 3, 9, 15, 16, 200, 255])
def test_write_mask_round_trip(tmp_path, max_id):
    rng = np.random.default_rng(max_id)
    ids = rng.integers(0, max_id + 1, size=(23, 37)).astype(np.uint8)
    path = tmp_path / "sub" / "00000.png"
    write_mask(path, ids)
    image = Image.open(path)
    assert image.mode == "P"  # indexed, DAVIS colours
    palette = np.array(image.getpalette()).reshape(-1, 3)
    assert (palette == DAVIS_PALETTE[: len(palette)]).all() and len(palette) > max_id
    assert (np.asarray(image) == ids).all()  # what Pillow (and the toolkit) reads
    assert (read_mask(path) == ids).all() or max_id == 255  # 255 is void in 2017
    assert [p.name for p in path.parent.iterdir()] == ["00000.png"]  # no temporary left


def test_read_mask_years(tmp_path):
    values = np.array([[0, 255, 128], [127, 1, 0]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "gray.png")  # DAVIS 2016 style, mode L
    assert read_mask(tmp_path / "gray.png", "2016").tolist() == [[0, 1, 1], [0, 0, 0]]  # > 127
    write_mask(tmp_path / "ids.png", np.array([[0, 1, 2], [255, 3, 0]], dtype=np.uint8))
    assert read_mask(tmp_path / "ids.png", "2017").tolist() == [[0, 1, 2], [0, 3, 0]]  # void -> 0
    assert read_mask(tmp_path / "ids.png", "2016").tolist() == [[0, 1, 1], [1, 1, 0]]  # index != 0
    assert read_mask(tmp_path / "ids.png", "2016").dtype == np.uint8


def test_read_mask_fast_path_equals_pillow(davis2016_root, tmp_path):
    # the fast decoder for unfiltered / Sub-filtered PNGs against Pillow, on real masks
    # (480p: Sub filter) and on Pillow-written ones (mixed filters: Pillow path)
    paths = sorted((davis2016_root / "Annotations" / "480p" / "dog").glob("*.png"))[:20]
    paths += sorted((davis2016_root / "Annotations" / "240p" / "bear").glob("*.png"))[:5]
    for path in paths:
        expected = (np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8)
        assert (read_mask(path, "2016") == expected).all(), path


def test_resize_mask_nearest():
    ids = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    assert resize_mask(ids, (4, 4)).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


# ----------------------------------------------------------------------------- datasets


def test_davis2016_shared(davis2016_root):
    ds = DavisDataset(davis2016_root, year="2016", split="val", resolution="480p")
    assert len(ds) == 16 and ds.sequences[0] == "blackswan" and "soapbox" in ds
    seq = ds["blackswan"]  # 480p frames exist for blackswan
    assert isinstance(seq, DavisSequence) and seq.num_frames == 50 and seq.fully_annotated
    assert seq.size == (480, 854) and seq.frame_size == (480, 854) and seq.object_ids == [1]
    bmx = ds["bmx-trees"]  # frames only at 240p: masks stay 480p
    assert bmx.frame_paths[0].parts[-3] == "240p" and bmx.annotation_paths[0].parts[-3] == "480p"
    assert bmx.size == (480, 854) and bmx.frame_size == (240, 427)
    frame, mask = bmx.read_frame(3), bmx.read_mask(3)
    assert frame.shape == (240, 427, 3) and frame.dtype == np.uint8
    assert mask.shape == (480, 854) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert (bmx.first_mask() == bmx.read_mask(0)).all()
    assert [s.name for s in ds][:2] == ["blackswan", "bmx-trees"]


def test_results_written_at_annotation_resolution(davis2016_root, tmp_path):
    seq = DavisDataset(davis2016_root, year="2016")["bmx-trees"]
    low = np.zeros(seq.frame_size, dtype=np.uint8)
    low[100:140, 200:260] = 1
    path = seq.write_result(tmp_path, 5, low)
    assert path == tmp_path / "bmx-trees" / "00005.png"
    assert read_mask(path).shape == seq.size and read_mask(path)[200:280, 400:520].all()


def test_davis2017_layout(tmp_path):
    root = make_davis2017(tmp_path, {"two": 2, "three": 3})
    ds = DavisDataset(root)  # 2017, val, 480p
    assert ds.sequences == ["two", "three"]
    seq = ds["three"]
    assert seq.object_ids == [1, 2, 3] and seq.size == (12, 16) and seq.num_frames == 4
    assert seq.read_frame(2)[0, 0].tolist() == [80, 80, 80]


def test_test_split_with_first_annotation_only(tmp_path):
    root = make_davis2017(tmp_path, {"a": 1})
    for path in sorted((root / "Annotations" / "480p" / "a").glob("*.png"))[1:]:
        path.unlink()
    seq = DavisDataset(root)["a"]
    assert len(seq.annotation_paths) == 1 and seq.num_frames == 4 and not seq.fully_annotated
    with pytest.raises(DavisFormatError, match="no annotation for frame 2"):
        seq.read_mask(2)


def test_metrics_and_davis_do_not_import_torch():
    code = ("import sys, lipnb.data.davis, lipnb.metrics, lipnb.cli.evaluate, lipnb.cli.reproduce; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- bad input


def test_error_missing_folders(tmp_path):
    with pytest.raises(DavisFormatError, match="DAVIS folder not found"):
        DavisDataset(tmp_path / "nowhere")
    root = make_davis2017(tmp_path / "d", {"a": 1, "b": 1})
    with pytest.raises(DavisFormatError, match="annotation folder not found: .*1080p"):
        DavisDataset(root, resolution="1080p")
    with pytest.raises(DavisFormatError, match="sequence list not found: .*2017.test-dev.txt"):
        DavisDataset(root, split="test-dev")
    shutil.rmtree(root / "Annotations" / "480p" / "b")
    with pytest.raises(DavisFormatError, match="annotation folder not found: .*480p.b"):
        DavisDataset(root)["b"]
    shutil.rmtree(root / "JPEGImages" / "480p" / "a")
    with pytest.raises(DavisFormatError, match="frames of sequence 'a' not found"):
        DavisDataset(root)["a"]


def test_error_unknown_sequence(tmp_path):
    root = make_davis2017(tmp_path, {"a": 1})
    with pytest.raises(DavisFormatError, match="unknown sequence 'nope': not listed in .*val.txt"):
        DavisDataset(root)["nope"]


def test_error_frame_count_mismatch(tmp_path):
    root = make_davis2017(tmp_path, {"a": 1})
    (root / "Annotations" / "480p" / "a" / "00002.png").unlink()
    with pytest.raises(DavisFormatError, match=r"frame-count mismatch in sequence 'a': 4 frames .* 3 masks"
                                               r".*missing for \['00002'\]"):
        DavisDataset(root)["a"]


def test_error_rgb_mask(tmp_path):
    root = make_davis2017(tmp_path, {"a": 1})
    path = root / "Annotations" / "480p" / "a" / "00001.png"
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(path)
    with pytest.raises(DavisFormatError, match=r"00001.png: PNG mode 'RGB'.*indexed"):
        DavisDataset(root)["a"].read_mask(1)


def test_error_corrupt_png(tmp_path):
    root = make_davis2017(tmp_path, {"a": 1})
    path = root / "Annotations" / "480p" / "a" / "00001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DavisFormatError, match=r"cannot decode PNG .*00001.png"):
        read_mask(path)
    path.write_bytes(b"not a png at all")
    with pytest.raises(DavisFormatError, match=r"00001.png is not a PNG file"):
        read_mask(path)
    buf = bytearray(data)
    buf[len(buf) // 2] ^= 0xFF  # flipped bits inside the compressed data
    path.write_bytes(bytes(buf))
    with pytest.raises(DavisFormatError, match=r"00001.png"):
        read_mask(path)
    with pytest.raises(DavisFormatError, match="missing mask file: .*00042.png"):
        read_mask(path.with_name("00042.png"))


def test_error_2016_masks_read_as_2017(davis2016_root, tmp_path):
    # the official 2017 toolkit reads 0/255 masks as 255 objects; here: a clear error
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("blackswan\n")
    for kind in ("JPEGImages", "Annotations"):
        (tmp_path / kind / "480p").mkdir(parents=True)
        (tmp_path / kind / "480p" / "blackswan").symlink_to(davis2016_root / kind / "480p" / "blackswan")
    with pytest.raises(DavisFormatError, match="no object.*year='2016'"):
        DavisDataset(tmp_path, year="2017")["blackswan"].object_ids


def test_write_mask_rejects_bad_ids(tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        write_mask(tmp_path / "x.png", np.array([[0, 300]]))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        write_mask(tmp_path / "x.png", np.zeros((2, 2, 3), dtype=np.uint8))
    write_mask(tmp_path / "ok.png", np.array([[0, 2]], dtype=np.int64))  # any integer dtype in range
    assert read_mask(tmp_path / "ok.png").tolist() == [[0, 2]]


def test_png_bytes_are_standard():
    # the encoder's output is a plain PNG any reader accepts
    from lipnb.data.davis import encode_indexed_png

    data = encode_indexed_png(np.array([[0, 1], [17, 0]], dtype=np.uint8))
    image = Image.open(io.BytesIO(data))
    image.verify()
    assert Image.open(io.BytesIO(data)).getpixel((0, 1)) == 17
