"""Figures in the spirit of the paper's Figs. 1, 6, 7 and 8, training curves, gate maps, and the drawings of
the notebooks' teaching cells (anchors, gradient reach, the class-specific copy, the constraints).

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


# ----------------------------------------------------------------------------- teaching figures (notebooks 01-04)


def _as_image(frame) -> np.ndarray:
    """uint8 ``[H, W, 3]`` from a uint8 ``[H, W, 3]`` array or a float ``[3, H, W]`` in [0, 1] (a CPU tensor too)."""
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = (np.clip(a.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
    return a


def _no_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _box(ax, b, **kw) -> None:
    import matplotlib.patches as patches

    x1, y1, x2, y2 = (float(v) for v in b)
    ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, **kw))


def plot_frames(frames: list, titles: list, cell: float = 1.6):
    """A row of frames (uint8 ``[H, W, 3]`` or float ``[3, H, W]`` in [0, 1]) with titles."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(cell * 1.4 * len(frames), cell), squeeze=False)
    for ax, f, t in zip(axes[0], frames, titles):
        ax.imshow(_as_image(f))
        ax.set_title(t, fontsize=8)
        _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_anchors(image: np.ndarray, anchors, ratios, size, name: str = ""):
    """One pyramid level's anchors over ``image`` (uint8, the network's input size): the grid of
    anchor centres and every aspect ratio's anchor at the centre location.
    ``anchors``: ``[H_l, W_l, A, 4]`` boxes x1y1x2y2; ``ratios``: the A aspect ratios (h/w)."""
    import matplotlib.pyplot as plt

    a = np.asarray(anchors, dtype=float)
    h, w = a.shape[:2]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow(image)
    centres = ((a[..., 0, :2] + a[..., 0, 2:]) / 2).reshape(-1, 2)
    ax.scatter(centres[:, 0], centres[:, 1], s=3, c="white", edgecolors="black", linewidths=0.3)
    for k, box in enumerate(a[h // 2, w // 2]):
        _box(ax, box, edgecolor=plt.cm.tab10(k), linewidth=1.5, label=f"ratio h/w {ratios[k]}")
    ax.set_title(f"{name}: {h}x{w} locations x {a.shape[2]} anchors of size {size}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.set_xlim(min(-10, a[..., 0].min()), max(image.shape[1] + 10, a[..., 2].max()))
    ax.set_ylim(max(image.shape[0] + 10, a[..., 3].max()), min(-10, a[..., 1].min()))
    return fig


def plot_reach(reach, bptt_cut: int | None):
    """``reach``: DataFrame ``[L_t, H_s]`` of gradient norms ||dL_t / dH_s||, drawn on a log scale
    with red lines where back-propagation through time is cut."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    values = np.log10(reach.values + 1e-12)
    im = ax.imshow(values, cmap="viridis", vmin=values.max() - 6)
    ax.set_xticks(range(reach.shape[1]), reach.columns, fontsize=7)
    ax.set_yticks(range(reach.shape[0]), reach.index, fontsize=7)
    ax.set_xlabel("Conv-GRU output of frame s")
    ax.set_ylabel("loss of frame t")
    for c in range(bptt_cut or reach.shape[0], reach.shape[0], bptt_cut or 1):
        ax.axvline(c - 0.5, color="red", linewidth=1)
        ax.axhline(c - 0.5, color="red", linewidth=1)
    ax.set_title(f"log10 ||dL_t / dH_s||, cut every {bptt_cut} frames", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_class_specific(before: np.ndarray, after: np.ndarray):
    """A box predictor's weight ``[4 * slots, features]`` before and after the class-specific copy
    (Fig. 5): one column per output (dx, dy, dw, dh per slot); the foreground slot repeats."""
    import matplotlib.pyplot as plt

    before, after = np.asarray(before), np.asarray(after)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [before.shape[0], after.shape[0]]})
    lim = float(np.abs(after).max())
    for ax, w, title in ((axes[0], before, "class-agnostic: bg, fg"),
                         (axes[1], after, "class-specific: bg, fg copied per object")):
        ax.imshow(w[:, :64].T, aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim)
        slots = w.shape[0] // 4
        ax.set_xticks([4 * s + 1.5 for s in range(slots)], ["bg"] + [f"id {s}" for s in range(1, slots)], fontsize=7)
        for s in range(1, slots):
            ax.axvline(4 * s - 0.5, color="black", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("input features (first 64)", fontsize=7)
    fig.suptitle("bbox_pred.weight, one column per output (dx, dy, dw, dh per slot)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_constraints(image: np.ndarray, boxes, candidates: dict, allowed: dict, previous: dict, kept: dict,
                     title: str = ""):
    """One panel per id of one frame: its candidates without continuity (thin, in the id's colour),
    its box in the previous frame (dotted white), candidates location continuity removes (dashed
    red), the detection kept (thick). ``boxes``: ``[D, 4]``; ``candidates`` / ``allowed``: id ->
    detection indices; ``previous`` / ``kept``: id -> an object with ``.box`` (and ``.score``)."""
    import matplotlib.pyplot as plt

    boxes = np.asarray(boxes)
    ids = list(candidates)
    fig, axes = plt.subplots(1, len(ids), figsize=(4 * len(ids), 3.4), squeeze=False)
    for ax, k in zip(axes[0], ids):
        colour = colorize(np.array([k], dtype=np.uint8))[0] / 255
        removed = [i for i in candidates[k] if i not in allowed[k]]
        ax.imshow(image)
        for i in candidates[k]:
            _box(ax, boxes[i], edgecolor=colour, linewidth=0.8)
        for i in removed:
            _box(ax, boxes[i], edgecolor="red", linewidth=1.2, linestyle="--")
        if k in previous:
            _box(ax, previous[k].box, edgecolor="white", linewidth=1.2, linestyle=":")
        if k in kept:
            _box(ax, kept[k].box, edgecolor=colour, linewidth=3)
        got = f"kept score {kept[k].score:.2f}" if k in kept else "not found"
        ax.set_title(f"id {k}: {len(candidates[k])} candidates, {len(removed)} removed, {got}", fontsize=8)
        _no_ticks(ax)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_gates_dynamic_vs_zero(seq, dynamic: list, zero: list, frames: list | None = None):
    """Frames with their true masks above the mean update gate z (P2) with the state carried and
    with it held at zero; one colour scale for both rows."""
    import matplotlib.pyplot as plt

    frames = frames or pick_frames(len(dynamic))
    lo = min(float(m[i].min()) for m in (dynamic, zero) for i in frames)
    hi = max(float(m[i].max()) for m in (dynamic, zero) for i in frames)
    fig, axes = plt.subplots(3, len(frames), figsize=(2.1 * len(frames), 4.6), squeeze=False)
    for c, i in enumerate(frames):
        axes[0, c].imshow(overlay(seq.read_frame(i), seq.read_mask(i)))
        axes[0, c].set_title(f"frame {i}", fontsize=8)
        axes[1, c].imshow(dynamic[i], cmap="magma", vmin=lo, vmax=hi)
        im = axes[2, c].imshow(zero[i], cmap="magma", vmin=lo, vmax=hi)
        for r in range(3):
            _no_ticks(axes[r, c])
    for r, label in enumerate(("frame + truth", "z, dynamic", "z, zero state")):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(im, ax=axes[1:, :].ravel().tolist(), shrink=0.8)
    return fig
