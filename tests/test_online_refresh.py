"""Id-head refresh (paper §3.3, §5.1): confident detections train the id head's last layer on
cached RoI features, without another backbone pass."""

import copy

import pytest
import torch

from lipnb.data.procedural_videos import render_sequence
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.constraints import Kept
from lipnb.online.detect import detect
from lipnb.online.finetune import OnlineFineTuner, first_frame_targets
from lipnb.online.refresh import IdHeadRefresher, refresh_samples
from lipnb.profiles import model_config

def count_calls(module):
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.fixture(scope="module")
def frame():
    return setup_frame()


def setup_frame():
    frames, masks, _ = render_sequence(1, 0, num_frames=8, height=64, width=96, split="val")
    to_image = lambda f: torch.from_numpy(f).permute(2, 0, 1).float() / 255  # noqa: E731
    model = random_model(model_config("smoke"))
    targets = first_frame_targets(masks[0], [1, 2, 3])
    fit = OnlineFineTuner(model, OnlineConfig(max_iters=0)).fit(to_image(frames[0]), targets)
    with torch.no_grad():
        ff = model.features([to_image(frames[1])], fit.features.state)
    return model, detect(model, ff, min_score=0.0), fit.features.targets[0]["boxes"]


def test_refresh_reuses_cached_features_and_trains_only_the_id_layer(frame):
    model, det, boxes = frame
    model = copy.deepcopy(model)
    backbone, memory, rpn = count_calls(model.backbone), count_calls(model.memory), count_calls(model.rpn)
    box_head = {k: v.clone() for k, v in model.roi_heads.box_head.state_dict().items()}
    id_weight = model.roi_heads.id_head.cls_score.weight.detach().clone()
    kept = {1: Kept(-1, 0.9, tuple(boxes[0].tolist())), 2: Kept(-1, 0.8, tuple(boxes[1].tolist()))}
    cfg = OnlineConfig(refresh_iters=3, refresh_stop=0.0)
    result = IdHeadRefresher(model, cfg)(det, kept)
    assert result.iterations == 3 and result.targets == 2
    assert backbone[0] == 0 and memory[0] == 0 and rpn[0] == 0  # "saving and reusing intermediate tensors"
    assert not torch.equal(id_weight, model.roi_heads.id_head.cls_score.weight)
    assert all(torch.equal(v, model.roi_heads.box_head.state_dict()[k]) for k, v in box_head.items())


def test_refresh_needs_a_confident_target_and_stops_early(frame):
    model, det, boxes = frame
    unsure = {1: Kept(-1, 0.5, tuple(boxes[0].tolist()))}  # not > 0.5
    assert IdHeadRefresher(model, OnlineConfig())(det, unsure).iterations == 0
    sure = {1: Kept(-1, 0.9, tuple(boxes[0].tolist()))}
    assert IdHeadRefresher(model, OnlineConfig(refresh_stop=1e9))(det, sure).iterations == 0  # under threshold


def test_refresh_labels_and_leaves_out_unsure_overlaps(frame):
    from torchvision.ops import box_iou

    model, det, boxes = frame
    far = int(box_iou(det.proposals, boxes[:1])[:, 0].argmin())  # a proposal away from id 1's box
    kept = {1: Kept(-1, 0.9, tuple(boxes[0].tolist())), 2: Kept(-1, 0.3, tuple(det.proposals[far].tolist()))}
    rep, roi, labels = refresh_samples(det, kept, model, score=0.5, fg_iou=0.5)
    assert len(rep) == len(roi) == len(labels) and set(labels.tolist()) <= {0, 1} and (labels == 1).any()
    assert labels[-1] == 1  # the target box itself is a RoI of its id
    everything = refresh_samples(det, {1: kept[1]}, model, score=0.5, fg_iou=0.5)[2]
    assert len(labels) < len(everything)  # RoIs on the unsure id 2 are neither id 1 nor background
