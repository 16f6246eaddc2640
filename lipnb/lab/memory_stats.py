"""Did the memory learn? Three measures of a Conv-GRU, per pyramid level (issue 13).

* the gates over a sequence: mean and standard deviation of z (update, eq. 1a) and r (reset,
  eq. 1b) over frames, positions and channels. z = 0.5 everywhere is a fixed running average
  with a one-frame half-life; a memory that learned spreads z out;
* how far training moved the hidden-state weights: ``||W_after - W_before|| / ||W_before||``
  for W_hz, W_hr (``conv_h_zr``) and W_h (``conv_h``);
* the size of the features the heads see (N, the state carried): ``||N_t|| / ||N_0||`` averaged
  over frames 5.., i.e. how different a filled memory's features are from frame 0's, the only
  frame online fine-tuning trains on.

::

    rows = memory_statistics(model, seq)                       # list of dicts, one per level
    moved = weight_change(pretrained_model, finetuned_model)   # list of dicts, one per level
    fig = plot_memory_statistics({"before": (rows0, moved0), "after": (rows1, moved1)})
"""

from __future__ import annotations

import numpy as np
import torch

from lipnb import paths
from lipnb.data.davis import DavisDataset
from lipnb.online import load_model
from lipnb.online.inference import carried_features

LEVEL_NAMES = ("P2", "P3", "P4", "P5", "P6")
STEADY_FROM = 5  # frames from which the memory counts as filled


def gate_maps(model, seq, level: int = 0, gate: str = "z", last: int | None = None) -> list:
    """Run the (offline) model over a sequence with its memory carried and return, per frame,
    the channel mean of gate ``z`` (update, eq. 1a) or ``r`` (reset, eq. 1b) at pyramid ``level``
    (0 = P2): a list of ``[H_l, W_l]`` arrays. Online fine-tuning freezes backbone and Conv-GRU,
    so these are also the gates of the online model."""
    return [ff.gates[level][gate][0].mean(0).cpu().numpy() for ff in carried_features(model, seq, last)]


def memory_statistics(model, seq, last: int | None = None) -> list[dict]:
    """Gate statistics and feature-size ratio of ``model`` (eval, state carried) over ``seq``'s
    frames ``0..last``. Returns one dict per level: ``level, z_mean, z_std, r_mean, r_std,
    steady_over_first`` (``||N_t|| / ||N_0||``, mean over t >= 5; NaN for shorter sequences)."""
    z, r, norms = [], [], []
    for ff in carried_features(model, seq, last):
        z.append([g["z"].flatten().cpu() for g in ff.gates])
        r.append([g["r"].flatten().cpu() for g in ff.gates])
        norms.append([float(f.norm()) for f in ff.features.values()])
    n = len(norms)
    norms = np.array(norms)  # [T, L]
    rows = []
    for level in range(len(z[0])):
        zl, rl = torch.cat([f[level] for f in z]), torch.cat([f[level] for f in r])
        ratio = float(np.mean(norms[STEADY_FROM:, level] / norms[0, level])) if n > STEADY_FROM else float("nan")
        rows.append({"level": LEVEL_NAMES[level], "z_mean": float(zl.mean()), "z_std": float(zl.std()),
                     "r_mean": float(rl.mean()), "r_std": float(rl.std()), "steady_over_first": ratio})
    return rows


@torch.no_grad()
def weight_change(before, after) -> list[dict]:
    """``||W_after - W_before|| / ||W_before||`` of W_hz, W_hr and W_h per level, between two
    models (e.g. the pre-trained and the fine-tuned one)."""
    rows = []
    for level, (a, b) in enumerate(zip(before.memory.cells, after.memory.cells)):
        h = a.hidden_channels
        pairs = {"W_hz": (a.conv_h_zr.weight[:h], b.conv_h_zr.weight[:h]),
                 "W_hr": (a.conv_h_zr.weight[h:], b.conv_h_zr.weight[h:]),
                 "W_h": (a.conv_h.weight, b.conv_h.weight)}
        rows.append({"level": LEVEL_NAMES[level],
                     **{k: float((w1 - w0).norm() / w0.norm()) for k, (w0, w1) in pairs.items()}})
    return rows


