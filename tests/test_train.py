"""The training loop: profiles, schedule, checkpoints (atomic, weights-only), exact resume,
fine-tuning surgery, and DDP on CPU (2 gloo processes == 1 process on the combined batch)."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from lipnb.cli import main as lipnb_main
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.train import TrainConfig, train
from lipnb.train.build import WarmupMultiStep, build_model
from lipnb.train.checkpoint import load_checkpoint
from lipnb.profiles import train_config

SPEC = ProceduralSpec(seed=11, coco_train=12, coco_val=0, image_height=64, image_width=96, davis_train=2,
                      davis_val=0, num_frames=10, video_height=56, video_width=96)
SMALL = dict(scales=(64, 72), max_size=112, rois_per_image=32, ckpt_every=100)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_procedural(SPEC, cache_dir=tmp_path_factory.mktemp("proc"))


def pretrain_cfg(data, **kw):
    return train_config("smoke", "pretrain", data=str(data.coco), **{**SMALL, **kw})


def finetune_cfg(data, **kw):
    return train_config("smoke", "finetune", data=str(data.davis), clip_length=4,
                               **{**SMALL, **kw})


def weights(path):
    return load_checkpoint(path)["model"]


def test_paper_profile_values():
    pre, fine = train_config("paper", "pretrain"), train_config("paper", "finetune")
    assert (pre.lr, pre.milestones, pre.max_iters, pre.rois_per_image, pre.roi_positive_fraction) == \
        (0.02, (210_000, 250_000), 270_000, 512, 0.25)
    assert (pre.momentum, pre.weight_decay, pre.use_static_memory) == (0.9, 1e-4, True)
    assert pre.scales == (320, 352, 384, 416, 448, 480, 512, 544, 576, 608, 640) and pre.max_size == 1333
    assert (fine.lr, fine.milestones, fine.max_iters, fine.rois_per_image) == (0.002, (8_000, 10_000), 12_000, 128)
    assert (fine.freeze, fine.clip_length, fine.bptt_cut, fine.use_static_memory) == (("backbone",), 8, 4, False)
    assert fine.reverse_clips and fine.box_expand == 0.1


def test_schedule():
    rule = WarmupMultiStep((8, 10), 0.1, warmup_iters=4, warmup_factor=0.25)
    assert rule(0) == 0.25 and rule(2) == pytest.approx(0.625) and rule(4) == 1.0
    assert rule(7) == 1.0 and rule(8) == pytest.approx(0.1) and rule(10) == pytest.approx(0.01)


def test_resume_is_exact(data, tmp_path):
    """4 steps straight == 2 steps, stop, resume for 2 (through the CLI), bit for bit."""
    args = ["train", "--stage", "pretrain", "--profile", "smoke", "--data", str(data.coco), "--max-iters", "4",
            "--no-progress", "--set", "scales=[64, 72]", "--set", "max_size=112", "--set", "rois_per_image=32"]
    assert lipnb_main(args + ["--out", str(tmp_path / "straight")]) == 0
    assert lipnb_main(args + ["--out", str(tmp_path / "split"), "--stop-at", "2"]) == 0
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 2
    assert lipnb_main(args + ["--out", str(tmp_path / "split"), "--resume"]) == 0
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "split" / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logs = [(tmp_path / d / "log.csv").read_text().splitlines() for d in ("straight", "split")]
    strip = lambda rows: [r.rsplit(",", 2)[0] for r in rows]  # noqa: E731 - drop the timing columns
    assert len(logs[1]) == 5 and strip(logs[0]) == strip(logs[1])


def test_checkpoint_contents_and_atomic_write(data, tmp_path):
    train(pretrain_cfg(data, max_iters=1), tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert set(ckpt) >= {"step", "model", "optimizer", "scheduler", "scaler", "rng", "data", "config", "meta"}
    assert ckpt["data"] == {"position": 2, "global_batch": 2, "seed": 0}
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(ValueError, match="cannot resume"):  # a different run cannot resume it
        train(pretrain_cfg(data, max_iters=2, seed=1), tmp_path, resume=True, progress=False)


def test_finetune_from_pretrained_and_resume(data, tmp_path):
    train(pretrain_cfg(data, max_iters=1), tmp_path / "pre", progress=False)
    init = str(tmp_path / "pre" / "last.pt")
    cfg = finetune_cfg(data, init=init, max_iters=2)
    summary = train(cfg, tmp_path / "ft", progress=False)
    assert summary["steps_run"] == 2
    pre, ft = weights(init), weights(tmp_path / "ft" / "last.pt")
    ids = 2 * SPEC.num_objects  # (sequence, object) pairs of the training set
    assert ft["roi_heads.id_head.cls_score.weight"].shape[0] == ids + 1
    assert pre["roi_heads.id_head.cls_score.weight"].shape[0] == 6 + 1  # the 6 shape categories
    backbone = [k for k in pre if k.startswith("backbone.")]
    assert backbone and all(torch.equal(pre[k], ft[k]) for k in backbone)  # frozen
    memory = [k for k in pre if k.startswith("memory.") and k.endswith("weight")]
    assert any(not torch.equal(pre[k], ft[k]) for k in memory)  # the Conv-GRU learns
    # resume of the fine-tuning: 1 + 1 steps == 2 steps
    train(cfg, tmp_path / "ft2", stop_at=1, progress=False)
    train(cfg, tmp_path / "ft2", resume=True, progress=False)
    again = weights(tmp_path / "ft2" / "last.pt")
    assert all(torch.equal(ft[k], again[k]) for k in ft)


@pytest.mark.filterwarnings("ignore:fine-tuning without --init")
def test_full_bptt_with_activation_checkpointing_matches(data, tmp_path):
    """Full BPTT with per-frame activation checkpointing gives the gradients of plain full BPTT."""
    plain = finetune_cfg(data, max_iters=1, bptt_cut=None)
    ckpt = finetune_cfg(data, max_iters=1, bptt_cut=None, checkpoint_activations=True)
    train(plain, tmp_path / "a", progress=False)
    train(ckpt, tmp_path / "b", progress=False)
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, cfg, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(cfg, out, progress=False)


def test_ddp_two_processes_equal_one_process(data, tmp_path):
    """2 gloo processes x 1 image == 1 process x 2 images (as 2 micro-batches), to float tolerance."""
    cfg = pretrain_cfg(data, max_iters=3, batch_size=2, micro_batch=1, lr=0.02, warmup_iters=0)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg, str(tmp_path / "ddp")), nprocs=2, join=True)
    train(cfg, tmp_path / "single", progress=False)
    a, b = weights(tmp_path / "ddp" / "last.pt"), weights(tmp_path / "single" / "last.pt")
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    print(f"DDP vs single process: largest weight difference {worst:.3g}")
    assert worst < 1e-5, worst
    start = build_model(cfg, 6).state_dict()  # the seeded initial weights both runs began with
    assert max((a[k].float() - start[k].float()).abs().max().item() for k in a) > 1e-3
    la = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    lb = (tmp_path / "single" / "log.jsonl").read_text().splitlines()
    for ra, rb in zip(map(json.loads, la), map(json.loads, lb)):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)


def test_pretraining_with_the_memory_on(data, tmp_path, monkeypatch):
    """``pretrain_warm_passes`` (not in the paper): each image batch is passed 0..N times without
    gradient before its loss pass reads the carried state, so the Conv-GRU's recurrent weights learn
    in pre-training, where the paper's zero state leaves them as initialised; the draws repeat."""
    from lipnb.model import LIP

    with pytest.raises(ValueError, match="static_memory=False"):  # the paper's pre-training: state at zero
        pretrain_cfg(data, pretrain_warm_passes=2)
    with pytest.raises(ValueError, match="stage 'pretrain'"):
        finetune_cfg(data, pretrain_warm_passes=1)

    passes, warm_up = [], LIP.warm_up
    monkeypatch.setattr(LIP, "warm_up", lambda self, frames, state=None: passes.append(len(frames)) or
                        warm_up(self, frames, state))
    recurrent = lambda path: {k: v for k, v in weights(path).items()  # noqa: E731
                              if k.startswith("memory.") and ("conv_h_zr" in k or "conv_h." in k)}
    runs = {}
    for name, kw in (("zero", {}), ("on", dict(static_memory=False, pretrain_warm_passes=2)),
                     ("on-again", dict(static_memory=False, pretrain_warm_passes=2))):
        passes.clear()
        train(pretrain_cfg(data, max_iters=4, batch_size=2, micro_batch=1, **kw), tmp_path / name, progress=False)
        runs[name] = (list(passes), recurrent(tmp_path / name / "last.pt"))
    assert set(runs["zero"][0]) == {0} and set(runs["on"][0]) <= {0, 1, 2} and max(runs["on"][0]) > 0
    assert runs["on"][0] == runs["on-again"][0]
    assert all(torch.equal(runs["on"][1][k], runs["on-again"][1][k]) for k in runs["on"][1])
    moved = {k: float((runs["on"][1][k] - runs["zero"][1][k]).abs().max()) for k in runs["zero"][1]}
    assert runs["zero"][1] and all(v > 0 for v in moved.values())
