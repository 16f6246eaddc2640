"""The procedural data: deterministic, COCO and DAVIS layouts, and videos in which memory
matters (full occlusions, crossing twins, objects that leave the frame and come back, drift),
checked on the generated masks themselves."""

import colorsys
import json

import numpy as np
import pytest

from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.data.procedural_videos import ROLES, render_sequence

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
    for index in (0, 1):  # one sequence of each kind
        a = render_sequence(3, index, num_frames=8, height=48, width=80)
        b = render_sequence(3, index, num_frames=8, height=48, width=80)
        c = render_sequence(4, index, num_frames=8, height=48, width=80)
        d = render_sequence(3, index, num_frames=8, height=48, width=80, split="val")
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
        assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[1], d[1])


def test_every_object_visible_in_first_frame(davis):
    for seq in davis:
        first = seq.read_mask(0)
        assert len(seq.object_ids) == SPEC.num_objects
        assert all((first == o).sum() >= 40 for o in seq.object_ids)


# ----------------------------------------------------------------------------- the three situations
# Each check reads the masks; ``meta`` only says which object plays which role (and, for the
# leaver, that it was out of the picture rather than behind something).


def _role(meta, role):
    return [o["id"] for o in meta["objects"] if o["role"] == role]


def _runs(empty):
    """``[[first, last], ...]`` of the runs of True in a bool vector."""
    idx = np.flatnonzero(empty)
    return [[int(r[0]), int(r[-1])] for r in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if r.size]


def _frames(runs):
    return {f for a, b in runs for f in range(a, b + 1)}


def _middle_gap(area, min_len):
    """The longest run of frames with an empty mask that starts after the first frame and ends
    before the last, if it lasts ``min_len`` frames or more; else None."""
    runs = [r for r in _runs(area == 0) if r[0] > 0 and r[1] < len(area) - 1 and r[1] - r[0] + 1 >= min_len]
    return max(runs, key=lambda r: r[1] - r[0]) if runs else None


def _touches_border(mask):
    ys, xs = np.nonzero(mask)
    return ys.size > 0 and (ys.min() == 0 or xs.min() == 0 or ys.max() == mask.shape[0] - 1
                            or xs.max() == mask.shape[1] - 1)


def _hider_occluded(masks, meta, min_len):
    """The hider disappears completely for ``min_len`` frames or more, inside the image (behind
    the pillar), and is visible before and after."""
    (hider,) = _role(meta, "hider")
    area = (masks == hider).sum((1, 2))
    gap = _middle_gap(area, min_len)
    if gap is None or area[0] == 0 or area[-1] == 0:
        return False
    return not set(range(gap[0], gap[1] + 1)) & _frames(meta["offscreen"][str(hider)])


def _twins_cross(masks, meta):
    """Two look-alikes, visible in every frame, whose x-order at the last frame is the reverse
    of frame 0's."""
    twins = _role(meta, "twin")
    if len(twins) != 2 or sorted(meta["lookalikes"][0]) != sorted(twins):
        return False
    area = np.stack([(masks == t).sum((1, 2)) for t in twins], 1)  # [T, 2]
    if area.min() == 0 or area[[0, -1]].min() < 40:
        return False
    cx = lambda f, t: np.nonzero(masks[f] == t)[1].mean()  # noqa: E731
    before = np.sign(cx(0, twins[0]) - cx(0, twins[1]))
    after = np.sign(cx(-1, twins[0]) - cx(-1, twins[1]))
    return before * after < 0


def _leaver_returns(masks, meta, min_len=3):
    """The leaver's mask is empty for ``min_len`` or more consecutive frames in the middle and
    non-empty at the start and end; during the gap it is outside the image (not behind
    anything), and it goes out and comes back through an image border."""
    (leaver,) = _role(meta, "leaver")
    area = (masks == leaver).sum((1, 2))
    gap = _middle_gap(area, min_len)
    if gap is None or area[0] == 0 or area[-1] == 0:
        return False
    outside = set(range(gap[0], gap[1] + 1)) <= _frames(meta["offscreen"][str(leaver)])
    return outside and _touches_border(masks[gap[0] - 1] == leaver) and _touches_border(masks[gap[1] + 1] == leaver)