@torch.no_grad()
def gate_norms(model) -> list[dict]:
    """Per level, the affine parameters of the gates' GroupNorm (eq. 1a, 1b): the mean of gamma
    and of |beta| for z and for r. GroupNorm gives each group of channels' pre-activation mean 0
    and variance 1 (over its channels and positions) before gamma and beta, so with gamma = 1 and
    beta = 0 the gates' overall mean and spread stay near those of sigmoid(N(0, 1)), 0.50 ± 0.21,
    whatever the convolution weights: the weights only choose where z is high and where low."""
    return [{"level": LEVEL_NAMES[level],
             **{f"{g}_gamma": float(getattr(cell, f"gn_{g}").weight.mean()) for g in ("z", "r")},
             **{f"{g}_abs_beta": float(getattr(cell, f"gn_{g}").bias.abs().mean()) for g in ("z", "r")}}
            for level, cell in enumerate(model.memory.cells)]


@torch.no_grad()
def gate_selectivity(model, seq, last: int | None = None) -> list[dict]:
    """Where the update gate opens: per level, the mean of z over the true objects' pixels minus
    its mean over the background (frames 1..last, the mask taken to the level's grid by nearest
    neighbour). The overall spread of z is fixed by the GroupNorm (:func:`gate_norms`); this
    says whether the weights made z depend on the objects. ``seq`` needs ``read_mask``."""
    import torch.nn.functional as F

    sums = [[0.0, 0] for _ in model.memory.cells]  # per level: sum of differences, frames counted
    for i, ff in enumerate(carried_features(model, seq, last)):
        if i == 0:
            continue
        mask = torch.from_numpy(seq.read_mask(i) > 0).float()[None, None]
        for level, g in enumerate(ff.gates):
            z = g["z"][0].mean(0).cpu()  # [H_l, W_l], channel mean
            m = F.interpolate(mask, size=z.shape, mode="nearest")[0, 0] > 0
            if m.any() and (~m).any():
                sums[level][0] += float(z[m].mean() - z[~m].mean())
                sums[level][1] += 1
    return [{"level": LEVEL_NAMES[level], "z_object_minus_background": total / max(count, 1)}
            for level, (total, count) in enumerate(sums)]


@torch.no_grad()
def gate_channel_selectivity(model, seq, last: int | None = None) -> list[dict]:
    """Per level, the mean over channels of ``|mean z on the objects - mean z on the background|``
    (frames 1..last, as :func:`gate_selectivity`). :func:`gate_selectivity` takes the channel mean
    of z first, so channels that open on the object and channels that close there cancel; this
    measure keeps them (0 only where no channel tells object from background)."""
    import torch.nn.functional as F

    sums = [[0.0, 0] for _ in model.memory.cells]
    for i, ff in enumerate(carried_features(model, seq, last)):
        if i == 0:
            continue
        mask = torch.from_numpy(seq.read_mask(i) > 0).float()[None, None]
        for level, g in enumerate(ff.gates):
            z = g["z"][0].cpu()  # [C, H_l, W_l]
            m = F.interpolate(mask, size=z.shape[-2:], mode="nearest")[0, 0] > 0
            if m.any() and (~m).any():
                sums[level][0] += float((z[:, m].mean(1) - z[:, ~m].mean(1)).abs().mean())
                sums[level][1] += 1
    return [{"level": LEVEL_NAMES[level], "z_channel_abs_object_minus_background": total / max(count, 1)}
            for level, (total, count) in enumerate(sums)]


@torch.no_grad()
def state_scale(model, seq, last: int | None = None, steady_from: int = STEADY_FROM) -> list[dict]:
    """The scale the heads meet: per level, ``||N_t||`` with the state carried over ``||N_t||`` of
    the same frame with a zero input state (frame by frame, mean over ``t >= steady_from``).
    N (the path-augmented features) is what the RPN reads and what the RoI heads (the Fig. 4
    shortcut included) pool from. 1: a carried state leaves the heads' inputs at the size
    pre-training (zero state) gave them. Also the RoI-pool view: the ratio of the mean
    absolute value inside the object masks (``object_ratio``)."""
    import torch.nn.functional as F

    ratios, obj = [], []
    for i, ff, zero in carried_and_zero(model, seq, last):
        if i < steady_from:
            continue
        mask = torch.from_numpy(seq.read_mask(i) > 0).float()[None, None]
        row, orow = [], []
        for a, b in zip(ff.features.values(), zero.features.values()):
            row.append(float(a.norm() / b.norm()))
            m = F.interpolate(mask, size=a.shape[-2:], mode="nearest")[0, 0] > 0
            orow.append(float(a[0][:, m].abs().mean() / b[0][:, m].abs().mean()) if m.any() else float("nan"))
        ratios.append(row)
        obj.append(orow)
    ratios, obj = np.array(ratios), np.array(obj)
    return [{"level": LEVEL_NAMES[level], "carried_over_zero": float(ratios[:, level].mean()) if len(ratios) else float("nan"),
             "object_ratio": float(np.nanmean(obj[:, level])) if len(obj) else float("nan")}
            for level in range(len(model.memory.cells))]


