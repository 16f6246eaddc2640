"""Where each stage of LIP puts a feature, in image pixels (issue 22: one spatial convention).

The convention the trunk sets: its strided convolutions and poolings pad symmetrically
(``padding = (kernel - 1) // 2``), so feature ``i`` of a stride-``s`` map is centred on image pixel
``s * i``. torchvision's anchors (centres at ``s * i``) and RoIAlign with ``aligned=False`` (box
coordinate ``x`` read at feature coordinate ``x / s``) use the same one. Every other stage that
moves features between grids is measured here against it:

* ``fpn``: the FPN's top-down upsampling (``cfg.resampling``), coarse level into fine level,
  over the fine positions the coarse grid spans (past its last feature the edge is repeated);
* ``p6``: P6 from P5 (torchvision's max pool, kernel 1, stride 2);
* ``path_aug``: the path augmentation's down-sampling (``cfg.resampling``), fine into coarse;
* ``anchors``: anchor centres against ``s * i``;
* ``roi_align``: the feature coordinate a box centred on ``x`` reads, times ``s``, against ``x``.

Each measure is linear in the features, so where an output reads its input is the centroid of
the Jacobian (for a resampling: the weights of the inputs it mixes). The offset of a stage is the
largest distance, over positions, between where an output sits and where what it reads sits::

    rows = measure(LIP(model_config("smoke")))   # [{"stage", "level", "stride", "max_offset_px"}, ...]
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign

from lipnb.lab.memory_stats import LEVEL_NAMES
from lipnb.model.backbone import FPN
from lipnb.model.path_aug import PathAugmentation
from lipnb.model.rpn import anchor_generator

STRIDES = (4, 8, 16, 32, 64)  # P2..P6


def unpadded_strided_layers(trunk: nn.Module) -> list[str]:
    """Strided convolutions and poolings of ``trunk`` whose padding is not centred
    (``(kernel - 1) // 2`` on each side, odd kernel): each would move its outputs off ``s * i``."""
    off = []
    for name, m in trunk.named_modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            stride = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 2
            if max(stride) == 1:
                continue
            kernel = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
            padding = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 2
            dilation = getattr(m, "dilation", 1)
            dilation = dilation if isinstance(dilation, tuple) else (dilation,) * 2
            if isinstance(padding, str) or any(k % 2 == 0 or p != d * (k - 1) // 2
                                               for k, p, d in zip(kernel, padding, dilation)):
                off.append(f"{name}: kernel {kernel}, stride {stride}, padding {padding}")
        elif isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d)):
            left, right, top, bottom = m.padding
            if left != right or top != bottom:
                off.append(f"{name}: asymmetric padding {m.padding}")
    return off


def _centroids(jacobian: torch.Tensor) -> torch.Tensor:
    """``[n_out, n_in]`` weights -> the weighted mean input index of each output."""
    w = jacobian.abs()
    return (w * torch.arange(w.shape[1], dtype=w.dtype)).sum(1) / w.sum(1)


def _rows_jacobian(fn, n_in: int) -> torch.Tensor:
    """The Jacobian of a 1-D linear map (applied along the width of a ``[1, 1, 1, n]`` map)."""
    return torch.autograd.functional.jacobian(lambda x: fn(x.view(1, 1, 1, n_in)).flatten(), torch.zeros(n_in))


