"""LIP: the convolutional gated recurrent Mask-RCNN (paper §3, Fig. 3).

    "It is comprised of mainly three parts. They are the feature extraction backbone, the visual
    memory module and the prediction heads. ... On top of Conv-GRU, region proposal network
    (RPN), bounding box regression head, id classification head and mask segmentation head are
    constructed to solve the VOS task."

Shaped like torchvision's GeneralizedRCNN (transform + backbone + rpn + roi_heads) with the
visual memory and the path augmentation between backbone and RPN. One call is one frame of B
clips; the recurrent state goes out and comes back in through the caller::

    model = LIP(LIPConfig())                          # the paper's network (lipnb.profiles: smaller ones)
    state = None
    for images, targets in clip:                       # frame by frame
        out, state = model(images, targets, state)     # losses (train) or detections (eval)

Training: the model does not resize (the data pipeline scales a whole clip consistently); it
normalises and pads to a multiple of 32. Eval: images are resized to ``cfg.test_min_size`` /
``cfg.test_max_size`` and detections mapped back to the input size.

Hooks for online fine-tuning (§4.2, §3.3), where backbone and memory are frozen::

    ff = model.features(images, state)       # FrameFeatures: backbone + memory + path aug, once
    out = model.heads(ff, targets)           # RPN + heads on the cached features, any number of times
    rep, roi = model.roi_heads.box_features(ff.features, model.to_feature_boxes(boxes, ff), ff.image_sizes)
    logits = model.roi_heads.id_logits(rep, roi)   # the id head alone on cached RoI features
    state = ff.state                          # the state to carry to the next frame
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from .backbone import trunk_fpn
from .config import LIPConfig
from .memory import VisualMemory, detach_state
from .path_aug import PathAugmentation
from .resampling import RESAMPLINGS
from .roi_heads import LIPRoIHeads
from .rpn import build_rpn

LEVELS = ["0", "1", "2", "3", "pool"]  # P2..P6 (torchvision's names)
HEAD_INPUT_NORMS = ("none", "rms", "rms_pos")
HEAD_INPUT_NORM_EPS = 1e-6
# the RMS the normalised levels are given: about the zero-state RMS of N in this project's smoke pre-trained
# models (0.2-0.37 over P2..P6); unit RMS (3-5x that) made the smoke pre-training diverge (id and box losses)
HEAD_INPUT_NORM_SCALE = 0.25


def head_input_norm(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Parameter-free rescaling of one level [B, C, H, W] of what the heads read (not in the paper:
    ``LIPConfig.head_input_norm``) to RMS ``HEAD_INPUT_NORM_SCALE``. "rms": over channels and
    positions of each image; "rms_pos": over the channels of each position."""
    dims = (1, 2, 3) if mode == "rms" else (1,)
    return x * (HEAD_INPUT_NORM_SCALE * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + HEAD_INPUT_NORM_EPS))


@dataclass
class FrameFeatures:
    """One frame's features, computed once by :meth:`LIP.features` and reusable by :meth:`LIP.heads`.

    images: ImageList, normalised, padded ``[B, 3, H', W']`` with ``image_sizes`` (h, w) before padding;
    features: OrderedDict "0".."3", "pool" -> ``[B, C, H'/2^(l+2), W'/2^(l+2)]`` (N2..N6, or P/H
    when memory / path augmentation are switched off);
    targets: the targets in the coordinates of ``images`` (resized in eval), or None;
    state: the state to pass with the next frame (list of 5 ``[B, C_h, H_l, W_l]``);
    gates: per level ``{"z", "r"}`` (empty without memory); original_sizes: input (h, w).
    """

    images: ImageList
    features: OrderedDict
    targets: Optional[list]
    state: Optional[list]
    gates: list
    original_sizes: list

    @property
    def image_sizes(self) -> list:
        return self.images.image_sizes


