"""One plain config per training stage, with named profiles (paper §4.1, §5.1).

    cfg = TrainConfig.profile("smoke", "pretrain")                  # procedural data, CPU, minutes
    cfg = TrainConfig.profile("davis-cpu", "finetune", init="out/pretrain/last.pt")
    cfg = TrainConfig.profile("paper", "pretrain", data="data/coco")  # paper §5.1, GPUs

Profiles:

* ``paper``: pre-training on COCO 2017 train, lr 0.02, x0.1 at 210K and 250K of 270K
  iterations, 512 RoIs (fg:bg 1:3), hidden state fixed at zero; fine-tuning on DAVIS 2017
  train, backbone frozen, 128 RoIs, lr 0.002, x0.1 at 8K and 10K of 12K, 8-frame clips,
  BPTT cut between frames 4 and 5. Both: SGD, momentum 0.9, weight decay 1e-4, shorter side
  from the 11 sizes 320..640, longer side <= 1333. The paper does not give batch sizes:
  pre-training uses Detectron's 16 images per step (the batch its lr 0.02 belongs to, e.g.
  8 GPUs x 2), fine-tuning one clip per step (what a 12 GB GPU holds, §5.1). Linear warm-up
  over 500 iterations (Detectron's default; the paper is silent) for pre-training only.
* ``davis-cpu``: COCO tiny + procedural images, then DAVIS 2016 train at 240p; the ImageNet
  EfficientNet-Lite0 trunk (stages 3-4 trained in pre-training, all of it frozen in fine-tuning)
  under a small FPN, memory and heads; 2 CPU cores, at most 90 minutes for the whole
  reproduction. The learning rates are higher than the paper's (0.01 for both stages): the
  heads start from scratch and have a few thousand steps, not 270K + 12K.
* ``davis-cpu-scratch``: the same with ResNet-18 at half width trained from scratch (the first
  ``davis-cpu`` reference, 600 + 200 steps).
* ``davis-gpu``: the same data and trunk with the paper's widths (256 channels), bf16, for one GPU.
* ``smoke``: procedural data (:mod:`lipnb.data.procedural`), tiny network, minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from lipnb.data.transforms import PAPER_MAX_SIZE, PAPER_SCALES

STAGES = ("pretrain", "finetune")


@dataclass
class TrainConfig:
    stage: str = "pretrain"  # "pretrain" (COCO, static memory) | "finetune" (DAVIS clips)
    profile_name: str = "smoke"  # the profile these values came from (see TrainConfig.profile)
    model_profile: Optional[str] = None  # LIPConfig profile; None: same name as ``profile_name``
    model_overrides: dict = field(default_factory=dict)  # extra LIPConfig fields

    # --- data ---
    data: str = "procedural"  # "procedural", "coco_tiny", "davis2016", or a COCO / DAVIS root
    procedural_seed: int = 0  # seed of the generated set when data == "procedural"
    coco_split: str = "train2017"
    davis_year: str = "2017"
    davis_split: str = "train"
    davis_resolution: str = "480p"
    scales: tuple = PAPER_SCALES  # shorter side drawn from these (§5.1)
    max_size: int = PAPER_MAX_SIZE  # longer side at most this
    flip: bool = True
    clip_length: int = 8  # frames per clip (§5.1)
    clip_stride: int = 1  # distance between first frames of a sequence's clips
    reverse_clips: bool = True  # "we reverse each sequence for more training data"
    box_expand: float = 0.1  # "width and height of the boxes are expanded by 10%"
    num_workers: int = 0

    # --- what is trained ---
    static_memory: Optional[bool] = None  # None: True for pretrain ("fix input hidden states to be zeros")
    freeze: tuple = ()  # LIP submodules kept fixed, e.g. ("backbone",) when fine-tuning
    init: Optional[str] = None  # checkpoint to start from (fine-tuning: the pre-trained model)
    rois_per_image: int = 512  # "We sample 512 ROIs"; 128 when fine-tuning
    roi_positive_fraction: float = 0.25  # "foreground-to-background ratio 1:3"
    bptt_cut: Optional[int] = 4  # detach the state after every 4 frames; None: full BPTT
    # Frames played before a clip's losses count (state carried, no loss, no gradient), so that
    # the heads learn on a filled memory, as they meet it on every frame but the first. Not in the
    # paper; the authors' code warms its sequences up the same way (SEQUENCE_WARMUP). Ignored with
    # a static memory, whose state is zero on every frame anyway.
    warmup_frames: int = 0
    checkpoint_activations: bool = False  # full BPTT with per-frame activation checkpointing

    # --- optimisation: SGD with a step schedule ---
    batch_size: int = 16  # images (pretrain) or clips (finetune) per step, all processes together
    micro_batch: int = 2  # images / clips per forward pass (gradient accumulation above it)
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_iters: int = 270_000
    milestones: tuple = (210_000, 250_000)
    gamma: float = 0.1
    warmup_iters: int = 500
    warmup_factor: float = 1.0 / 3
    grad_clip: Optional[float] = None  # max gradient norm (None: off, as in the paper)

    # --- run ---
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda"
    amp: str = "none"  # "none" | "bf16" | "fp16" (autocast; fp16 adds a GradScaler)
    log_every: int = 1
    ckpt_every: int = 1000

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be none, bf16 or fp16, got {self.amp!r}")
        self.scales, self.milestones, self.freeze = tuple(self.scales), tuple(self.milestones), tuple(self.freeze)

    @property
    def use_static_memory(self) -> bool:
        return self.stage == "pretrain" if self.static_memory is None else self.static_memory

    @property
    def clip_warmup(self) -> int:
        """Warm-up frames each fine-tuning clip starts with (0 for pre-training or a static memory)."""
        return 0 if self.stage == "pretrain" or self.use_static_memory else int(self.warmup_frames)

    @classmethod
    def profile(cls, name: str, stage: str = "pretrain", **overrides) -> "TrainConfig":
        """Profile ``name`` for ``stage`` with ``overrides`` (unknown keys raise ``TypeError``)."""
        if (name, stage) not in _PROFILES:
            raise ValueError(f"no profile {name!r} for stage {stage!r}; profiles: {sorted({p for p, _ in _PROFILES})}")
        return cls(**{"stage": stage, "profile_name": name, **_PROFILES[(name, stage)], **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_FINETUNE = dict(  # paper §5.1, fine-tuning on DAVIS
    freeze=("backbone",), rois_per_image=128, lr=0.002, max_iters=12_000, milestones=(8_000, 10_000),
    warmup_iters=0, batch_size=1, micro_batch=1, bptt_cut=4, warmup_frames=3,
)

_SMOKE_SCALES = dict(scales=(112, 128, 144), max_size=224)
_DAVIS_CPU_SCALES = dict(scales=(192, 208, 224, 240), max_size=432)
_DAVIS_GPU_SCALES = dict(scales=(192, 208, 224, 240, 256, 272), max_size=480)

_PROFILES = {
    ("paper", "pretrain"): dict(data="data/coco", micro_batch=2),
    ("paper", "finetune"): dict(data="data/davis2017", **_FINETUNE),
    ("davis-cpu", "pretrain"): dict(
        data="coco_tiny+procedural", **_DAVIS_CPU_SCALES, rois_per_image=128, batch_size=2, micro_batch=2,
        lr=0.01, max_iters=3000, milestones=(2250, 2700), warmup_iters=100, ckpt_every=250),
    ("davis-cpu", "finetune"): {
        **_FINETUNE, **_DAVIS_CPU_SCALES, "data": "davis2016", "davis_year": "2016",
        "davis_resolution": "240p", "rois_per_image": 64, "lr": 0.01, "max_iters": 400, "milestones": (300, 360),
        "warmup_iters": 20, "ckpt_every": 50},
    ("davis-cpu-scratch", "pretrain"): dict(
        data="coco_tiny+procedural", **_DAVIS_CPU_SCALES, rois_per_image=128, batch_size=2, micro_batch=2,
        lr=0.01, max_iters=600, milestones=(450, 540), warmup_iters=50, ckpt_every=100),
    ("davis-cpu-scratch", "finetune"): {
        **_FINETUNE, **_DAVIS_CPU_SCALES, "data": "davis2016", "davis_year": "2016",
        "davis_resolution": "240p", "rois_per_image": 64, "lr": 0.01, "max_iters": 200, "milestones": (150, 180),
        "warmup_iters": 20, "ckpt_every": 25, "warmup_frames": 0},  # as at commit 1a220eb
    ("davis-gpu", "pretrain"): dict(
        data="coco_tiny+procedural", **_DAVIS_GPU_SCALES, rois_per_image=256, batch_size=8, micro_batch=8,
        lr=0.02, max_iters=2_000, milestones=(1_500, 1_800), warmup_iters=100, ckpt_every=250, amp="bf16"),
    ("davis-gpu", "finetune"): {
        **_FINETUNE, **_DAVIS_GPU_SCALES, "data": "davis2016", "davis_year": "2016",
        "davis_resolution": "240p", "lr": 0.005, "max_iters": 1_500, "milestones": (1_000, 1_250),
        "warmup_iters": 50, "ckpt_every": 250, "amp": "bf16"},
    ("smoke", "pretrain"): dict(
        **_SMOKE_SCALES, rois_per_image=64, batch_size=2, micro_batch=2, lr=0.01, max_iters=200,
        milestones=(150, 180), warmup_iters=20, ckpt_every=50),
    ("smoke", "finetune"): {
        **_FINETUNE, **_SMOKE_SCALES, "rois_per_image": 32, "lr": 0.005, "max_iters": 60, "warmup_frames": 2,
        "milestones": (40, 50), "ckpt_every": 20},
}