def test_each_sequence_poses_its_situations(davis, meta):
    """Every sequence has the hider's occlusion; even-numbered ones crossing twins, odd-numbered
    ones a leaver (so that any two consecutive sequences hold all three situations)."""
    for seq in davis:
        m, masks, index = meta["sequences"][seq.name], _masks(seq), int(seq.name.split("-")[1])
        assert {o["role"] for o in m["objects"]} <= set(ROLES)
        assert _hider_occluded(masks, m, SPEC.occlusion_frames), seq.name
        if index % 2 == 0:
            assert m["kind"] == "cross" and m["situations"] == ["occlusion", "crossing"]
            assert _twins_cross(masks, m), seq.name
            assert m["crossings"] and _role(m, "leaver") == []
        else:
            assert m["kind"] == "leave" and m["situations"] == ["occlusion", "leaving"]
            assert _leaver_returns(masks, m, min_len=3), seq.name
            assert _role(m, "twin") == [] and m["lookalikes"] == []
        for oid in seq.object_ids:  # "offscreen" frames are among the "hidden" (empty-mask) ones
            hidden = _frames(m["hidden"][str(oid)])
            assert hidden == {f for f in range(seq.num_frames) if not (masks[f] == oid).any()}
            assert _frames(m["offscreen"][str(oid)]) <= hidden


def test_default_val_split_holds_every_situation():
    """The default spec's val split (what ``smoke`` and ``davis-cpu`` score on) has at least one
    sequence with each situation, read from the masks."""
    s = ProceduralSpec()
    found = {"occlusion": 0, "crossing": 0, "leaving": 0}
    for index in range(s.davis_val):
        frames, masks, m = render_sequence(s.seed, index, s.num_frames, s.video_height, s.video_width,
                                           s.num_objects, s.occlusion_frames, s.drift, split="val")
        assert all((masks[0] == o).sum() >= 40 for o in range(1, s.num_objects + 1))
        found["occlusion"] += _hider_occluded(masks, m, s.occlusion_frames)
        found["crossing"] += bool(_role(m, "twin")) and _twins_cross(masks, m)
        found["leaving"] += bool(_role(m, "leaver")) and _leaver_returns(masks, m, min_len=3)
    assert found["occlusion"] == s.davis_val and found["crossing"] >= 1 and found["leaving"] >= 1, found


def test_checks_catch_a_missing_situation(davis, meta):
    """The situation checks above fail on videos without the situation."""
    cross, leave = davis["train-000"], davis["train-001"]
    mc, ml = meta["sequences"]["train-000"], meta["sequences"]["train-001"]
    masks = _masks(cross)
    a, b = mc["lookalikes"][0]
    stay = masks.copy()
    stay[(stay == a) | (stay == b)] = 0  # twins that stay where they were: frame 0's masks throughout
    stay[:, masks[0] == a], stay[:, masks[0] == b] = a, b
    assert _twins_cross(masks, mc) and not _twins_cross(stay, mc)
    masks = _masks(leave)
    (leaver,) = _role(ml, "leaver")
    kept = masks.copy()
    kept[:, masks[0] == leaver] = leaver  # a leaver that never leaves
    assert _leaver_returns(masks, ml) and not _leaver_returns(kept, ml)
    behind = dict(ml, offscreen={k: [] for k in ml["offscreen"]})  # empty, but not out of the picture
    assert not _leaver_returns(masks, behind)
    (hider,) = _role(ml, "hider")
    assert _hider_occluded(masks, ml, SPEC.occlusion_frames)
    kept[:, masks[0] == hider] = hider  # a hider that never hides
    assert not _hider_occluded(kept, ml, SPEC.occlusion_frames)


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
    """The twins have the same shape, size and colours (masks equal up to a shift, same mean
    colour) but are in different places; no other object is a look-alike of them."""
    for seq in davis:
        pairs = meta["sequences"][seq.name]["lookalikes"]
        if not pairs:
            continue
        a, b = pairs[0]
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
        for c in (o for o in seq.object_ids if o not in (a, b)):  # the others are not look-alikes
            assert not (np.abs(frame[ids == c].mean(0) - frame[ma].mean(0)).max() < 25 and
                        abs(int((ids == c).sum()) - int(ma.sum())) <= 0.12 * ma.sum())


def test_appearance_drifts_and_scale_changes(davis, meta):
    for seq in davis:
        objects = meta["sequences"][seq.name]["objects"]
        (hider,) = [x["id"] for x in objects if x["role"] == "hider"]
        first, last = seq.num_frames // 8, seq.num_frames - 1
        m0, m1 = seq.read_mask(first) == hider, seq.read_mask(last) == hider
        d = abs(_mean_hue(seq.read_frame(first), m0) - _mean_hue(seq.read_frame(last), m1))
        assert min(d, 1 - d) > 0.05  # hue turned by SPEC.drift * (last - first) / (T - 1)
        front = [x["id"] for x in objects if x["role"] == "twin"][-1:]  # drawn last: never covered
        for twin in front:
            areas = (_masks(seq) == twin).sum((1, 2))
            assert areas.max() > 1.3 * areas.min()  # +-25 % radius


def test_needs_three_objects():
    with pytest.raises(ValueError, match="num_objects >= 3"):
        render_sequence(0, 0, num_frames=8, height=48, width=80, num_objects=2)


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
