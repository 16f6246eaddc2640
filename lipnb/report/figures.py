"""Figures in the spirit of the paper's Figs. 1, 6, 7 and 8, plus training curves and gate maps.

All functions return a matplotlib Figure; :func:`save` writes it as PNG at :data:`DPI`, and
:func:`setup` shows notebook figures at the same resolution. Masks are drawn by :func:`overlay`:
each object id in its DAVIS palette colour (palette index k for id k), a half-transparent fill
inside a solid outline with a white rim, so that a red object under a red mask still shows its
border (:mod:`lipnb.report.outline`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipnb.data.davis import read_mask
from lipnb.data.palette import colorize
from lipnb.report.outline import border, outline_width

DPI = 110  # every saved figure and every figure shown in a notebook (the one place to change it)


def setup() -> None:
    """Figures at :data:`DPI`: matplotlib's defaults and, inside IPython, the inline backend (PNG)."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI})
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("png", dpi=DPI)


def overlay(frame: np.ndarray, ids: np.ndarray, alpha: float = 0.45, width: int | None = None) -> np.ndarray:
    """uint8 frame ``[H, W, 3]`` with object ids ``[h, w]`` drawn on (resized to the frame): each
    id's palette colour blended into its pixels (``alpha``), a solid border of that colour
    ``width`` pixels wide (default: by frame size) and a one-pixel white rim outside it."""
    if ids.shape != frame.shape[:2]:
        from PIL import Image

        ids = np.asarray(Image.fromarray(ids).resize(frame.shape[1::-1], Image.NEAREST))
    out = frame.astype(np.float32)
    colours = colorize(ids).astype(np.float32)
    fg = ids > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    width = width or outline_width(ids.shape)
    for k in np.unique(ids[fg]):
        inner, rim = border(ids == k, width)
        out[rim & (ids != k)] = 255.0
        out[inner] = colours[inner]
    return out.clip(0, 255).astype(np.uint8)


def pick_frames(num_frames: int, k: int = 5) -> list[int]:
    """``k`` frame indices spread over a sequence, the first and last included."""
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(k, num_frames))})


def save(fig, path: str | Path, dpi: int = DPI) -> None:
    """Write ``fig`` as an indexed (256-colour) PNG at ``dpi``, a third of the size of an RGB one;
    the notebook still shows the figure below the cell."""
    import io

    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(256).save(path, format="PNG", optimize=True)


def _grid(rows: int, cols: int, cell: float = 1.5):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols * 1.4, cell * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


# ----------------------------------------------------------------------------- training


def plot_batch(samples: list, names: list | None = None):
    """A training batch (4 per row): each image with its instance masks and boxes (label above the box).

    samples: ``(image [3, H, W] float in [0, 1], {"boxes" [K, 4], "labels" [K], "masks" [K, H, W]})``.
    """
    import matplotlib.patches as patches

    cols = min(4, len(samples))
    fig, axes = _grid(-(-len(samples) // cols), cols, cell=2.0)
    for ax in axes.flat[len(samples):]:
        ax.set_visible(False)
    for ax, (image, target) in zip(axes.flat, samples):
        frame = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        ids = np.zeros(frame.shape[:2], dtype=np.uint8)
        for k, m in enumerate(target["masks"].numpy(), start=1):
            ids[m > 0] = k
        ax.imshow(overlay(frame, ids))
        for k, (box, label) in enumerate(zip(target["boxes"].tolist(), target["labels"].tolist()), start=1):
            colour = colorize(np.array([k], dtype=np.uint8))[0] / 255
            ax.add_patch(patches.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                                           edgecolor=colour, linewidth=1.5))
            text = names[label - 1] if names and label - 1 < len(names) else str(label)
            ax.text(box[0], box[1] - 2, text, color=colour, fontsize=8, va="bottom",
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=0.5))
        ax.set_title(f"{frame.shape[1]}x{frame.shape[0]}, {len(target['labels'])} instances", fontsize=8)
    fig.tight_layout()
    return fig


