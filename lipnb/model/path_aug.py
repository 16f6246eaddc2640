"""Bottom-up path augmentation on the Conv-GRU outputs (paper §3.2, Fig. 3; PANet [35]).

    "we easily achieve it by down-sampling and addition operation with output features from
    multi-level Conv-GRU module. ... The output features after path augmentation are used for
    RPN and prediction heads."

No learned layers (the authors' code): going up the pyramid from the finest level,

    N2 = H2,    N(i+1) = H(i+1) / 2 + down(N(i)) / 2.

``down`` (:mod:`lipnb.model.resampling`) keeps feature ``i`` of a stride-``s`` map on pixel
``s * i``: N(i+1)'s feature ``k`` takes N(i)'s feature ``2k`` (``resampling="aligned"``); the
authors' bilinear resize by 1/2 (``"authors"``) averages ``2k`` and ``2k + 1``, half a stride off.
The result has the exact size of H(i+1), so odd sizes (ceil-mode pooling in P6) fit.
"""

from __future__ import annotations

from torch import nn

from .resampling import downsample


class PathAugmentation(nn.Module):
    """forward(H: list of L tensors [B, C, H_l, W_l], finest first) -> N: same shapes."""

    def __init__(self, resampling: str = "aligned"):
        super().__init__()
        self.resampling = resampling

    def forward(self, hidden: list) -> list:
        out = [hidden[0]]
        for h in hidden[1:]:
            down = downsample(out[-1], h.shape[-2:], self.resampling)
            out.append(0.5 * h + 0.5 * down)
        return out