def plot_memory_statistics(models: dict):
    """One line per model (``label -> (memory_statistics rows, weight_change rows)``) on four
    panels: z mean ± std, r mean ± std, the relative change of W_h, and ``||N_t|| / ||N_0||``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), constrained_layout=True)
    x = np.arange(len(LEVEL_NAMES))
    for k, (label, (stats, moved)) in enumerate(models.items()):
        dx = (k - (len(models) - 1) / 2) * 0.12
        for ax, gate in zip(axes[:2], ("z", "r")):
            ax.errorbar(x + dx, [s[f"{gate}_mean"] for s in stats], yerr=[s[f"{gate}_std"] for s in stats],
                        marker="o", capsize=3, label=label)
        axes[2].plot(x, [m["W_h"] for m in moved], marker="o", label=label)
        axes[3].plot(x, [s["steady_over_first"] for s in stats], marker="o", label=label)
    titles = ("update gate z: mean ± std", "reset gate r: mean ± std",
              "W_h moved by fine-tuning (relative)", "feature size, frames 5.. / frame 0")
    for ax, title in zip(axes, titles):
        ax.set_xticks(x, LEVEL_NAMES)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[2].set_yscale("log")
    axes[3].axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    return fig


def state_trace(model, seq, last: int | None = None) -> list[dict]:
    """How fast the memory fills: for every frame ``t``, per level, ``||H_t|| / ||H_t^0||`` and the
    cosine of ``H_t`` with ``H_t^0``, where ``H_t`` is the Conv-GRU's output with the state carried
    from frame 0 and ``H_t^0`` the same frame's with a zero input state. A trace that is flat from
    frame k on says states older than k frames add nothing new: a training clip of warm-up + clip
    length >= k meets the states inference meets. Rows: ``{"frame", "level", "norm_ratio", "cosine"}``."""
    rows = []
    for t, carried, zero in carried_and_zero(model, seq, last):
        for level, (a, b) in enumerate(zip(carried.state, zero.state)):
            rows.append({"frame": t, "level": LEVEL_NAMES[level], "norm_ratio": float(a.norm() / b.norm()),
                         "cosine": float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))})
    return rows


def carried_and_zero(model, seq, last: int | None = None):
    """Play ``seq``'s frames ``0..last`` through ``model`` (eval, no gradient) twice over: yields
    ``(t, FrameFeatures with the state carried from frame 0, FrameFeatures of the same frame with a
    zero input state)``."""
    from lipnb.online.inference import to_image

    model = model.eval()
    device = next(model.parameters()).device
    n = seq.num_frames if last is None else min(seq.num_frames, last + 1)
    state = None
    with torch.no_grad():
        for t in range(n):
            image = [to_image(seq.read_frame(t), device)]
            carried = model.features(image, state)
            state = carried.state
            yield t, carried, model.features(image, None)


def compare_runs(runs: dict, sequences: int = 4, last: int = 24) -> dict:
    """``label -> run folder`` (with ``work/pretrain/last.pt`` and ``work/finetune/last.pt``) ->
    ``models``: ``label -> (statistics averaged over sequences, weight_change)``; ``gates``:
    ``label ->`` the fine-tuned model's :func:`gate_norms` with the :func:`gate_selectivity` of
    the pre-trained and of the fine-tuned model (both with the state carried). On every 4th DAVIS
    2016 val sequence (``sequences`` of them, 240p frames, first ``last + 1`` frames)."""
    data = DavisDataset(paths.davis2016_root(), "2016", "val", "480p", "240p")
    names = list(data.sequences)[::4][:sequences]
    out, gates = {}, {}
    for label, folder in runs.items():
        pre = load_model(f"{folder}/work/pretrain/last.pt")
        fin = load_model(f"{folder}/work/finetune/last.pt")
        pre.memory.static = False  # its weights played as fine-tuning starts them: state carried
        out[label] = (_mean_over([memory_statistics(fin, data[n], last=last) for n in names]), weight_change(pre, fin))
        before, after = (_mean_over([gate_selectivity(m, data[n], last=last) for n in names]) for m in (pre, fin))
        key = "z_object_minus_background"
        gates[label] = [{**g, f"{key}_pretrained": b[key], f"{key}_finetuned": a[key]}
                        for g, b, a in zip(gate_norms(fin), before, after)]
    return {"sequences": names, "models": out, "gates": gates}


def _mean_over(per_sequence: list) -> list[dict]:
    """Per-level rows of several sequences -> per-level means."""
    return [{"level": rows[0]["level"], **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "level"}}
            for rows in zip(*per_sequence)]
