"""Bottom-up path augmentation on the Conv-GRU outputs (paper §3.2, Fig. 3; PANet [35]).

    "we easily achieve it by down-sampling and addition operation with output features from
    multi-level Conv-GRU module. ... The output features after path augmentation are used for
    RPN and prediction heads."

No learned layers (the authors' code): going up the pyramid from the finest level,

    N2 = H2,    N(i+1) = H(i+1) / 2 + bilinear_resize(N(i), 1/2) / 2.

The resize goes to the exact size of H(i+1), so odd sizes (ceil-mode pooling in P6) fit.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class PathAugmentation(nn.Module):
    """forward(H: list of L tensors [B, C, H_l, W_l], finest first) -> N: same shapes."""

    def forward(self, hidden: list) -> list:
        out = [hidden[0]]
        for h in hidden[1:]:
            down = F.interpolate(out[-1], size=h.shape[-2:], mode="bilinear", align_corners=False)
            out.append(0.5 * h + 0.5 * down)
        return out
