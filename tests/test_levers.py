"""The memory's levers (issue 21) as training settings: each does what it says, and the defaults
change nothing (one parameter group, the same clips)."""

import json
import dataclasses

import pytest
import torch

from lipnb import profiles
from lipnb.data.clips import DavisClips, MixedClips, collate_clips
from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.train.build import build_data, build_model, build_optimizer, parameter_groups
from lipnb.train.loop import StageForward

TINY = ProceduralSpec(seed=3, coco_train=1, coco_val=1, davis_train=2, davis_val=0, num_frames=12,
                      video_height=48, video_width=80)


@pytest.fixture(scope="module")
def tiny_root():
    return ensure_procedural(TINY).davis


def finetune_cfg(root, **kw):
    return profiles.train_config("smoke", "finetune", data=str(root), scales=(48,), max_size=96, **kw)


@pytest.fixture(scope="module")
def model():
    cfg = profiles.train_config("smoke", "finetune")
    return build_model(cfg, 4, load_init=False)


def test_default_optimizer_is_one_plain_group(model):
    cfg = profiles.train_config("smoke", "finetune")
    opt = build_optimizer(cfg, model)
    assert len(opt.param_groups) == 1 and not cfg.grouped_parameters
    g = opt.param_groups[0]
    assert g["lr"] == cfg.lr and g["weight_decay"] == cfg.weight_decay
    assert [id(p) for p in g["params"]] == [id(p) for p in model.parameters() if p.requires_grad]


def test_detectron_groups(model):
    cfg = profiles.train_config("smoke", "finetune", weight_decay_norm=0.0, weight_decay_bias=0.0,
                                bias_lr_factor=2.0, memory_lr_factor=10.0)
    groups = {g["name"]: g for g in build_optimizer(cfg, model).param_groups}
    norm_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.GroupNorm) for p in m.parameters()}
    memory_ids = {id(p) for p in model.memory.parameters()}
    assert groups["weight"]["lr"] == cfg.lr and groups["weight"]["weight_decay"] == cfg.weight_decay
    assert groups["bias"]["lr"] == 2 * cfg.lr and groups["bias"]["weight_decay"] == 0
    assert groups["norm"]["weight_decay"] == 0 and groups["norm"]["lr"] == cfg.lr
    assert groups["memory weight"]["lr"] == pytest.approx(10 * cfg.lr)
    assert groups["memory weight"]["weight_decay"] == cfg.weight_decay
    assert groups["memory norm"]["weight_decay"] == 0
    assert all(id(p) in norm_ids for k in ("norm", "memory norm") for p in groups[k]["params"])
    assert all(id(p) in memory_ids for k in groups if k.startswith("memory") for p in groups[k]["params"])
    assert not any(id(p) in memory_ids for k in ("weight", "bias", "norm") for p in groups[k]["params"])
    # every trainable parameter once, nothing frozen
    ids = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad) and len(set(ids)) == len(ids)
    # the schedule scales every group from its own lr
    sched = __import__("lipnb.train.build", fromlist=["build_scheduler"]).build_scheduler(cfg, build_optimizer(cfg, model))
    assert len(sched.base_lrs) == len(groups)


def test_only_memory_factor_keeps_decay(model):
    cfg = profiles.train_config("smoke", "finetune", memory_lr_factor=3.0)
    groups = {g["name"]: g for g in parameter_groups(cfg, model)}
    assert all(g["weight_decay"] == cfg.weight_decay for g in groups.values())
    assert groups["norm"]["lr"] == cfg.lr and groups["memory norm"]["lr"] == pytest.approx(3 * cfg.lr)


def test_default_data_is_unchanged(tiny_root):
    cfg = finetune_cfg(tiny_root)
    data = build_data(cfg)
    plain = DavisClips(DavisDataset(tiny_root, "2017", "train"), cfg.clip_length + cfg.clip_warmup, cfg.clip_stride,
                       cfg.reverse_clips, cfg.scales, cfg.max_size, cfg.flip, cfg.box_expand)
    assert type(data.stream.dataset) is DavisClips and len(data.stream) == len(plain)
    a, b = data.stream[3], plain.get(data.stream.index(3), data.stream.rng(3))
    assert "warmup" not in a and a["frame_indices"] == b["frame_indices"]
    assert all(torch.equal(x, y) for x, y in zip(a["frames"], b["frames"]))
    assert len(collate_clips([a])) == 2


