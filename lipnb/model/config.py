"""One plain config for the whole network, with named profiles.

    cfg = LIPConfig.profile("smoke")                       # tiny, CPU, seconds
    cfg = LIPConfig.profile("davis-cpu")                   # ImageNet Lite0 trunk, real DAVIS frames on CPU
    cfg = LIPConfig.profile("davis-gpu")                   # ResNet-50, real DAVIS frames on one GPU
    cfg = LIPConfig.profile("paper", roi_batch_size_per_image=128)   # paper §5.1 (DAVIS fine-tune)

Every number of the paper (§3, §5.1) is a field here; where the paper is silent the value
follows the authors' public code (design.md §1) and the comment says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from .efficientnet_lite import IMAGENET_MEAN as _LITE_MEAN, IMAGENET_STD as _LITE_STD


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
    carry: str = "N"  # state carried to the next frame: "N" (augmented; authors' code) or "H" (GRU output)

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

    PROFILES = ("smoke", "davis-cpu", "davis-cpu-scratch", "davis-gpu", "paper")

    @classmethod
    def profile(cls, name: str, **overrides) -> "LIPConfig":
        """The named profile with ``overrides`` applied (unknown keys raise ``TypeError``)."""
        if name not in _PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose from {sorted(_PROFILES)}")
        return dataclasses.replace(cls(**_PROFILES[name]), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The ImageNet-trained EfficientNet-Lite0 trunk with its own preprocessing (RGB to [-1, 1]).
_LITE0 = dict(backbone="efficientnet-lite0", backbone_checkpoint="imagenet", trainable_stages=2,
              image_mean=_LITE_MEAN, image_std=_LITE_STD)
# davis-cpu's narrow network after the trunk: 64-channel FPN, Conv-GRU and heads, 240-px frames.
_DAVIS_CPU_HEADS = dict(
    gn_groups=16, fpn_channels=64, hidden_channels=64,
    box_head_channels=64, representation_size=256, mask_head_channels=64, mask_roi_size=14,
    rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=256,
    rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=100,
    roi_batch_size_per_image=128, detections_per_img=20,
    test_min_size=240, test_max_size=432,
    train_min_sizes=(192, 208, 224, 240), train_max_size=432,
)

_PROFILES = {
    # The paper's exact settings (§5.1) plus the authors' code where the paper is silent.
    # The trunk starts from ImageNet as the authors' did: Detectron's R-101-GN, converted by
    # `python data/download.py r101-gn` (training from scratch: backbone_checkpoint=None).
    "paper": dict(backbone_checkpoint="imagenet"),
    # Real DAVIS frames on CPU: the ImageNet-trained EfficientNet-Lite0 trunk (frozen BN; the
    # stem and first stages frozen), 64-channel FPN, Conv-GRU and heads, ~240-px shorter side.
    "davis-cpu": dict(**_LITE0, **_DAVIS_CPU_HEADS),
    # The same heads on ResNet-18 at half width trained from scratch (the first davis-cpu reference).
    "davis-cpu-scratch": dict(depth=18, width=0.5, **_DAVIS_CPU_HEADS),
    # Real DAVIS frames on one GPU: the ImageNet-trained EfficientNet-Lite0 trunk with the paper's
    # channel widths (256-channel FPN, Conv-GRU and heads), DAVIS 2016's 240-px frames.
    "davis-gpu": dict(
        **_LITE0, rpn_post_nms_top_n_train=1000, rpn_post_nms_top_n_test=300,
        roi_batch_size_per_image=128, detections_per_img=20,
        test_min_size=240, test_max_size=432,
        train_min_sizes=(192, 208, 224, 240, 256, 272), train_max_size=480,
    ),
    # Tiny: ResNet-18 at 1/4 width, 64 channels, 128-px images; an 8-frame clip in seconds on 2 cores.
    "smoke": dict(
        depth=18, width=0.25, gn_groups=8, fpn_channels=64, hidden_channels=64,
        box_head_channels=64, representation_size=256,
        mask_head_channels=64, mask_roi_size=14, num_ids=8,
        anchor_sizes=(16, 32, 64, 128, 256),  # objects in 128-px frames are small
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
        rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128, roi_batch_size_per_image=64, detections_per_img=20,
        test_min_size=128, test_max_size=224,
        train_min_sizes=(112, 128, 144), train_max_size=224,
    ),
}
