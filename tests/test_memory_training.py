"""Issue 13: warm-up frames before a clip's losses, explicit zero states in training, the alpha
dial, the memory statistics and the online recipe chosen on training videos."""

import numpy as np
import pytest
import torch

from lipnb.data.procedural_videos import render_sequence
from lipnb.model import LIP, LIPConfig
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import carried, segment_sequence
from lipnb.lab.recipes import choose_recipe, spread
from lipnb.lab import memory_stats
from lipnb.train import TrainConfig
from lipnb.profiles import model_config, train_config


@pytest.fixture(scope="module")
def video():
    frames, masks, _ = render_sequence(0, 0, num_frames=8, height=64, width=96, split="val")
    return frames, masks


def clip_of(frames, masks):
    images = [[torch.from_numpy(f).permute(2, 0, 1).float() / 255] for f in frames]
    targets = []
    for m in masks:
        ids = [int(i) for i in np.unique(m) if i]
        ms = torch.stack([torch.from_numpy(m == i) for i in ids]).to(torch.uint8)
        from lipnb.data.transforms import boxes_from_masks
        targets.append([{"boxes": boxes_from_masks(ms), "labels": torch.arange(1, len(ids) + 1), "masks": ms}])
    return images, targets


def test_warmup_frames_only_carry_the_state(video):
    torch.manual_seed(0)
    model = LIP(model_config("smoke", num_ids=8)).train()
    images, targets = clip_of(*video)
    torch.manual_seed(1)
    losses = model.forward_clip(images, targets, bptt_cut=2, warmup=3)
    torch.manual_seed(1)
    state = model.warm_up(images[:3])
    by_hand = model.forward_clip(images[3:], targets[3:], bptt_cut=2, state=state)
    assert all(torch.allclose(losses[k], by_hand[k]) for k in losses)
    assert all(h.grad_fn is None for h in state)  # no gradient reaches the warm-up frames
    torch.manual_seed(1)
    cold = model.forward_clip(images[3:], targets[3:], bptt_cut=2)
    assert not torch.allclose(sum(losses.values()), sum(cold.values()))  # the warmed state matters


def test_finetune_clips_carry_their_warmup_frames():
    cfg = train_config("smoke", "finetune")
    assert cfg.clip_warmup == 2 and train_config("davis-cpu", "finetune").clip_warmup == 3
    assert train_config("smoke", "finetune", static_memory=True).clip_warmup == 0  # nothing to warm
    assert train_config("smoke", "pretrain").clip_warmup == 0
    from lipnb.train.build import build_data

    clip = build_data(cfg).stream[0]
    assert len(clip["frames"]) == cfg.clip_length + cfg.clip_warmup


def test_zero_state_is_explicit_in_training_so_weight_decay_reaches_the_memory(video):
    torch.manual_seed(0)
    model = LIP(model_config("smoke", num_ids=8, static_memory=True)).train()
    images, targets = clip_of(*video)
    before = model.memory.cells[0].conv_h.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    loss = sum(model(images[0], targets[0])[0].values())
    loss.backward()
    grad = model.memory.cells[0].conv_h.weight.grad
    assert grad is not None and torch.count_nonzero(grad) == 0  # zero state: zero gradient, but one
    opt.step()
    assert torch.allclose(model.memory.cells[0].conv_h.weight, before * (1 - 0.1 * 0.1))  # decayed


def test_alpha_zero_is_the_zero_state(video):
    frames, masks = video
    state = [torch.ones(1, 2, 3, 3)]
    assert carried(state, 1.0) is state and torch.equal(carried(state, 0.25)[0], torch.full((1, 2, 3, 3), 0.25))
    outputs = {}
    for label, alpha in (("dial", 0.0), ("held", 1.0)):
        model = random_model(model_config("smoke"), seed=3)
        if label == "held":
            model.hold_hidden_at_zero()
        written = {}
        segment_sequence(model, lambda i: frames[i], 5, masks[0], lambda i, ids: written.__setitem__(i, ids),
                         OnlineConfig(max_iters=3, refresh_iters=2, memory_alpha=alpha), progress=False)
        outputs[label] = written
    assert all(np.array_equal(outputs["dial"][i], outputs["held"][i]) for i in range(5))


def test_memory_statistics_shapes_and_weight_change():
    from lipnb.data.davis import DavisSequence  # noqa: F401  (the statistics read any sequence-like object)

    frames, masks, _ = render_sequence(0, 1, num_frames=8, height=64, width=96, split="val")

    class Seq:
        num_frames = 8
        read_frame = staticmethod(lambda i: frames[i])

    a, b = random_model(model_config("smoke"), seed=0), random_model(model_config("smoke"), seed=0)
    with torch.no_grad():
        b.memory.cells[2].conv_h.weight.mul_(1.5)
    rows = memory_stats.memory_statistics(a, Seq())
    assert [r["level"] for r in rows] == list(memory_stats.LEVEL_NAMES)
    assert all(0 < r["z_mean"] < 1 and r["z_std"] > 0 and r["steady_over_first"] > 0 for r in rows)
    moved = memory_stats.weight_change(a, b)
    assert moved[2]["W_h"] == pytest.approx(0.5, rel=1e-5) and moved[0]["W_h"] == 0 and moved[2]["W_hz"] == 0
    with torch.no_grad():
        b.memory.cells[1].gn_z.weight.fill_(2.0)
        b.memory.cells[1].gn_z.bias.fill_(-0.5)
    norms = memory_stats.gate_norms(b)
    assert norms[0]["z_gamma"] == 1 and norms[0]["z_abs_beta"] == 0
    assert norms[1]["z_gamma"] == 2 and norms[1]["z_abs_beta"] == 0.5 and norms[1]["r_gamma"] == 1