def test_mixed_sources_both_appear(tiny_root):
    cfg = finetune_cfg(tiny_root, clip_sources=("memory",), memory_videos=2, memory_seed=5)
    data = build_data(cfg)
    assert isinstance(data.stream.dataset, MixedClips)
    own = build_data(finetune_cfg(tiny_root))
    assert data.num_ids == own.num_ids + data.stream.dataset.sources[1].num_ids
    seen = [data.stream[p] for p in range(30)]
    assert {s["source"] for s in seen} == {str(tiny_root), "memory"}
    for s in seen:  # labels of the second source come after the first's ids
        labels = torch.cat([t["labels"] for t in s["targets"]])
        lo, hi = (1, own.num_ids) if s["source"] != "memory" else (own.num_ids + 1, data.num_ids)
        assert labels.numel() == 0 or (labels.min() >= lo and labels.max() <= hi)
    # shares: all from the second source
    only = build_data(dataclasses.replace(cfg, clip_source_weights=(0.0, 1.0)))
    assert {only.stream[p]["source"] for p in range(10)} == {"memory"}


def test_random_warmup_in_range_and_reproducible(tiny_root):
    cfg = finetune_cfg(tiny_root, warmup_frames=1, warmup_frames_max=5)
    assert cfg.clip_warmup_range == (1, 5)
    data = build_data(cfg)
    clips = data.stream.dataset
    draws = []
    for p in range(40):
        s = data.stream[p]
        ref = clips.refs[data.stream.index(p)]
        available = ref.frames[0] if not ref.reversed else clips.sequences[ref.sequence].num_frames - 1 - ref.frames[0]
        assert 0 <= s["warmup"] <= 5 and (s["warmup"] >= 1 or available == 0)
        assert s["warmup"] <= available and len(s["frames"]) == cfg.clip_length + s["warmup"]
        # the warm-up frames precede the clip in its playing order
        step = -1 if ref.reversed else 1
        assert s["frame_indices"] == [ref.frames[0] - step * k for k in range(s["warmup"], 0, -1)] + list(ref.frames)
        draws.append(s["warmup"])
    assert len(set(draws)) > 2
    again = build_data(cfg)
    assert [again.stream[p]["warmup"] for p in range(40)] == draws
    other = build_data(dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert [other.stream[p]["warmup"] for p in range(40)] != draws
    frames, targets, extra = data.collate([data.stream[0]])
    assert extra == {"warmup": draws[0]} and len(frames) == cfg.clip_length + draws[0]
    # a static memory (Table 3's zero arm) has no warm-up
    assert dataclasses.replace(cfg, static_memory=True).clip_warmup_range is None


def test_batch_warmup_reaches_forward_clip(tiny_root, monkeypatch):
    seen = {}

    class Fake(torch.nn.Module):
        def forward_clip(self, frames, targets, bptt_cut=None, warmup=0):
            seen["warmup"] = warmup
            return {}

    fwd = StageForward(Fake(), "finetune", 4, warmup=2)
    fwd([], [])
    assert seen["warmup"] == 2
    fwd([], [], warmup=7)
    assert seen["warmup"] == 7


def test_one_training_step_with_levers(tiny_root, tmp_path):
    from lipnb.train import train

    cfg = dataclasses.replace(finetune_cfg(tiny_root), clip_sources=("memory",), memory_videos=2, memory_seed=5,
                              warmup_frames=0, warmup_frames_max=3, weight_decay_norm=0.0, weight_decay_bias=0.0,
                              bias_lr_factor=2.0, memory_lr_factor=10.0, max_iters=1, milestones=(1,), warmup_iters=0,
                              clip_length=2, ckpt_every=1, device="cpu")
    cfg.model = {**cfg.model, "carry": "H"}
    summary = train(cfg, tmp_path, progress=False)
    assert summary["steps_run"] == 1 and summary["last_loss"] == summary["last_loss"]  # finite


# --------------------------------------------------------------------------- head_input_norm (not in the paper)


def _frames(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 64, 96, generator=g)
    return [[(base + 0.05 * k * torch.rand(3, 64, 96, generator=g)).clamp(0, 1)] for k in range(n)]


def _play(model, frames):
    """Per frame: (features with the state carried, features with a zero state, the carried state)."""
    out, state = [], None
    with torch.no_grad():
        for images in frames:
            ff = model.features(images, state)
            zero = model.features(images, None)
            out.append((ff.features, zero.features, ff.state))
            state = ff.state
    return out


def test_head_input_norm_default_is_the_paper_bit_for_bit(model):
    from lipnb.model import LIPConfig

    assert LIPConfig().head_input_norm == "none" and model.cfg.head_input_norm == "none"
    model = model.eval()
    images = _frames(2)
    with torch.no_grad():
        state = None
        for imgs in images:  # the features by hand: transform, backbone, memory, path augmentation
            il, _ = model.transform(imgs, None)
            hidden, _ = model.memory(list(model.backbone(il.tensors).values()), state)
            ref = model.path_aug(hidden)
            ff = model.features(imgs, state)
            assert all(torch.equal(a, b) for a, b in zip(ff.features.values(), ref))
            state = ff.state
            assert all(torch.equal(a, b) for a, b in zip(state, ref))
        dets, _ = model(images[-1], None, state)
        dets2, _ = model(images[-1], None, state)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(dets, dets2) for k in a)


