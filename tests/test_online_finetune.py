"""Online fine-tuning (paper §4.2, §5.1): early stopping, frozen parts, the stopped gradient."""

import pytest
import torch

from lipnb.data.procedural_videos import render_sequence
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.finetune import EarlyStopping, OnlineFineTuner, first_frame_targets, warmup_multistep
from lipnb.profiles import model_config

NEVER = {"rpn": 0.0, "id": 0.0, "box": 0.0, "mask": 0.0}  # no head ever goes under these
ALWAYS = {"rpn": 1e9, "id": 1e9, "box": 1e9, "mask": 1e9}  # every head is under these at once

@pytest.fixture(scope="module")
def frame0():
    frames, masks, _ = render_sequence(0, 0, num_frames=8, height=64, width=96, split="val")
    image = torch.from_numpy(frames[0]).permute(2, 0, 1).float() / 255
    ids = sorted(int(i) for i in set(masks[0].flatten().tolist()) if i)
    return image, first_frame_targets(masks[0], ids)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    after = module.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_early_stopping_rule():
    stop = EarlyStopping({"id": 0.15, "box": 0.1})
    assert stop.active({"id": 0.3, "box": 0.05}) == ["id"] and not stop.done  # box under threshold: ignored
    assert stop.active({"id": 0.3, "box": 0.2}) == ["id", "box"]  # per iteration: box back in
    assert stop.active({"id": 0.1, "box": 0.05}) == [] and stop.done
    sticky = EarlyStopping({"id": 0.15, "box": 0.1}, sticky=True)
    sticky.active({"id": 0.3, "box": 0.05})
    assert sticky.active({"id": 0.3, "box": 0.2}) == ["id"]  # once under, never again
    assert sticky.active({"id": 0.1, "box": 0.2}) == [] and sticky.done


def test_schedule_warms_up_and_steps():
    f = warmup_multistep(OnlineConfig())
    assert abs(f(0) - 1 / 3) < 1e-9 and f(50) == 1.0 and f(499) == 1.0 and abs(f(500) - 0.1) < 1e-12


def test_fine_tuning_stops_when_all_heads_are_under_threshold(frame0):
    image, targets = frame0
    model = random_model(model_config("smoke"))
    result = OnlineFineTuner(model, OnlineConfig(max_iters=50, stop_thresholds=ALWAYS)).fit(image, targets)
    assert result.iterations == 0 and result.stopped_early and len(result.history) == 1
    model = random_model(model_config("smoke"))
    result = OnlineFineTuner(model, OnlineConfig(max_iters=2, stop_thresholds=NEVER)).fit(image, targets)
    assert result.iterations == 2 and not result.stopped_early


def test_frozen_parts_do_not_change(frame0):
    image, targets = frame0
    model = random_model(model_config("smoke"))
    backbone, memory, box_head = snapshot(model.backbone), snapshot(model.memory), snapshot(model.roi_heads.box_head)
    cfg = OnlineConfig(max_iters=2, stop_thresholds=NEVER, warmup_iters=0, lr=0.01)
    assert OnlineFineTuner(model, cfg).fit(image, targets).iterations == 2
    assert not changed(backbone, model.backbone) and not changed(memory, model.memory)
    assert changed(box_head, model.roi_heads.box_head)  # "All other parts are fine-tuned"
    heads = model.roi_heads
    assert heads.id_head.num_ids == 3 and heads.box_predictor.slots == 4 and heads.mask_predictor.num_masks == 4


def test_id_loss_stops_at_the_id_heads_last_layer(frame0):
    image, targets = frame0
    model = random_model(model_config("smoke"))
    below = snapshot(model.roi_heads.box_head)
    only_id = {**ALWAYS, "id": 0.0}  # rpn, box and mask are under threshold: only the id loss trains
    cfg = OnlineConfig(max_iters=2, stop_thresholds=only_id, warmup_iters=0, lr=0.01)
    OnlineFineTuner(model, cfg).fit(image, targets)
    id_head = model.roi_heads.id_head  # the fresh layer, trained
    assert id_head.cls_score.weight.grad is not None and id_head.cls_score.weight.grad.abs().sum() > 0
    assert not changed(below, model.roi_heads.box_head)


def test_first_frame_targets_expand_boxes():
    mask = torch.zeros(20, 20, dtype=torch.uint8)
    mask[5:15, 2:12] = 4
    t = first_frame_targets(mask.numpy(), [4], box_expand=0.1)
    assert t["labels"].tolist() == [1] and t["masks"].shape == (1, 20, 20)
    assert torch.allclose(t["boxes"], torch.tensor([[1.5, 4.5, 12.5, 15.5]]))


def test_fine_tuning_is_reproducible(frame0):
    image, targets = frame0
    weights = []
    for _ in range(2):
        model = random_model(model_config("smoke"))
        torch.manual_seed(len(weights))  # the global generator must not matter
        OnlineFineTuner(model, OnlineConfig(max_iters=1, stop_thresholds=NEVER)).fit(image, targets)
        weights.append(model.roi_heads.id_head.cls_score.weight.detach().clone())
    assert torch.equal(*weights)


def test_warm_first_frame_sees_frame_0_with_its_own_state(frame0):
    image, targets = frame0
    model = random_model(model_config("smoke")).eval()
    cold = OnlineFineTuner(model, OnlineConfig()).first_frame_features(image, targets)
    warm = OnlineFineTuner(model, OnlineConfig(warm_first_frame=1)).first_frame_features(image, targets)
    with torch.no_grad():
        again = model.features([image], cold.state)
    for w, a, c in zip(warm.state, again.state, cold.state):
        assert torch.allclose(w, a) and not torch.allclose(w, c)
    assert torch.equal(warm.targets[0]["boxes"], cold.targets[0]["boxes"])
