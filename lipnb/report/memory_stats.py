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

LEVEL_NAMES = ("P2", "P3", "P4", "P5", "P6")
STEADY_FROM = 5  # frames from which the memory counts as filled


@torch.no_grad()
def memory_statistics(model, seq, last: int | None = None) -> list[dict]:
    """Gate statistics and feature-size ratio of ``model`` (eval, state carried) over ``seq``'s
    frames ``0..last``. Returns one dict per level: ``level, z_mean, z_std, r_mean, r_std,
    steady_over_first`` (``||N_t|| / ||N_0||``, mean over t >= 5; NaN for shorter sequences)."""
    from lipnb.online.inference import to_image

    device = next(model.parameters()).device
    model = model.eval()
    n = seq.num_frames if last is None else min(seq.num_frames, last + 1)
    state, z, r, norms = None, [], [], []
    for i in range(n):
        ff = model.features([to_image(seq.read_frame(i), device)], state)
        if not ff.gates:
            raise ValueError("the model has no visual memory (use_memory=False)")
        state = ff.state
        z.append([g["z"].flatten().cpu() for g in ff.gates])
        r.append([g["r"].flatten().cpu() for g in ff.gates])
        norms.append([float(f.norm()) for f in ff.features.values()])
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


def compare_runs(runs: dict, sequences: int = 4, last: int = 24) -> dict:
    """``label -> run folder`` (with ``work/pretrain/last.pt`` and ``work/finetune/last.pt``) ->
    ``label -> (statistics averaged over sequences, weight_change)``, on every 4th DAVIS 2016 val
    sequence (``sequences`` of them, 240p frames, first ``last + 1`` frames)."""
    from lipnb import paths
    from lipnb.data.davis import DavisDataset
    from lipnb.online import load_model

    data = DavisDataset(paths.davis2016_root(), "2016", "val", "480p", "240p")
    names = list(data.sequences)[::4][:sequences]
    out = {}
    for label, folder in runs.items():
        pre = load_model(f"{folder}/work/pretrain/last.pt")
        fin = load_model(f"{folder}/work/finetune/last.pt")
        per_seq = [memory_statistics(fin, data[n], last=last) for n in names]
        mean = [{"level": rows[0]["level"], **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "level"}}
                for rows in zip(*per_seq)]
        out[label] = (mean, weight_change(pre, fin))
    return {"sequences": names, "models": out}


def main(argv=None) -> int:
    """``python -m lipnb.report.memory_stats LABEL=RUN_FOLDER ... --out FIG.png``: the memory
    statistics of several runs side by side (a figure, and the numbers as JSON beside it)."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("runs", nargs="+", help="label=folder of a reproduction (its work/ must be there)")
    p.add_argument("--out", required=True, help="figure path (.png); the numbers go to the same name .json")
    args = p.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.runs)
    result = compare_runs(runs)
    from lipnb.report.figures import save

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save(plot_memory_statistics(result["models"]), out)
    out.with_suffix(".json").write_text(json.dumps(
        {"sequences": result["sequences"], "runs": runs,
         "models": {k: {"gates_and_features": s, "weights_moved_by_finetuning": m} for k, (s, m) in result["models"].items()}},
        indent=1))
    for label, (stats, moved) in result["models"].items():
        print(label)
        for s, m in zip(stats, moved):
            print(f"  {s['level']}: z {s['z_mean']:.3f} ± {s['z_std']:.3f}  r {s['r_mean']:.3f} ± {s['r_std']:.3f}  "
                  f"|N_t|/|N_0| {s['steady_over_first']:.2f}  W_h moved {m['W_h']:.4f}  W_hz {m['W_hz']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
