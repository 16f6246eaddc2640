"""A feature-only baseline: frozen ImageNet features and a linear probe fitted on the first frame.

What do ImageNet features alone give, with no offline training, no memory and no constraints?
Each frame goes through the frozen EfficientNet-Lite0 trunk; its stride-4, 8, 16 and 32 maps are
upsampled to stride 4 and concatenated (24 + 40 + 112 + 320 = 496 channels). A 1x1 convolution
(a per-pixel linear classifier over background and the first mask's objects) is fitted to frame
0's mask with Adam, then applied to every frame; each pixel takes its most likely label. LIP,
which adds COCO pre-training, DAVIS fine-tuning, the memory and the constraints to the same
features, has to beat this row of Table 1.

    python -m lipnb probe --davis ../shared/data/davis2016 --year 2016 --frames-resolution 240p --out runs/probe
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lipnb.model.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0, load_imagenet


@dataclass
class ProbeConfig:
    steps: int = 300  # Adam steps on the first frame
    lr: float = 0.1  # chosen on 6 DAVIS 2016 *train* sequences: J&F 51.1 at 0.1, 46.5 at 1.0, 47.2 at 3.0
    weight_decay: float = 1e-4
    seed: int = 0


def imagenet_trunk(device="cpu") -> EfficientNetLite0:
    """The frozen ImageNet-trained trunk, in eval mode."""
    return load_imagenet(EfficientNetLite0()).requires_grad_(False).eval().to(device)


@torch.no_grad()
def stride4_features(trunk: EfficientNetLite0, frame: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``[H, W, 3]`` -> features ``[496, ceil(H/4), ceil(W/4)]``: C2..C5 at stride 4."""
    x = torch.from_numpy(np.array(frame)).permute(2, 0, 1).float().div(255)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    maps = trunk.trunk(((x - mean) / std)[None].to(next(trunk.parameters()).device))
    size = maps[0].shape[-2:]
    return torch.cat([maps[0]] + [F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                                  for m in maps[1:]], 1)[0]


class LinearProbe(nn.Module):
    """Standardised features -> a 1x1 convolution: ``[C, h, w] -> logits [1, K + 1, h, w]``."""

    def __init__(self, first: torch.Tensor, num_labels: int):
        super().__init__()
        self.register_buffer("mean", first.mean((1, 2), keepdim=True))
        self.register_buffer("std", first.std((1, 2), keepdim=True) + 1e-6)
        self.classify = nn.Conv2d(first.shape[0], num_labels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(((features - self.mean) / self.std)[None])


def fit_probe(features: torch.Tensor, labels: torch.Tensor, num_labels: int, cfg: ProbeConfig) -> LinearProbe:
    """Fit on frame 0: ``features [C, h, w]``, ``labels`` Int64 ``[H, W]`` in 0..num_labels-1 (the
    logits are upsampled to the labels' size for the cross-entropy)."""
    torch.manual_seed(cfg.seed)
    probe = LinearProbe(features, num_labels).to(features.device)
    opt = torch.optim.Adam(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        logits = F.interpolate(probe(features), size=labels.shape, mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, labels[None])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return probe.eval()


def probe_sequence(trunk, seq, out_dir: str | Path, cfg: ProbeConfig) -> dict:
    """Segment one :class:`~lipnb.data.davis.DavisSequence` into ``out_dir/<name>/``; returns timings."""
    t0 = time.perf_counter()
    first = seq.first_mask()
    ids = [0] + [int(i) for i in np.unique(first) if i != 0]
    lookup = np.zeros(256, np.int64)
    lookup[ids] = np.arange(len(ids))
    labels = torch.from_numpy(lookup[first])  # [H, W] at the annotations' resolution
    probe = fit_probe(stride4_features(trunk, seq.read_frame(0)), labels, len(ids), cfg)
    fit_s = time.perf_counter() - t0
    with torch.no_grad():
        for i in range(seq.num_frames):
            logits = F.interpolate(probe(stride4_features(trunk, seq.read_frame(i))), size=seq.size,
                                   mode="bilinear", align_corners=False)
            seq.write_result(out_dir, i, np.asarray(ids, np.uint8)[logits[0].argmax(0).numpy()])
    return {"name": seq.name, "frames": seq.num_frames, "fit_s": fit_s, "total_s": time.perf_counter() - t0}


def probe_davis(davis, out_dir: str | Path, sequences: list | None = None, cfg: ProbeConfig | None = None,
                progress: bool = True) -> list[dict]:
    """The baseline on ``sequences`` (default: all) of a :class:`~lipnb.data.davis.DavisDataset`."""
    from tqdm.auto import tqdm

    cfg = cfg or ProbeConfig()
    trunk = imagenet_trunk()
    names = list(sequences or davis.sequences)
    return [probe_sequence(trunk, davis[name], out_dir, cfg)
            for name in tqdm(names, desc="linear probe", disable=not progress)]