def plot_loss_curves(logs: dict, smooth: int = 5):
    """Training losses per step: the total and each head's loss, one panel per stage.

    logs: stage label -> DataFrame of ``log.csv`` (``step``, ``loss``, ``loss_*``).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(logs), figsize=(5 * len(logs), 3.2), squeeze=False)
    for ax, (label, df) in zip(axes[0], logs.items()):
        for column in ["loss"] + [c for c in df.columns if c.startswith("loss_")]:
            values = df[column].rolling(smooth, min_periods=1).mean()
            ax.plot(df["step"], values, label=column, linewidth=2 if column == "loss" else 1)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- masks over frames


def plot_masks_over_frames(seq, rows: dict, frames: list | None = None, year: str | None = None):
    """Figs. 6-8 style: one column per frame (index on top), one row per mask source.

    rows: row label -> prediction folder (``<folder>/<seq>/<frame>.png``) or ``"ground truth"``
    -> ``None`` (the annotations).
    """
    frames = frames or pick_frames(seq.num_frames)
    year = year or seq.year
    fig, axes = _grid(len(rows), len(frames))
    for r, (label, folder) in enumerate(rows.items()):
        for c, i in enumerate(frames):
            ids = seq.read_mask(i) if folder is None else read_mask(seq.result_path(folder, i), year)
            axes[r, c].imshow(overlay(seq.read_frame(i), ids))
            if r == 0:
                axes[r, c].set_title(f"{i}", fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(seq.name, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the Conv-GRU's gates


def gate_maps(model, seq, level: int = 0, gate: str = "z", last: int | None = None) -> list:
    """Run the (offline) model over a sequence with its memory carried and return, per frame,
    the channel mean of gate ``z`` (update, eq. 1a) or ``r`` (reset, eq. 1b) at pyramid ``level``
    (0 = P2): a list of ``[H_l, W_l]`` arrays. Online fine-tuning freezes backbone and Conv-GRU,
    so these are also the gates of the online model."""
    from lipnb.report.memory_stats import carried_features

    return [ff.gates[level][gate][0].mean(0).cpu().numpy() for ff in carried_features(model, seq, last)]


def plot_gate_maps(seq, maps: list, frames: list | None = None, gate: str = "z"):
    """Frames (with the true masks) above the mean update-gate map of each frame."""
    frames = frames or pick_frames(len(maps))
    lo, hi = float(np.min([maps[i].min() for i in frames])), float(np.max([maps[i].max() for i in frames]))
    fig, axes = _grid(2, len(frames))
    for c, i in enumerate(frames):
        axes[0, c].imshow(overlay(seq.read_frame(i), seq.read_mask(i) if seq.fully_annotated else
                                  np.zeros(seq.frame_size, np.uint8)))
        axes[0, c].set_title(f"{i}", fontsize=9)
        im = axes[1, c].imshow(maps[i], cmap="magma", vmin=lo, vmax=hi)  # one colour scale for all frames
    axes[0, 0].set_ylabel("frame + truth", fontsize=8)
    axes[1, 0].set_ylabel(f"mean {gate} gate (P2)", fontsize=8)
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8)
    fig.suptitle(f"{seq.name}: Conv-GRU {'update' if gate == 'z' else 'reset'} gate, "
                 f"{'1 = take the new candidate' if gate == 'z' else ''}", fontsize=9)
    return fig


SOURCE_COLOURS = {"paper": "tab:gray", "this run": "tab:orange"}  # other sources (earlier runs): purple


def plot_tables_summary(tables: dict):
    """Bar chart: J&F Mean of every row of Tables 1-3: the paper grey, this run orange (its
    baselines too), earlier runs purple."""
    import matplotlib.pyplot as plt

    heights = [max(2, len(df)) for df, _ in tables.values()]  # one panel per table, stacked: readable labels
    fig, axes = plt.subplots(len(tables), 1, figsize=(8, 0.8 + 0.3 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, (df, _)) in zip(axes[:, 0], tables.items()):
        colours = [SOURCE_COLOURS.get(s.split(" (")[0], "tab:purple") for s in df["Source"]]
        ax.barh(df["Method"], df["J&F-Mean"], color=colours)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_title(f"{name}: J&F Mean (%)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def plot_examples(dataset, names: list, predictions, k: int = 5, year: str | None = None):
    """Fig. 1 style: one row per sequence, ``k`` frames spread over it, predicted masks drawn."""
    fig, axes = _grid(len(names), k)
    for r, name in enumerate(names):
        seq = dataset[name]
        frames = pick_frames(seq.num_frames, k)
        for c, i in enumerate(frames):
            ids = read_mask(seq.result_path(predictions, i), year or seq.year)
            axes[r, c].imshow(overlay(seq.read_frame(i), ids))
            axes[r, c].set_title(f"{name} {i}", fontsize=8)
    fig.tight_layout()
    return fig
