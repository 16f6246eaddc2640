"""One plain config per training stage; its defaults are the paper's pre-training (§4.1, §5.1).

    cfg = TrainConfig()                                      # paper §5.1 pre-training on COCO
    cfg = lipnb.profiles.train_config("paper", "finetune")   # paper §5.1 fine-tuning on DAVIS

``model`` holds the network's :class:`~lipnb.model.LIPConfig` fields (the paper's when empty);
the training stage sets the fields it decides (ids, RoIs, sizes, clip length, static memory).

The named profiles (smoke, davis-cpu, paper, ...) are in :mod:`lipnb.profiles`.
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
    profile_name: str = "paper"  # a label: the profile these values came from (lipnb.profiles)
    model: dict = field(default_factory=dict)  # LIPConfig fields of the network (the paper's where absent)

    # --- data ---
    data: str = "procedural"  # "procedural", "coco_tiny", "davis2016", or a COCO / DAVIS root
    # Fine-tuning only: more clip sources read beside ``data`` (its ids after data's), each a keyword
    # or folder as ``data``, or ``"memory"``: ``memory_videos`` procedural memory videos (occlusion,
    # crossing twins, leaving and returning; lipnb.data.procedural_videos), train split, drawn with
    # ``memory_seed``. Not in the paper (DAVIS 2017 train only); () reads ``data`` alone.
    clip_sources: tuple = ()
    # share of each source (``data`` first, then ``clip_sources``) in an epoch of clips; () : every
    # clip of every source once per epoch (the sources' natural sizes)
    clip_source_weights: tuple = ()
    memory_videos: int = 32
    memory_seed: int = 1000
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
    # Long-horizon states (not in the paper): when set, each clip's warm-up is drawn uniformly from
    # ``warmup_frames..warmup_frames_max`` per clip (reproducible from the seed and the clip's stream
    # position); the warm-up frames are those that precede the clip in its playing order (fewer
    # where the sequence has fewer before the clip). None: a fixed ``warmup_frames`` (today's).
    warmup_frames_max: Optional[int] = None
    checkpoint_activations: bool = False  # full BPTT with per-frame activation checkpointing
    # The Conv-GRU's recurrent weights (W_hz, W_hr, W_h) when fine-tuning starts from a pre-trained
    # model (not in the paper). Pre-training feeds a zero state, so they get no gradient and keep
    # their random initialisation; "zero" sets them to zero, so that the carried state first enters
    # only through eq. 1d's (1 - z) h and the recurrent weights are learned from nothing. None: as loaded.
    memory_recurrent_init: Optional[str] = None
    # The shift of every Conv-GRU's GN_z (the update gate's bias, eq. 1a) set to this when fine-tuning
    # starts from a pre-trained model (not in the paper; LIPConfig.update_gate_bias is the same at
    # initialisation). 2 opens the gate, z about 0.88 where GN_z's normalised value is 0, so that N
    # leans on the current frame and the carried state enters at about (1 - z) = 0.12. None: as loaded.
    memory_gate_shift: Optional[float] = None
    # Pre-training with the memory on (not in the paper, which holds the state at zero in pre-training,
    # §4.1.1; needs ``static_memory=False``): each micro-batch of images is first passed d times through
    # the network without loss or gradient, d drawn uniformly from 0..pretrain_warm_passes (reproducible
    # from the seed and the batch's stream position), and the loss pass reads the state they carried: a
    # still image as a clip that does not move. The heads then learn on carried states as well as on the
    # zero state, and the Conv-GRU's recurrent weights get gradients from the start. 0: off.
    pretrain_warm_passes: int = 0

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
    # Parameter groups as in Detectron, which the authors build on (None / 1.0: one group, the
    # paper's plain SGD): weight decay of GroupNorm weights and biases (Detectron's WEIGHT_DECAY_GN
    # = 0), of every other bias (BIAS_WEIGHT_DECAY off: 0), the lr factor of biases (BIAS_LR_FACTOR
    # = 2) and an lr factor for the Conv-GRU (``model.memory``; not in Detectron nor the paper).
    weight_decay_norm: Optional[float] = None
    weight_decay_bias: Optional[float] = None
    bias_lr_factor: float = 1.0
    memory_lr_factor: float = 1.0

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
        if self.pretrain_warm_passes and (self.stage != "pretrain" or self.use_static_memory):
            raise ValueError(f"pretrain_warm_passes={self.pretrain_warm_passes} needs stage 'pretrain' with "
                             f"static_memory=False (got stage {self.stage!r}, static_memory {self.static_memory})")
        self.clip_sources, self.clip_source_weights = tuple(self.clip_sources), tuple(self.clip_source_weights)
        if self.clip_source_weights and len(self.clip_source_weights) != 1 + len(self.clip_sources):
            raise ValueError(f"clip_source_weights needs one share per source (data + clip_sources: "
                             f"{1 + len(self.clip_sources)}), got {self.clip_source_weights}")
        if self.memory_recurrent_init not in (None, "zero"):
            raise ValueError(f"memory_recurrent_init must be None or 'zero', got {self.memory_recurrent_init!r}")
        if self.warmup_frames_max is not None and self.warmup_frames_max < self.warmup_frames:
            raise ValueError(f"warmup_frames_max {self.warmup_frames_max} < warmup_frames {self.warmup_frames}")

    @property
    def use_static_memory(self) -> bool:
        return self.stage == "pretrain" if self.static_memory is None else self.static_memory

    @property
    def clip_warmup(self) -> int:
        """Warm-up frames each fine-tuning clip starts with (0 for pre-training or a static memory)."""
        return 0 if self.stage == "pretrain" or self.use_static_memory else int(self.warmup_frames)

    @property
    def clip_warmup_range(self) -> Optional[tuple]:
        """``(low, high)`` of a random warm-up per clip, or None (a fixed :attr:`clip_warmup`)."""
        if self.warmup_frames_max is None or self.stage == "pretrain" or self.use_static_memory:
            return None
        return int(self.warmup_frames), int(self.warmup_frames_max)

    @property
    def grouped_parameters(self) -> bool:
        """Whether the optimiser splits its parameters into groups (any Detectron-style setting given)."""
        return (self.weight_decay_norm is not None or self.weight_decay_bias is not None
                or self.bias_lr_factor != 1.0 or self.memory_lr_factor != 1.0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