@pytest.mark.parametrize("mode", ["rms", "rms_pos"])
def test_head_input_norm_removes_the_carried_scale(model, mode):
    model = model.eval()
    frames = _frames(4)
    plain = _play(model, frames)
    model.cfg.head_input_norm = mode
    try:
        normed = _play(model, frames)
    finally:
        model.cfg.head_input_norm = "none"
    for (pc, pz, ps), (nc, nz, ns) in zip(plain[1:], normed[1:]):
        for a, b, c, d in zip(pc.values(), pz.values(), nc.values(), nz.values()):
            assert float(c.norm() / d.norm()) == pytest.approx(1.0, abs=0.02)
            # the heads' input is N rescaled: same direction per image (rms) or per position (rms_pos)
            dims = (1, 2, 3) if mode == "rms" else (1,)
            from lipnb.model.lip import HEAD_INPUT_NORM_SCALE

            ms = c.pow(2).mean(dims)
            assert torch.allclose(ms, torch.full_like(ms, HEAD_INPUT_NORM_SCALE ** 2), rtol=1e-2)
        # the carried state is N itself, never normalised
        assert all(torch.equal(x, y) for x, y in zip(ps, ns))
    # a random model does carry a state of another scale (what the option is for)
    ratios = [float(a.norm() / b.norm()) for pc, pz, _ in plain[1:] for a, b in zip(pc.values(), pz.values())]
    assert max(abs(r - 1) for r in ratios) > 0.02


def test_head_input_norm_rejects_unknown(model):
    from lipnb.model import LIP, LIPConfig

    with pytest.raises(ValueError):
        LIP(LIPConfig.from_dict({**model.cfg.to_dict(), "head_input_norm": "layer"}))


# --------------------------------------------------------------------------- update_gate_bias (not in the paper)


def _model_with_gate_bias(bias):
    cfg = profiles.train_config("smoke", "finetune")
    torch.manual_seed(0)
    return build_model(dataclasses.replace(cfg, model={**cfg.model, "update_gate_bias": bias}), 4,
                       load_init=False).eval()


def test_update_gate_bias_opens_the_gate_and_brings_the_scales_together():
    from lipnb.model import LIPConfig

    assert LIPConfig().update_gate_bias == 0.0  # the paper: GN_z's shift starts at 0
    frames = _frames(4)
    closed, opened = _model_with_gate_bias(0.0), _model_with_gate_bias(2.0)
    assert all(not c.gn_z.bias.detach().any() for c in closed.memory.cells)
    assert all(torch.equal(c.gn_z.bias, torch.full_like(c.gn_z.bias, 2.0)) for c in opened.memory.cells)
    # only GN_z's shift differs between the two models
    diff = [k for k, v in closed.state_dict().items() if not torch.equal(v, opened.state_dict()[k])]
    assert diff and all(k.startswith("memory.cells.") and k.endswith("gn_z.bias") for k in diff)

    def mean_z_and_scale_gap(model):
        with torch.no_grad():
            model.features(frames[0], None)
            z = sum(float(g["z"].mean()) for g in model.gates) / len(model.gates)
        gap = [abs(float(a.norm() / b.norm()) - 1) for c, zero, _ in _play(model, frames)[1:]
               for a, b in zip(c.values(), zero.values())]
        return z, sum(gap) / len(gap)

    (z0, gap0), (z2, gap2) = mean_z_and_scale_gap(closed), mean_z_and_scale_gap(opened)
    assert z0 == pytest.approx(0.5, abs=0.05) and z2 > 0.8
    assert gap2 < 0.5 * gap0  # ||N|| carried / zero nearer 1 with the gate open