class LIP(nn.Module):
    """The convolutional gated recurrent Mask-RCNN.

    forward(images: list of B Tensor[3, H, W] in [0, 1], targets: list of B dicts or None,
    state: list of 5 Tensor[B, C_h, H_l, W_l] or None) -> (out, state)

    targets (training): ``boxes`` FloatTensor[K, 4] x1y1x2y2 pixels, ``labels`` Int64Tensor[K]
    ids in 1..num_ids, ``masks`` UInt8Tensor[K, H, W].
    out, training: dict of scalar losses ``loss_objectness, loss_rpn_box_reg, loss_id,
    loss_box_reg, loss_mask``. out, eval: list of B dicts ``boxes [D, 4], labels [D] (id),
    scores [D] (id score), id_scores [D, num_ids + 1] (softmax), masks [D, 1, H, W]``
    (probabilities, at the input resolution).
    After a call, ``model.gates`` holds the last frame's gate maps per level: ``{"z", "r"}``
    each ``[B, C_h, H_l, W_l]`` (detached).
    """

    def __init__(self, cfg: LIPConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.carry not in ("N", "H"):
            raise ValueError(f"cfg.carry must be 'N' or 'H', got {cfg.carry!r}")
        if cfg.resampling not in RESAMPLINGS:
            raise ValueError(f"cfg.resampling must be one of {RESAMPLINGS}, got {cfg.resampling!r}")
        if cfg.head_input_norm not in HEAD_INPUT_NORMS:
            raise ValueError(f"cfg.head_input_norm must be one of {HEAD_INPUT_NORMS}, got {cfg.head_input_norm!r}")
        self.transform = GeneralizedRCNNTransform(
            cfg.test_min_size, cfg.test_max_size, list(cfg.image_mean), list(cfg.image_std),
            size_divisible=cfg.size_divisible, _skip_resize=True,  # training: no resize
        )
        self.backbone = trunk_fpn(cfg)
        channels = cfg.fpn_channels
        self.memory = None
        if cfg.use_memory:
            self.memory = VisualMemory(channels, cfg.hidden_channels, len(LEVELS), cfg.gru_kernel,
                                       cfg.gn_groups, static=cfg.static_memory,
                                       update_gate_bias=cfg.update_gate_bias)
            channels = cfg.hidden_channels
        self.path_aug = PathAugmentation(cfg.resampling) if cfg.path_augmentation else None
        self.rpn = build_rpn(cfg, channels)
        self.roi_heads = LIPRoIHeads(cfg, channels)
        self.gates: list = []

    # ---------------------------------------------------------------- frame -> features
    def features(self, images: list, state: Optional[list] = None, targets: Optional[list] = None) -> FrameFeatures:
        """Transform, backbone (P2..P6), visual memory (H), path augmentation (N).

        The state returned in ``FrameFeatures.state`` is N or H as ``cfg.carry`` says.
        """
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        image_list, targets = self.transform(images, targets)
        pyramid = list(self.backbone(image_list.tensors).values())  # P2..P6
        gates, new_state = [], None
        if self.memory is not None:
            hidden, gates = self.memory(pyramid, state)  # H2..H6
            augmented = self.path_aug(hidden) if self.path_aug is not None else hidden  # N2..N6
            new_state = augmented if self.cfg.carry == "N" else hidden
            pyramid = augmented
        elif self.path_aug is not None:
            pyramid = self.path_aug(pyramid)
        self.gates = [{k: v.detach() for k, v in g.items()} for g in gates]
        if self.cfg.head_input_norm != "none":  # not in the paper (config.py): the heads' input only, never the state
            pyramid = [head_input_norm(x, self.cfg.head_input_norm) for x in pyramid]
        feats = OrderedDict(zip(LEVELS, pyramid))
        return FrameFeatures(image_list, feats, targets, new_state, gates, original_sizes)

    # ---------------------------------------------------------------- features -> outputs
    def heads(self, ff: FrameFeatures, targets: Optional[list] = None):
        """RPN + RoI heads on (possibly cached) features. ``targets`` default to ``ff.targets``.

        Returns the losses dict (training) or the detections at the input resolution (eval).
        """
        targets = ff.targets if targets is None else targets
        proposals, rpn_losses = self.rpn(ff.images, ff.features, targets if self.training else None)
        detections, roi_losses = self.roi_heads(ff.features, proposals, ff.image_sizes,
                                                targets if self.training else None)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return self.transform.postprocess(detections, ff.image_sizes, ff.original_sizes)

    def forward(self, images: list, targets: Optional[list] = None, state: Optional[list] = None):
        if self.training and targets is None:
            raise ValueError("training needs targets")
        ff = self.features(images, state, targets if self.training else None)
        return self.heads(ff), ff.state

    # ---------------------------------------------------------------- a clip
    def forward_clip(self, frames: list, targets: list, bptt_cut: Optional[int] = 4,
                     state: Optional[list] = None, return_state: bool = False, warmup: int = 0):
        """Train on a clip: ``frames[t][b]`` Tensor[3, H, W], ``targets[t][b]`` dicts (T frames of B clips).

        The first ``warmup`` frames only carry the state forward (no loss, no gradient), so that
        the heads learn on features whose memory is already filled, as on every frame after the
        first at test time. The state is then detached after every ``bptt_cut`` frames ("stopping
        gradient back propagation between 4th and 5th frames" for 8 frames and ``bptt_cut=4``);
        ``None`` = full BPTT. Returns the losses averaged over the T - ``warmup`` frames (and the
        last state with ``return_state``).
        """
        state = self.warm_up(frames[:warmup], state)
        frames, targets = frames[warmup:], targets[warmup:]
        totals: dict = {}
        for t, (images, tgts) in enumerate(zip(frames, targets), start=1):
            losses, state = self(images, tgts, state)
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v
            if bptt_cut and t % bptt_cut == 0:
                state = detach_state(state)
        losses = {k: v / len(frames) for k, v in totals.items()}
        return (losses, state) if return_state else losses

    @torch.no_grad()
    def warm_up(self, frames: list, state: Optional[list] = None) -> Optional[list]:
        """Carry the state through ``frames`` (a list over time of lists of B images) without
        loss or gradient; returns the state after the last one (``state`` when there is none)."""
        for images in frames:
            state = self.features(images, state).state
        return state

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def to_feature_boxes(boxes: list, ff: FrameFeatures) -> list:
        """Boxes at the input resolution (list of B [K, 4]) -> the coordinates of ``ff.images``."""
        return [resize_boxes(b, list(o), list(s)) for b, o, s in zip(boxes, ff.original_sizes, ff.image_sizes)]

    def hold_hidden_at_zero(self, on: bool = True) -> "LIP":
        """The Conv-GRU's input hidden state held at zero on every frame (pre-training, Table 3's
        static model), or carried again with ``on=False``."""
        self.cfg.static_memory = self.memory.static = on
        return self

    def freeze(self, *parts: str) -> "LIP":
        """``requires_grad_(False)`` on named submodules, e.g. ``freeze("backbone", "memory")``."""
        for p in parts:
            getattr(self, p).requires_grad_(False)
        return self
