"""Moving features between pyramid levels under one spatial convention (issue 22).

The trunk's strided layers pad symmetrically, so feature ``i`` of a stride-``s`` map sits on
image pixel ``s * i``; torchvision's anchors and RoIAlign (``aligned=False``) assume the same.
The two resamplings between levels keep it:

* :func:`upsample_aligned` (the FPN's top-down path, stride ``2s`` to ``s``): fine feature ``j``
  reads the coarse map at ``j / 2`` by linear interpolation, so even positions copy a coarse
  feature and odd ones average its two neighbours. Nearest-neighbour upsampling (the FPN
  paper's, torchvision's) copies coarse ``i`` to ``2i`` and ``2i + 1``, one fine stride off at
  odd positions.
* :func:`downsample_aligned` (the path augmentation, stride ``s`` to ``2s``): coarse feature
  ``i`` reads fine ``2i``. A bilinear resize by 1/2 (``align_corners=False``, the authors')
  averages fine ``2i`` and ``2i + 1``, half a fine stride off.

``cfg.resampling = "authors"`` keeps the authors' resampling instead (nearest up, as in the FPN
paper and Detectron; bilinear 1/2 down), for models trained with it. :mod:`lipnb.lab.alignment` measures both against the convention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESAMPLINGS = ("aligned", "authors")


def upsample_aligned(x: torch.Tensor, size) -> torch.Tensor:
    """``x [B, C, h, w]`` at stride ``2s`` -> ``[B, C, *size]`` at stride ``s`` (``size <= 2h, 2w``).

    Output ``j`` reads input ``j / 2`` (linear); past the last input (``j / 2 > h - 1``, only
    the last row or column when ``size = 2h``) the edge is repeated.
    """
    h, w = x.shape[-2:]
    up = F.interpolate(x, size=(2 * h - 1, 2 * w - 1), mode="bilinear", align_corners=True)
    pad_h, pad_w = size[0] - up.shape[-2], size[1] - up.shape[-1]
    if pad_h > 0 or pad_w > 0:
        up = F.pad(up, (0, max(pad_w, 0), 0, max(pad_h, 0)), mode="replicate")
    return up[..., : size[0], : size[1]]


def downsample_aligned(x: torch.Tensor, size) -> torch.Tensor:
    """``x [B, C, H, W]`` at stride ``s`` -> ``[B, C, *size]`` at stride ``2s``: output ``i`` is input ``2i``."""
    out = x[..., ::2, ::2]
    if out.shape[-2] < size[0] or out.shape[-1] < size[1]:
        out = F.pad(out, (0, size[1] - out.shape[-1], 0, size[0] - out.shape[-2]), mode="replicate")
    return out[..., : size[0], : size[1]]


def upsample(x: torch.Tensor, size, resampling: str) -> torch.Tensor:
    """The top-down upsampling ``resampling`` names."""
    if resampling == "authors":
        return F.interpolate(x, size=size, mode="nearest")
    return upsample_aligned(x, size)


def downsample(x: torch.Tensor, size, resampling: str) -> torch.Tensor:
    """The path augmentation's down-sampling ``resampling`` names."""
    if resampling == "authors":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return downsample_aligned(x, size)