def test_norm_levers_pretrain_on_their_own():
    from lipnb.lab import levers

    assert levers.pretrain_part(levers.LEVERS["baseline"]) == {} and levers.pretrain_part(levers.LEVERS["groups"]) == {}
    assert levers.pretrain_part(levers.LEVERS["norm"]) == {"model": {"head_input_norm": "rms_pos"}}
    assert levers.pretrain_part(levers.LEVERS["gate_open"]) == {"model": {"update_gate_bias": 2.0}}
    # pre-training with the memory on: its own pre-training and its own zero arm (which starts from it)
    assert levers.pretrain_part(levers.LEVERS["pseudo_clips"]) == {
        "train": {"static_memory": False, "pretrain_warm_passes": 2}}
    assert levers.zero_key(levers.LEVERS["pseudo_clips"]) != levers.zero_key(levers.LEVERS["baseline"])
    assert levers.pretrain_part(levers.LEVERS["norm_groups"]) == levers.pretrain_part(levers.LEVERS["norm"])
    assert levers.LEVERS["norm_groups"]["train"] == levers.LEVERS["groups"]["train"]
    # the zero arm: the norm's is its own; the existing levers keep their zero-arm folders
    assert levers.zero_key(levers.LEVERS["norm"]) != levers.zero_key(levers.LEVERS["baseline"])
    assert levers.zero_key(levers.LEVERS["warmup"]) == levers.zero_key(levers.LEVERS["baseline"])
    assert levers.zero_key(levers.LEVERS["groups_long"]) != levers.zero_key(levers.LEVERS["groups"])


def test_zero_recurrent_weights_at_finetuning_start(model, tmp_path):
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict()}, tmp_path / "pre.pt")
    recurrent = ("conv_h_zr", "conv_h.")
    as_loaded = build_model(profiles.train_config("smoke", "finetune", init=str(tmp_path / "pre.pt")), 4)
    zeroed = build_model(profiles.train_config("smoke", "finetune", init=str(tmp_path / "pre.pt"),
                                               memory_recurrent_init="zero"), 4)
    a, b = dict(as_loaded.memory.named_parameters()), dict(zeroed.memory.named_parameters())
    assert all(b[k].abs().sum() == 0 and a[k].abs().sum() > 0 for k in b if any(r in k for r in recurrent))
    assert all(torch.equal(a[k], b[k]) for k in b if not any(r in k for r in recurrent))  # the rest as loaded
    with pytest.raises(ValueError, match="memory_recurrent_init"):
        profiles.train_config("smoke", "finetune", memory_recurrent_init="small")


def test_memory_gate_shift_opens_every_update_gate_at_finetuning_start(model, tmp_path):
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict()}, tmp_path / "pre.pt")
    as_loaded = build_model(profiles.train_config("smoke", "finetune", init=str(tmp_path / "pre.pt")), 4)
    opened = build_model(profiles.train_config("smoke", "finetune", init=str(tmp_path / "pre.pt"),
                                               memory_gate_shift=2.0), 4)
    a, b = dict(as_loaded.memory.named_parameters()), dict(opened.memory.named_parameters())
    shifts = [k for k in b if k.endswith("gn_z.bias")]
    assert len(shifts) == len(opened.memory.cells) and all(bool((b[k] == 2.0).all()) for k in shifts)
    assert all(not bool((a[k] == 2.0).any()) for k in shifts)
    assert all(torch.equal(a[k], b[k]) for k in b if k not in shifts)  # the rest as loaded


def test_the_levers_command_collects_a_stopped_call_into_its_table(tmp_path):
    from lipnb.cli.levers import main
    from lipnb.paths import RESULTS_DIR

    rows = json.loads((RESULTS_DIR / "smoke-levers" / "levers_runs.json").read_text())
    for r in [r for r in rows if r["lever"] in ("baseline", "groups")]:
        f = tmp_path / "work" / f"seed-{r['seed']}" / r["lever"] / "lever_row.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"row": r}))
    assert main(["--out", str(tmp_path), "--levers", "groups", "baseline", "--collect", "the call that ran them"]) == 0
    table = (tmp_path / "levers.md").read_text()
    assert "measured by this project: `the call that ran them`" in table
    assert table.index("| groups | 3 |") < table.index("| baseline | 3 |")  # the order asked for
    assert json.loads((tmp_path / "levers_runs.json").read_text())[0]["lever"] == "groups"
