"""The procedural data: deterministic, COCO and DAVIS layouts, and videos in which memory
matters (full occlusions, look-alikes, drift), checked on the generated masks themselves."""

import colorsys
import json

import numpy as np
import pytest

from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.data.procedural_videos import render_sequence

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SPEC = ProceduralSpec(seed=7, coco_train=8, coco_val=2, crowd_prob=0.5, davis_train=4, davis_val=2,
                      num_frames=16, video_height=72, video_width=128, num_objects=3, occlusion_frames=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_procedural(SPEC, cache_dir=tmp_path_factory.mktemp("proc"))


@pytest.fixture(scope="module")
def davis(data):
    return DavisDataset(data.davis, year="2017", split="train", resolution="480p")


@pytest.fixture(scope="module")
def meta(data):
    return json.loads((data.davis / "procedural.json").read_text())


def _masks(seq):
    return np.stack([seq.read_mask(i) for i in range(seq.num_frames)])  # [T, H, W]


def test_layout_and_cache(data, tmp_path):
    assert json.loads((data.root / "spec.json").read_text())["seed"] == 7
    assert (data.davis / "ImageSets/2017/val.txt").read_text().split() == ["val-000", "val-001"]
    again = ensure_procedural(SPEC, cache_dir=data.root.parent)  # cached: same folder, no rewrite
    assert again.root == data.root
    assert sorted(p.name for p in data.root.parent.iterdir() if not p.name.startswith(".")) == [data.root.name]


def test_deterministic():
    a = render_sequence(3, 1, num_frames=8, height=48, width=80)
    b = render_sequence(3, 1, num_frames=8, height=48, width=80)
    c = render_sequence(4, 1, num_frames=8, height=48, width=80)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_every_object_visible_in_first_frame(davis):
    for seq in davis:
        first = seq.read_mask(0)
        assert len(seq.object_ids) == SPEC.num_objects
        assert all((first == o).sum() >= 40 for o in seq.object_ids)


def test_full_occlusion_and_return(davis, meta):
    """Each video has an object whose mask is empty for >= occlusion_frames consecutive frames,
    with the object visible before and after: it disappears completely and comes back."""
    for seq in davis:
        masks = _masks(seq)
        found = []
        for o in seq.object_ids:
            area = (masks == o).sum((1, 2))
            empty = np.flatnonzero(area == 0)
            if empty.size == 0:
                continue
            # longest run of consecutive empty frames
            runs = np.split(empty, np.flatnonzero(np.diff(empty) > 1) + 1)
            run = max(runs, key=len)
            if len(run) >= SPEC.occlusion_frames and run[0] > 0 and run[-1] < len(area) - 1:
                assert area[: run[0]].min() > 0 or area[0] > 0
                assert area[run[-1] + 1:].max() > 0
                found.append(o)
        hider = next(x["id"] for x in meta["sequences"][seq.name]["objects"] if x["role"] == "hider")
        assert hider in found, (seq.name, found)


def _crop(mask):
    ys, xs = np.nonzero(mask)
    return mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _mean_hue(frame, mask):
    r, g, b = frame[mask].mean(0) / 255.0
    return colorsys.rgb_to_hsv(r, g, b)[0]


def test_lookalikes_differ_only_by_where_they_are(davis, meta):
    """The two look-alikes have the same shape, size and colours (masks equal up to a shift,
    same mean colour) but are in different places."""
    for seq in davis:
        a, b = meta["sequences"][seq.name]["lookalikes"][0]
        ids, frame = seq.read_mask(0), seq.read_frame(0).astype(np.float64)
        ma, mb = ids == a, ids == b
        assert abs(int(ma.sum()) - int(mb.sum())) <= 0.12 * max(ma.sum(), mb.sum())
        ca, cb = _crop(ma), _crop(mb)
        h, w = min(ca.shape[0], cb.shape[0]), min(ca.shape[1], cb.shape[1])
        iou = (ca[:h, :w] & cb[:h, :w]).sum() / (ca[:h, :w] | cb[:h, :w]).sum()
        assert iou > 0.75, (seq.name, iou)
        assert np.abs(frame[ma].mean(0) - frame[mb].mean(0)).max() < 25
        centre = lambda m: np.array(np.nonzero(m)).mean(1)  # noqa: E731
        assert np.linalg.norm(centre(ma) - centre(mb)) > 20
        # the third object is not a look-alike
        (c,) = [o for o in seq.object_ids if o not in (a, b)]
        assert not (np.abs(frame[ids == c].mean(0) - frame[ma].mean(0)).max() < 25 and
                    abs(int((ids == c).sum()) - int(ma.sum())) <= 0.12 * ma.sum())


def test_appearance_drifts_and_scale_changes(davis, meta):
    for seq in davis:
        twin = next(x["id"] for x in meta["sequences"][seq.name]["objects"] if x["role"] == "twin")
        first, last = seq.num_frames // 8, seq.num_frames - 1
        m0, m1 = seq.read_mask(first) == twin, seq.read_mask(last) == twin
        d = abs(_mean_hue(seq.read_frame(first), m0) - _mean_hue(seq.read_frame(last), m1))
        assert min(d, 1 - d) > 0.05  # hue turned by SPEC.drift * (last - first) / (T - 1)
        areas = (_masks(seq) == twin).sum((1, 2))
        assert areas.max() > 1.3 * areas.min()  # +-25 % radius


def test_coco_format_loads_with_pycocotools(data):
    from pycocotools.coco import COCO

    coco = COCO(str(data.coco / "annotations/instances_train2017.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    kinds = {("crowd" if a["iscrowd"] else "poly" if isinstance(a["segmentation"], list) else "rle") for a in anns}
    assert kinds == {"crowd", "poly", "rle"}
    for a in anns:
        m = coco.annToMask(a)
        assert m.sum() == pytest.approx(a["area"], rel=0.05, abs=8)
        x, y, w, h = a["bbox"]
        ys, xs = np.nonzero(m)
        assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1 and ys.max() <= y + h
