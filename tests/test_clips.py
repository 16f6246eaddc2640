"""DAVIS clips for fine-tuning: 8 frames, reversed copies, one scale per clip, boxes from
masks grown by 10 %, ids over (sequence, object); on DAVIS 2016 and on procedural videos."""

import json
import random

import numpy as np
import pytest
import torch

from lipnb.data import transforms as T
from lipnb.data.clips import DavisClips, collate_clips
from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural


@pytest.fixture(scope="module")
def clips16(davis2016_root):
    davis = DavisDataset(davis2016_root, year="2016", split="train", resolution="240p")
    return DavisClips(davis, clip_length=8, stride=4, scales=(200, 240), max_size=480)


def test_davis2016_clip_has_8_frames(clips16):
    clip = clips16[0]
    assert len(clip["frames"]) == 8 and len(clip["targets"]) == 8
    assert clip["frame_indices"] == list(range(8)) and not clip["reversed"]
    assert clip["frames"][0].shape == (3, 240, 427)
    assert all(t["masks"].shape[-2:] == (240, 427) for t in clip["targets"])


def test_reversed_clip_is_reversed(clips16):
    fwd, rev = clips16.clip(2, 200, True), clips16.clip(3, 200, True)  # a clip and its reversed twin
    assert fwd["sequence"] == rev["sequence"] and rev["reversed"]
    assert rev["frame_indices"] == fwd["frame_indices"][::-1]
    for a, b in zip(fwd["frames"], rev["frames"][::-1]):
        assert torch.equal(a, b)
    for a, b in zip(fwd["targets"], rev["targets"][::-1]):
        assert torch.equal(a["masks"], b["masks"]) and torch.equal(a["boxes"], b["boxes"])


def test_boxes_are_10_percent_larger_than_masks(clips16):
    checked = 0
    for index in range(0, len(clips16), 191):
        for target in clips16[index]["targets"]:
            tight = T.boxes_from_masks(target["masks"], expand=0.0)
            box = target["boxes"]
            w, h = tight[:, 2] - tight[:, 0], tight[:, 3] - tight[:, 1]
            expected = torch.stack([tight[:, 0] - 0.05 * w, tight[:, 1] - 0.05 * h,
                                    tight[:, 2] + 0.05 * w, tight[:, 3] + 0.05 * h], 1)
            H, W = target["masks"].shape[-2:]
            expected[:, 0::2] = expected[:, 0::2].clamp(0, W)
            expected[:, 1::2] = expected[:, 1::2].clamp(0, H)
            assert torch.allclose(box, expected, atol=1e-4)
            inside = (expected[:, 0] > 0) & (expected[:, 2] < W) & (expected[:, 1] > 0) & (expected[:, 3] < H)
            if inside.any():  # not clipped: exactly 1.1x the mask's width and height
                bw, bh = box[inside, 2] - box[inside, 0], box[inside, 3] - box[inside, 1]
                assert torch.allclose(bw, 1.1 * w[inside]) and torch.allclose(bh, 1.1 * h[inside])
                checked += 1
    assert checked > 3


def test_ids_and_one_scale_per_clip(clips16):
    assert clips16.num_ids == 30  # DAVIS 2016 train: 30 sequences, one object each
    clip = clips16.get(10, random.Random(0))
    sizes = {tuple(f.shape[-2:]) for f in clip["frames"]}
    assert len(sizes) == 1 and min(sizes.pop()) in (200, 240)
    seq_id = clips16.id_of[(clip["sequence"], 1)]
    assert all(t["labels"].tolist() in ([seq_id], []) for t in clip["targets"])
    frames, targets = collate_clips([clip, clips16.get(11, random.Random(1))])
    assert len(frames) == 8 and len(frames[0]) == 2 and len(targets[0]) == 2


def test_procedural_clips_drop_hidden_objects(tmp_path):
    spec = ProceduralSpec(seed=3, coco_train=1, coco_val=0, davis_train=2, davis_val=0, num_frames=12,
                          video_height=64, video_width=112)
    data = ensure_procedural(spec, cache_dir=tmp_path)
    meta = json.loads((data.davis / "procedural.json").read_text())["sequences"]
    clips = DavisClips(DavisDataset(data.davis, "2017", "train"), clip_length=8, reverse=False, scales=(64,))
    assert clips.num_ids == 6 and clips.ids[0] == ("train-000", 1)
    for index, ref in enumerate(clips.refs):
        clip = clips[index]
        hider = next(o["id"] for o in meta[ref.sequence]["objects"] if o["role"] == "hider")
        hidden = {f for a, b in meta[ref.sequence]["hidden"][str(hider)] for f in range(a, b + 1)}
        for f, target in zip(ref.frames, clip["targets"]):
            present = clips.id_of[(ref.sequence, hider)] in target["labels"].tolist()
            assert present == (f not in hidden)
            assert len(target["labels"]) == len(target["boxes"]) == len(target["masks"])
        assert np.isfinite(clip["frames"][0].numpy()).all()
