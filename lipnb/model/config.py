"""One plain config for the whole network; its defaults are the paper's.

    cfg = LIPConfig()                                      # paper §3, §5.1
    cfg = LIPConfig(roi_batch_size_per_image=128)          # paper §5.1 (DAVIS fine-tune)

The named profiles (smoke, davis-cpu, ...) are in :mod:`lipnb.profiles`. Every number of the paper (§3, §5.1) is a field here; where the paper is silent the value
follows the authors' public code (design.md §1) and the comment says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class LIPConfig:
    # --- backbone: ResNet + FPN with GroupNorm (paper §3.1, Fig. 3) ---
    backbone: str = "resnet"  # the trunk: "resnet" (the paper's) | "efficientnet-lite0" (ImageNet wheel, frozen BN)
    trainable_stages: int = 4  # EfficientNet-Lite0: stages trained (of 4, from the top); stem always frozen
    depth: int = 101  # "ResNet101-FPN [19, 32] with group normalization [53]"
    width: float = 1.0  # channel multiplier of the ResNet (1.0 = standard widths)
    gn_groups: int = 32  # GroupNorm groups (fewer when a layer has too few channels)
    fpn_channels: int = 256
    backbone_checkpoint: Optional[str] = None  # None: random; "imagenet"; or a local ResNet file (training loads it)

    # --- visual memory: one Conv-GRU per FPN level (§3.2, eq. 1a-1d) ---
    use_memory: bool = True  # False: no Conv-GRU at all (plain Mask R-CNN, used for parity/bench)
    hidden_channels: int = 256  # "the channel number of each hidden state is 256"
    gru_kernel: int = 3  # "Kernels of all convolutions in Conv-GRU are of size 3x3"
    static_memory: bool = False  # zero hidden state every frame (COCO pre-training, Table 3 ablation)
    path_augmentation: bool = True  # bottom-up path augmentation on the Conv-GRU outputs (Fig. 3)
    resampling: str = "aligned"  # between pyramid levels: "aligned" (feature i on pixel s*i) or "authors" (resampling.py)
    carry: str = "N"  # state carried to the next frame: "N" (augmented; authors' code) or "H" (GRU output)
    # NOT in the paper (issue 21): a parameter-free normalisation of what the heads read (N2..N6), never
    # of the state carried to the next frame. Measured here: with the state carried, ||N|| at the heads'
    # input is 1.7-1.75x the zero-state ||N|| of the same frame (up to 2.9x inside objects at P2), already
    # in the pre-trained model, while pre-training (zero state) fits the RPN (no normalisation) and the
    # Fig. 4 shortcut (linear on raw RoI features) to the zero-state scale. "none" (the paper; no extra
    # op) | "rms": each level divided by its per-image RMS over channels and positions (+eps) |
    # "rms_pos": each position's channel vector divided by its RMS over channels (+eps); both then x 0.25
    # (lip.HEAD_INPUT_NORM_SCALE, about the zero-state RMS of N; unit RMS made pre-training diverge).
    # "rms_pos" also removes most of the in-object excess (P2 object ratio 2.4 -> 1.17; "rms": 1.46).
    # Changes the network: pre-train with it too.
    head_input_norm: str = "none"
    # NOT in the paper (issue 21): the initial shift of each Conv-GRU's GN_z (the update gate's bias).
    # 0: the paper (GN's default). b > 0 starts the gate open (z near sigmoid(b)), so that N = (1 - z) h + z h~
    # leans on the current frame: the zero state's N = z h~ and a carried one are then of nearly one
    # scale, and moving objects are less smeared over past frames. An initialisation only: pre-train with it.
    update_gate_bias: float = 0.0

    # --- RPN (§5.1): 5 aspect ratios x 5 sizes, one size per level ---
    anchor_sizes: tuple = (32, 64, 128, 256, 512)
    aspect_ratios: tuple = (0.2, 0.5, 1.0, 2.0, 5.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5

    # --- RoI sampling: "512 ROIs with foreground-to-background ratio 1:3"; 128 when fine-tuning ---
    roi_batch_size_per_image: int = 512
    roi_positive_fraction: float = 0.25
    # The mask loss reads at most this many of an image's positive RoIs, a random subset (None: all of
    # them, as Mask R-CNN). Not in the paper: a CPU budget's knob, since on a frame with one object
    # the positives are near-copies of each other and the 56x56 mask head is most of a step's cost.
    mask_rois_per_image: Optional[int] = None
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    bbox_reg_weights: tuple = (10.0, 10.0, 5.0, 5.0)

    # --- heads (§5.1, Fig. 4; head shapes from the authors' code) ---
    num_ids: int = 80  # id classes (without background): 80 COCO classes for pre-training
    box_roi_size: int = 7  # "7x7 for bbox head and id head"
    mask_roi_size: int = 28  # "The ROI aligned feature resolution is 28x28 for mask head"
    box_head_convs: int = 4  # 4conv1fc with GN
    box_head_channels: int = 256
    representation_size: int = 1024
    mask_head_convs: int = 4  # 4 convs with GN + deconv (masks 2x the RoI size)
    mask_head_channels: int = 256
    shortcut: bool = True  # Fig. 4: RoI-aligned feature added to the head logits by a learned projection
    class_specific: bool = False  # offline training is class-agnostic (§4.1); online becomes specific (§4.2)
    id_loss: str = "ce"  # "ce" offline; "focal" for online fine-tuning (§4.2)
    focal_gamma: float = 2.0

    # --- inference ---
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100
    test_min_size: int = 480  # authors' code: shorter side 480 at test time
    test_max_size: int = 1200  # ... longer side <= 1200
    size_divisible: int = 32
    image_mean: tuple = (0.485, 0.456, 0.406)
    image_std: tuple = (0.229, 0.224, 0.225)

    # --- training schedule facts the data/training code reads (the model itself ignores them) ---
    train_min_sizes: tuple = (320, 352, 384, 416, 448, 480, 512, 544, 576, 608, 640)
    train_max_size: int = 1333
    clip_length: int = 8
    bptt_cut: Optional[int] = 4  # "stopping gradient back propagation between 4th and 5th frames"

    extra: dict = field(default_factory=dict)  # free-form notes carried into run manifests

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LIPConfig":
        """``to_dict()`` again, possibly through JSON or ``torch.save`` (lists back to tuples);
        unknown keys are ignored."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        for k, v in kwargs.items():
            if isinstance(v, list) and isinstance(fields[k].default, tuple):
                kwargs[k] = tuple(v)
        return cls(**kwargs)