def fpn_offset(fine_stride: int, resampling: str, n_coarse: int = 12) -> float:
    """Largest distance (image pixels) between a fine FPN feature and the coarse content it
    receives from the top-down path (the model's FPN with identity lateral and output convs),
    over the fine features that lie within the coarse grid (``s * j <= 2s * (n_coarse - 1)``)."""
    fpn = FPN([1, 1], 1, resampling=resampling)
    with torch.no_grad():
        for block in (*fpn.inner_blocks, *fpn.layer_blocks):
            conv = block[0] if isinstance(block, nn.Sequential) else block
            conv.weight.zero_()
            conv.weight[0, 0, conv.weight.shape[2] // 2, conv.weight.shape[3] // 2] = 1.0
            conv.bias.zero_()
    n_fine = 2 * n_coarse

    def fine_from_coarse(coarse):
        fine = torch.zeros(1, 1, 1, n_fine)
        return fpn({"fine": fine, "coarse": coarse})["fine"]

    inside = 2 * (n_coarse - 1) + 1  # fine positions up to the last coarse feature
    centre = _centroids(_rows_jacobian(fine_from_coarse, n_coarse))[:inside]  # coarse index read by each
    fine_at = fine_stride * torch.arange(inside, dtype=centre.dtype)
    return float((2 * fine_stride * centre - fine_at).abs().max())


def path_aug_offset(fine_stride: int, resampling: str, n_coarse: int = 12) -> float:
    """Largest distance (image pixels) between a coarse N feature and the fine N content its
    down-sampling reads (``N(i+1) = H(i+1)/2 + resize(N(i), 1/2)/2``)."""
    aug = PathAugmentation(resampling)
    n_fine = 2 * n_coarse

    def coarse_from_fine(fine):
        return aug([fine, torch.zeros(1, 1, 1, n_coarse)])[1]

    centre = _centroids(_rows_jacobian(coarse_from_fine, n_fine))  # fine index read by each coarse index
    coarse_at = 2 * fine_stride * torch.arange(n_coarse, dtype=centre.dtype)
    return float((fine_stride * centre - coarse_at).abs().max())


def anchor_offsets(cfg, size: int = 256) -> list[float]:
    """Per level: largest distance (image pixels) between anchor centres and ``s * i``."""
    gen = anchor_generator(cfg)
    feats = [torch.zeros(1, 1, size // s, size // s) for s in STRIDES]
    anchors = gen(ImageList(torch.zeros(1, 3, size, size), [(size, size)]), feats)[0]
    out, start = [], 0
    for s, f in zip(STRIDES, feats):
        h, w = f.shape[-2:]
        a = anchors[start: start + h * w * len(cfg.aspect_ratios)].view(h, w, -1, 4)
        start += a.numel() // 4
        cx = (a[..., 0] + a[..., 2]) / 2
        expected = s * torch.arange(w, dtype=cx.dtype).view(1, w, 1)
        out.append(float((cx - expected).abs().max()))
    return out


def p6_offset(n: int = 12) -> float:
    """Largest distance (image pixels) between a P6 feature and the P5 feature it keeps
    (torchvision's ``LastLevelMaxPool``: kernel 1, stride 2)."""
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    pool = LastLevelMaxPool()

    def p6(p5):
        return pool([p5], [p5], ["P5"])[0][-1]

    centre = _centroids(_rows_jacobian(p6, 2 * n))  # P5 index read by each P6 index
    return float((32 * centre - 64 * torch.arange(n, dtype=centre.dtype)).abs().max())


def roi_align_offsets(pool: MultiScaleRoIAlign, size: int = 1024) -> list[float]:
    """Per RoI level (P2..P5): largest distance (image pixels) between the centre of a box and
    ``s`` times the mean feature coordinate ``pool`` (a model's RoIAlign) reads inside it."""
    out = []
    for level, s in enumerate(STRIDES[:4]):
        feats = {}
        for name, t in zip(pool.featmap_names, STRIDES[:4]):  # a ramp: each feature holds its own x index
            n = size // t
            feats[name] = torch.arange(n, dtype=torch.float32).view(1, 1, 1, n).expand(1, 1, n, n).contiguous()
        box = 56.0 * 2 ** level  # sized so the level mapper picks this level (canonical 224 at level 4)
        worst = 0.0
        for x in torch.linspace(box, size - box, 7):
            b = torch.tensor([[x - box / 2, 40.0, x + box / 2, 40.0 + box]])
            read = pool(feats, [b], [(size, size)]).mean()  # the bins are symmetric about the box centre
            worst = max(worst, abs(float(read) * s - float(x)))
        out.append(worst)
    return out


def measure(model) -> list[dict]:
    """Every measured stage and level of ``model`` (a LIP): one row each."""
    rows = []
    for k, s in enumerate(STRIDES[:3]):  # the top-down path: P5 -> P4 -> P3 -> P2
        rows.append({"stage": "fpn", "level": f"{LEVEL_NAMES[k + 1]} -> {LEVEL_NAMES[k]}", "stride": s,
                     "max_offset_px": fpn_offset(s, model.cfg.resampling)})
    rows.append({"stage": "p6", "level": "P5 -> P6", "stride": 64, "max_offset_px": p6_offset()})
    for k, s in enumerate(STRIDES[:4]):  # the bottom-up path: N2 -> N3 -> ... -> N6
        rows.append({"stage": "path_aug", "level": f"{LEVEL_NAMES[k]} -> {LEVEL_NAMES[k + 1]}", "stride": 2 * s,
                     "max_offset_px": path_aug_offset(s, model.cfg.resampling)})
    for level, s, off in zip(LEVEL_NAMES, STRIDES, anchor_offsets(model.cfg)):
        rows.append({"stage": "anchors", "level": level, "stride": s, "max_offset_px": off})
    for name, pool in (("roi_align box", model.roi_heads.box_roi_pool), ("roi_align mask", model.roi_heads.mask_roi_pool)):
        for level, s, off in zip(LEVEL_NAMES, STRIDES, roi_align_offsets(pool)):
            rows.append({"stage": name, "level": level, "stride": s, "max_offset_px": off})
    return rows
