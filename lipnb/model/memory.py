"""Visual memory: one convolutional GRU per FPN level (paper §3.2, eq. 1a-1d).

    "we further replace the bias term in Conv-GRU with the group normalization (GN) layer"

        z_t = sigmoid(GN(W_hz * h_{t-1} + W_xz * x_t))           (1a)  update gate
        r_t = sigmoid(GN(W_hr * h_{t-1} + W_xr * x_t))           (1b)  reset gate
        h~_t = tanh(GN(W_h * (r_t . h_{t-1}) + W_x * x_t))        (1c)
        h_t = (1 - z_t) . h_{t-1} + z_t . h~_t                    (1d)

    "For each level of the feature pyramid network (FPN), we create a corresponding Conv-GRU
    layer. The layers at different levels learn different transition functions."

The state lives with the caller (one tensor per level), so a clip is played by passing the
returned state back in. ``static=True`` feeds a zero hidden state every frame ("As the training
is on static images, we set hidden states to be zeros without update", §4.1.1; Table 3).

Not in the paper (issue 21): ``update_gate_bias`` is the initial shift of GN_z (the GroupNorm that
stands in for the update gate's bias); 0 is the paper's (and PyTorch's) default. A positive value
starts the gate open, z = sigmoid(b) where GN_z's normalised value is 0, so that N leans on the
current frame.

In training, a zero state is fed as explicit zero tensors (as the authors' code does), so that
W_hz, W_hr and W_h take part in the step: their gradient is zero, but weight decay applies to
them, as it does to every other weight. In eval the h-convolutions are skipped (they add 0).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .backbone import GroupNorm

State = Optional[list]  # list of per-level hidden tensors [B, C_h, H_l, W_l], or None


class ConvGRUCell(nn.Module):
    """Eq. 1a-1d with 3x3 convolutions and a GroupNorm in place of each gate's bias.

    The three input convolutions W_xz, W_xr, W_x are stored stacked in ``conv_x`` (output
    channels in that order), W_hz, W_hr stacked in ``conv_h_zr``; W_h is ``conv_h``. None has a bias.

    forward(x [B, C_in, H, W], h [B, C_h, H, W] or None) -> (h' [B, C_h, H, W], z, r)
    with ``h=None`` meaning the zero state (then the h-convolutions are skipped: they would add 0).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, gn_groups: int = 32,
                 update_gate_bias: float = 0.0):
        super().__init__()
        p = kernel_size // 2
        self.hidden_channels = hidden_channels
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, padding=p, bias=False)
        self.conv_h_zr = nn.Conv2d(hidden_channels, 2 * hidden_channels, kernel_size, padding=p, bias=False)
        self.conv_h = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=p, bias=False)
        norm = GroupNorm(gn_groups)
        self.gn_z, self.gn_r, self.gn_h = norm(hidden_channels), norm(hidden_channels), norm(hidden_channels)
        for conv in (self.conv_x, self.conv_h_zr, self.conv_h):
            nn.init.kaiming_uniform_(conv.weight, a=1)
        nn.init.constant_(self.gn_z.bias, update_gate_bias)

    def forward(self, x: torch.Tensor, h: Optional[torch.Tensor] = None):
        xz, xr, xh = self.conv_x(x).chunk(3, dim=1)  # W_xz*x, W_xr*x, W_x*x
        if h is None:  # zero state: every W_h* term vanishes
            z = torch.sigmoid(self.gn_z(xz))
            r = torch.sigmoid(self.gn_r(xr))
            h_tilde = torch.tanh(self.gn_h(xh))
            return z * h_tilde, z, r
        hz, hr = self.conv_h_zr(h).chunk(2, dim=1)  # W_hz*h, W_hr*h
        z = torch.sigmoid(self.gn_z(hz + xz))  # (1a)
        r = torch.sigmoid(self.gn_r(hr + xr))  # (1b)
        h_tilde = torch.tanh(self.gn_h(self.conv_h(r * h) + xh))  # (1c)
        return (1 - z) * h + z * h_tilde, z, r  # (1d)


class VisualMemory(nn.Module):
    """One :class:`ConvGRUCell` per pyramid level.

    forward(features: list of L tensors [B, C_in, H_l, W_l], state: list of L tensors
    [B, C_h, H_l, W_l] or None) -> (H: list of L tensors [B, C_h, H_l, W_l], gates: list of L
    dicts ``{"z": [B, C_h, H_l, W_l], "r": ...}``). In ``static`` mode ``state`` is ignored.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_levels: int = 5,
                 kernel_size: int = 3, gn_groups: int = 32, static: bool = False, update_gate_bias: float = 0.0):
        super().__init__()
        self.static = static
        self.cells = nn.ModuleList(
            ConvGRUCell(in_channels, hidden_channels, kernel_size, gn_groups, update_gate_bias)
            for _ in range(num_levels)
        )

    def forward(self, features: list, state: State = None):
        if self.static or state is None:
            state = (zero_state_like(features, self.cells[0].hidden_channels) if self.training
                     else [None] * len(self.cells))
        if len(state) != len(features) or len(features) != len(self.cells):
            raise ValueError(f"expected {len(self.cells)} levels, got {len(features)} features / {len(state)} states")
        hidden, gates = [], []
        for cell, x, h in zip(self.cells, features, state):
            if h is not None and (h.shape[0], *h.shape[-2:]) != (x.shape[0], *x.shape[-2:]):
                raise ValueError(f"state {tuple(h.shape)} does not fit features {tuple(x.shape)}: "
                                 "frames of one clip must share their size and batch")
            h_new, z, r = cell(x, h)
            hidden.append(h_new)
            gates.append({"z": z, "r": r})
        return hidden, gates


def detach_state(state: State) -> State:
    """Cut back-propagation through time here (truncated BPTT): same values, no history."""
    return None if state is None else [h.detach() for h in state]


def zero_state_like(features: list, hidden_channels: int) -> list:
    """The explicit zero state for ``features`` (what ``state=None`` means)."""
    return [x.new_zeros(x.shape[0], hidden_channels, *x.shape[-2:]) for x in features]
