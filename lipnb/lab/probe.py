"""A feature-only baseline: frozen ImageNet features and a linear probe fitted on the first frame.

What do ImageNet features alone give, with no offline training, no memory and no constraints?
Each frame goes through the frozen EfficientNet-Lite0 trunk; its stride-4, 8, 16 and 32 maps are
sampled at the stride-4 features' pixels (where the trunk's symmetric padding puts feature ``i`` of
a stride-``s`` map: pixel ``i * s``) and concatenated (24 + 40 + 112 + 320 = 496 channels). Each
channel is divided by its standard deviation on frame 0 (not centred). A 1x1 convolution (a
per-pixel linear classifier over background and the first mask's objects) is fitted to frame 0's
mask with Adam, then applied to every frame; its logits are sampled at the annotations' pixels the
same way and each pixel takes its most likely label. LIP, which adds COCO pre-training, DAVIS
fine-tuning, the memory and the constraints to the same features, has to beat this row of Table 1.

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
    lr: float = 0.003  # chosen on 6 DAVIS 2016 *train* sequences: J&F 52.5 (results/davis-cpu-diagnostics/probe_lr.md)
    weight_decay: float = 1e-4
    seed: int = 0


def imagenet_trunk(device="cpu") -> EfficientNetLite0:
    """The frozen ImageNet-trained trunk, in eval mode."""
    return load_imagenet(EfficientNetLite0()).requires_grad_(False).eval().to(device)


# ----------------------------------------------------------------------------- where features sit
#
# The trunk pads symmetrically (kernel // 2), so feature i of a stride-s map is centred on image
# pixel i * s (pixel indices; pixel p covers [p, p + 1) and is centred at p + 0.5). Bilinear
# resizing with align_corners=False would instead put it at i * s + (s - 1) / 2, the centre of an
# s x s cell: 1.5, 3.5, 7.5 and 15.5 pixels off at strides 4, 8, 16 and 32. Every resampling here
# samples the maps at explicit positions instead.


def pixel_centres(n_out: int, n_in: int) -> torch.Tensor:
    """Pixel indices (in an ``n_in``-pixel image) of the centres of ``n_out`` pixels covering the
    same extent: ``(y + 0.5) * n_in / n_out - 0.5`` (``y`` itself when the sizes agree)."""
    return (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5


def sample_at(maps: torch.Tensor, stride: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a stride-``stride`` map ``[B, C, h, w]`` at image pixel positions
    ``rows`` x ``cols`` (pixel indices of the image the trunk saw) -> ``[B, C, len(rows), len(cols)]``.
    Feature ``i`` sits at pixel ``i * stride``; positions past the first or last feature take its value."""
    h, w = maps.shape[-2:]

    def normalised(p: torch.Tensor, n: int) -> torch.Tensor:  # feature index -> [-1, 1] (align_corners=True)
        return (p / stride) * (2.0 / max(n - 1, 1)) - 1.0

    gy, gx = normalised(rows, h), normalised(cols, w)
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1).to(maps.dtype).to(maps.device)
    return F.grid_sample(maps, grid[None].expand(maps.shape[0], -1, -1, -1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def to_pixels(maps: torch.Tensor, stride: int, frame_size: tuple, size: tuple) -> torch.Tensor:
    """A stride-``stride`` map of a ``frame_size`` (H, W) image -> ``size`` (H', W') pixels covering
    the same image (e.g. the 480p annotations of a 240p frame): ``[B, C, H', W']``."""
    return sample_at(maps, stride, pixel_centres(size[0], frame_size[0]), pixel_centres(size[1], frame_size[1]))


@torch.no_grad()
def stride4_features(trunk: EfficientNetLite0, frame: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``[H, W, 3]`` -> features ``[496, ceil(H/4), ceil(W/4)]``: C2..C5 sampled where the
    stride-4 features sit (pixel ``4 * j``)."""
    x = torch.from_numpy(np.array(frame)).permute(2, 0, 1).float().div(255)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    maps = trunk.trunk(((x - mean) / std)[None].to(next(trunk.parameters()).device))
    h, w = maps[0].shape[-2:]
    rows, cols = 4.0 * torch.arange(h, dtype=torch.float64), 4.0 * torch.arange(w, dtype=torch.float64)
    return torch.cat([maps[0]] + [sample_at(m, s, rows, cols) for m, s in zip(maps[1:], (8, 16, 32))], 1)[0]


class LinearProbe(nn.Module):
    """Scaled features -> a 1x1 convolution: ``[C, h, w] -> logits [1, K + 1, h, w]``. Each channel
    is divided by its standard deviation on the first frame, not centred: the bias absorbs any
    offset, and centring with one frame's means made 300 Adam steps an ill-conditioned problem."""

    def __init__(self, first: torch.Tensor, num_labels: int):
        super().__init__()
        self.register_buffer("std", first.std((1, 2), keepdim=True) + 1e-6)
        self.classify = nn.Conv2d(first.shape[0], num_labels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify((features / self.std)[None])


def fit_probe(features: torch.Tensor, labels: torch.Tensor, num_labels: int, cfg: ProbeConfig,
              frame_size: tuple | None = None) -> LinearProbe:
    """Fit on frame 0: ``features [C, h, w]`` (stride 4 of a ``frame_size`` image; default ``(4h, 4w)``),
    ``labels`` Int64 ``[H, W]`` in 0..num_labels-1 (the logits are sampled at the labels' pixels for
    the cross-entropy)."""
    torch.manual_seed(cfg.seed)
    frame_size = frame_size or (4 * features.shape[-2], 4 * features.shape[-1])
    probe = LinearProbe(features, num_labels).to(features.device)
    opt = torch.optim.Adam(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.steps):
        logits = to_pixels(probe(features), 4, frame_size, tuple(labels.shape))
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
    probe = fit_probe(stride4_features(trunk, seq.read_frame(0)), labels, len(ids), cfg, seq.frame_size)
    fit_s = time.perf_counter() - t0
    with torch.no_grad():
        for i in range(seq.num_frames):
            logits = to_pixels(probe(stride4_features(trunk, seq.read_frame(i))), 4, seq.frame_size, seq.size)
            seq.write_result(out_dir, i, np.asarray(ids, np.uint8)[logits[0].argmax(0).numpy()])
    return {"name": seq.name, "frames": seq.num_frames, "fit_s": fit_s, "total_s": time.perf_counter() - t0}


def probe_davis(davis, out_dir: str | Path, sequences: list | None = None, cfg: ProbeConfig | None = None,
                progress: bool = True, jobs: int = 1) -> list[dict]:
    """The baseline on ``sequences`` (default: all) of a :class:`~lipnb.data.davis.DavisDataset`,
    ``jobs`` sequences at once (:mod:`lipnb.online.pool`)."""
    from tqdm.auto import tqdm

    from lipnb.online.pool import map_on_copies

    cfg = cfg or ProbeConfig()
    tasks = [(davis[name], out_dir, cfg) for name in sequences or davis.sequences]
    return list(tqdm(map_on_copies(imagenet_trunk(), probe_sequence, tasks, jobs), total=len(tasks),
                     desc="linear probe", disable=not progress))


def lr_sweep(davis, out_dir: str | Path, sequences: list, lrs: list, cfg: ProbeConfig | None = None) -> dict:
    """J&F of the probe at each learning rate of ``lrs`` on ``sequences`` of ``davis`` (choose it on a
    *train* split): ``{lr: {"J&F", "J", "F", "per_sequence"}}`` in percent; masks under
    ``out_dir/lr<lr>/``. Each frame's features are computed once and shared by every lr's probe."""
    from dataclasses import replace

    from lipnb.metrics.evaluation import evaluate

    cfg, trunk, out_dir = cfg or ProbeConfig(), imagenet_trunk(), Path(out_dir)
    for name in sequences:
        seq = davis[name]
        first = seq.first_mask()
        ids = [0] + [int(i) for i in np.unique(first) if i != 0]
        lookup = np.zeros(256, np.int64)
        lookup[ids] = np.arange(len(ids))
        first_features = stride4_features(trunk, seq.read_frame(0))
        probes = {lr: fit_probe(first_features, torch.from_numpy(lookup[first]), len(ids), replace(cfg, lr=lr),
                                seq.frame_size) for lr in lrs}
        with torch.no_grad():
            for i in range(seq.num_frames):
                features = stride4_features(trunk, seq.read_frame(i))
                for lr, probe in probes.items():
                    logits = to_pixels(probe(features), 4, seq.frame_size, seq.size)
                    seq.write_result(out_dir / f"lr{lr:g}", i, np.asarray(ids, np.uint8)[logits[0].argmax(0).numpy()])
    results = {}
    for lr in lrs:
        ev = evaluate(davis, out_dir / f"lr{lr:g}", sequences=list(sequences), processes=1, progress=False)
        g = ev.global_results()
        results[lr] = {"J&F": round(100 * g["J&F-Mean"], 1), "J": round(100 * g["J-Mean"], 1),
                       "F": round(100 * g["F-Mean"], 1),
                       "per_sequence": {n: round(50 * (j + f), 1) for n, j, f in ev.per_sequence_results()}}
    return results