def test_state_trace_starts_at_one_and_a_shut_gate_keeps_it_there():
    frames, _, _ = render_sequence(0, 1, num_frames=8, height=64, width=96, split="val")

    class Seq:
        num_frames = 8
        read_frame = staticmethod(lambda i: frames[i])

    model = random_model(model_config("smoke"), seed=0)
    rows = memory_stats.state_trace(model, Seq(), last=4)
    assert len(rows) == 5 * len(memory_stats.LEVEL_NAMES)
    first = [r for r in rows if r["frame"] == 0]
    assert all(r["norm_ratio"] == pytest.approx(1) and r["cosine"] == pytest.approx(1) for r in first)
    assert any(abs(r["norm_ratio"] - 1) > 0.05 for r in rows if r["frame"] > 0)  # a carried state changes H
    with torch.no_grad():  # z = 1 everywhere: eq. 1d forgets the state, H_t = h~_t with or without it ...
        for cell in model.memory.cells:
            cell.gn_z.weight.zero_()
            cell.gn_z.bias.fill_(50.0)
            cell.conv_h.weight.zero_()  # ... when h~ does not read it either
            cell.conv_h_zr.weight.zero_()
    shut = memory_stats.state_trace(model, Seq(), last=4)
    assert all(r["norm_ratio"] == pytest.approx(1, abs=1e-5) for r in shut)


def test_gate_selectivity_sees_a_gate_that_opens_on_the_object():
    frames, masks, _ = render_sequence(0, 1, num_frames=8, height=64, width=96, split="val")

    class Seq:
        num_frames = 8
        read_frame = staticmethod(lambda i: frames[i])
        read_mask = staticmethod(lambda i: masks[i])

    model = random_model(model_config("smoke"), seed=0)
    cell = model.memory.cells[0]
    plain = memory_stats.gate_selectivity(model, Seq(), last=3)
    assert [r["level"] for r in plain] == list(memory_stats.LEVEL_NAMES)
    original = cell.gn_z.forward

    def open_on_object(x):  # z's pre-activation + 10 where the object is
        out = original(x)
        m = torch.from_numpy(masks[open_on_object.frame] > 0).float()[None, None]
        open_on_object.frame += 1
        return out + 10 * torch.nn.functional.interpolate(m, size=out.shape[-2:], mode="nearest")

    open_on_object.frame = 0
    cell.gn_z.forward = open_on_object
    rigged = memory_stats.gate_selectivity(model, Seq(), last=3)
    assert rigged[0]["z_object_minus_background"] > plain[0]["z_object_minus_background"] + 0.2


def test_recipe_is_chosen_by_mean_score(monkeypatch):
    assert spread(["d", "a", "c", "b", "e"], 3) == ["a", "c", "e"] and spread(["b", "a"], 4) == ["a", "b"]
    from lipnb.lab import recipes as recipe

    scores = {("low", "s1"): 40, ("low", "s2"): 50, ("high", "s1"): 60, ("high", "s2"): 20}
    monkeypatch.setattr(recipe, "score_sequence", lambda model, data, s, cfg, n: {
        "sequence": s, "J&F": scores[(cfg, s)], "J": 0, "F": 0, "finetune_iters": 1, "seconds": 0})
    best, rows = choose_recipe(None, None, ["s1", "s2"], {"high": "high", "low": "low"}, log=None)
    assert best == "low" and len(rows) == 4  # 45 beats 40 although "high" wins s1


def test_recipe_candidates_try_the_authors_early_stopping_and_none(monkeypatch):
    from lipnb.lab import recipes as recipe
    from lipnb.online import OnlineConfig
    from lipnb.online.config import STOP_THRESHOLDS
    from lipnb.online.finetune import EarlyStopping

    monkeypatch.setattr(recipe, "online_config", lambda run: OnlineConfig(lr=0.01, max_iters=30))
    dynamic, zero = recipe.candidates(None), recipe.candidates(None, zero_hidden=True)
    assert len(dynamic) == 4 and len(zero) == 2 and all(c.lr == 0.01 and c.max_iters == 30 for c in dynamic.values())
    assert {c.warm_first_frame for c in zero.values()} == {0}
    stops = [c.stop_thresholds for c in zero.values()]
    assert stops == [STOP_THRESHOLDS, recipe.NO_EARLY_STOPPING]
    never = EarlyStopping(recipe.NO_EARLY_STOPPING)
    assert never.active({"rpn": 0.0, "id": 0.0, "box": 0.0, "mask": 0.0}) == ["rpn", "id", "box", "mask"]
    assert not never.done
    assert recipe.label(zero["early stopping off, warm_first_frame=0"]) == \
        "early stopping off, lr 0.01, warm_first_frame=0"
