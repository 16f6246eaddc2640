"""Every number of the online half (paper §3.3, §4.2, §5.1) as one plain config.

The paper gives the inference thresholds (0.2, 10, 0.3, 0.4), the 1000 / 500 iteration caps,
the focal loss and the early stopping rule; it is silent on the learning rate, schedule, loss
weights and stopping thresholds, which follow the authors' public code (design.md §1)::

    cfg = OnlineConfig()                                   # the paper's values
    cfg = OnlineConfig(max_iters=20, refresh_iters=10)     # a quick CPU run
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

HEADS = ("rpn", "id", "box", "mask")  # the losses early stopping watches, one per prediction head
LOSS_WEIGHTS = {"rpn": 1.0, "id": 1.5, "box": 0.1, "mask": 1.0}  # authors' code
STOP_THRESHOLDS = {"rpn": 0.01, "id": 0.15, "box": 0.1, "mask": 0.15}  # authors' code


@dataclass
class OnlineConfig:
    # --- online fine-tuning on the first frame (§4.2, §5.1) ---
    max_iters: int = 1000  # "fine-tuned with the GT of the first image for maximally 1000 iterations"
    lr: float = 0.001  # authors' code
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 50  # authors' code: linear warm-up ...
    warmup_factor: float = 1.0 / 3.0  # ... from lr/3 (Detectron's default)
    milestones: tuple = (500,)  # authors' code: x0.1 at 500 of 1000
    gamma: float = 0.1
    loss_weights: dict = field(default_factory=lambda: dict(LOSS_WEIGHTS))
    # "If the loss for a prediction head is smaller than an empirically chosen threshold, the loss is
    # ignored. If all the losses are ignored, we stop the training." (values: authors' code)
    stop_thresholds: dict = field(default_factory=lambda: dict(STOP_THRESHOLDS))
    sticky_stop: bool = False  # True: a head, once under its threshold, never contributes again
    focal_gamma: float = 2.0  # "Focal loss [33] is used to balance id training"
    box_expand: float = 0.1  # first-frame boxes grown like the DAVIS training boxes (§5.1)
    seed: int = 0  # RoI / anchor sampling during fine-tuning
    # Passes of frame 0 through the Conv-GRU before the pass whose features are fine-tuned on
    # (not in the paper, which is silent on frame 0's state). 0: frame 0 is seen with the zero
    # state, as in training clips; 1: with the state frame 0 itself left, closer to what the
    # heads see on frames 1..N-1, whose state is carried.
    warm_first_frame: int = 0
    # The state carried from one frame to the next is multiplied by this (not in the paper): 1
    # carries it as it is, 0 gives the zero state on every frame; in between, a dial for how
    # much memory helps (issue 13's ablation).
    memory_alpha: float = 1.0

    # --- online inference (§3.3, §5.1) ---
    min_score: float = 0.2  # "we select 10 detected objects that have id score above 0.2"
    top_k: int = 10
    continuity_score: float = 0.4  # "if the previous id score is higher than 0.4"
    continuity_iou: float = 0.3  # "suppress the object instance that has IOU lower than 0.3"
    mask_threshold: float = 0.5

    # --- id-head refresh (§3.3, §5.1) ---
    refresh: bool = True
    refresh_iters: int = 500  # "fine-tuning for id head for maximally 500 iterations with early stopping"
    refresh_score: float = 0.5  # authors' code: a detection above this id score becomes a target
    refresh_lr: float = 0.001
    refresh_stop: float = 0.15  # the id head's early-stopping threshold, as in fine-tuning
    refresh_fg_iou: float = 0.5  # a RoI with IoU >= this with a target box is that id, else background

    def __post_init__(self):
        self.milestones = tuple(self.milestones)
        for name, default in (("loss_weights", LOSS_WEIGHTS), ("stop_thresholds", STOP_THRESHOLDS)):
            given = dict(getattr(self, name))  # a partial dict overrides only the heads it names
            unknown = set(given) - set(HEADS)
            if unknown:
                raise ValueError(f"{name}: unknown heads {sorted(unknown)}; heads are {HEADS}")
            setattr(self, name, {**default, **given})

    def replace(self, **overrides) -> "OnlineConfig":
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
