"""Small, cheap illustrations for the notebooks' teaching cells (one frame, one clip, a tiny model).

Nothing here writes into a run's folders or draws from the global random generators: every
function that could (weight initialisation, RoI sampling) runs under :func:`private_rng`, so a
notebook's batch stages compute the same numbers with or without the teaching cells.
"""

from __future__ import annotations

import contextlib
import copy
import random

import numpy as np
import torch
import torch.nn.functional as F


@contextlib.contextmanager
def private_rng(seed: int = 0):
    """Run a block on its own torch / numpy / random state; the global states come back unchanged."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def small_model(num_ids: int = 8, seed: int = 0, **overrides):
    """A freshly initialised LIP of the ``smoke`` profile (ResNet-18 at 1/4 width, 64 channels)."""
    from lipnb.model import LIP, LIPConfig

    with private_rng(seed):
        return LIP(LIPConfig.profile("smoke", num_ids=num_ids, **overrides))


def parts_table(model):
    """Parameters of each part of a LIP, in the order the data walks through them."""
    import pandas as pd

    rh = model.roi_heads
    parts = {"backbone: trunk (ResNet / EfficientNet)": model.backbone.body,
             "backbone: FPN (P2..P6)": model.backbone.fpn,
             "visual memory: Conv-GRU per level (eq. 1)": model.memory,
             "path augmentation (N2..N6)": model.path_aug,
             "RPN (5 ratios per location)": model.rpn,
             "box head (4 conv + 1 fc)": rh.box_head,
             "id head (last linear layer + shortcut)": rh.id_head,
             "box predictor (+ shortcut)": rh.box_predictor,
             "mask head (4 conv)": rh.mask_head,
             "mask predictor (deconv, 1x1, + shortcut)": rh.mask_predictor}
    rows = [(name, sum(p.numel() for p in part.parameters()) if part is not None else 0)
            for name, part in parts.items()]
    df = pd.DataFrame(rows, columns=["part", "parameters"])
    assert df["parameters"].sum() == sum(p.numel() for p in model.parameters())  # nothing left out
    return df


def walk_shapes(model, image: torch.Tensor, state=None):
    """One frame through backbone, memory and path augmentation (eval: resized to the test size).
    Returns ``(table of P, H, N shapes per level, FrameFeatures)``."""
    import pandas as pd

    seen = {}
    hooks = [model.backbone.register_forward_hook(lambda m, i, o: seen.__setitem__("P", list(o.values())))]
    if model.memory is not None:
        hooks.append(model.memory.register_forward_hook(lambda m, i, o: seen.__setitem__("H", o[0])))
    model.eval()
    try:
        with torch.no_grad():
            ff = model.features([image], state)
    finally:
        for h in hooks:
            h.remove()
    n = list(ff.features.values())
    stride = [ff.images.tensors.shape[-1] / p.shape[-1] for p in seen["P"]]
    rows = [(f"P{l + 2}", f"1/{s:.0f}", tuple(p.shape), tuple(h.shape), tuple(x.shape))
            for l, (s, p, h, x) in enumerate(zip(stride, seen["P"], seen.get("H", seen["P"]), n))]
    return pd.DataFrame(rows, columns=["level", "stride", "P (FPN)", "H (Conv-GRU)", "N (path aug.)"]), ff


def input_image(model, ff) -> np.ndarray:
    """The frame as the network saw it (resized, unpadded), back to uint8 ``[h, w, 3]``."""
    t = ff.images.tensors[0].detach().cpu()
    mean = torch.tensor(model.transform.image_mean)[:, None, None]
    std = torch.tensor(model.transform.image_std)[:, None, None]
    h, w = ff.image_sizes[0]
    return ((t * std + mean)[:, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def plot_anchors(model, ff, level: int = 2, image: np.ndarray | None = None):
    """The anchors of pyramid ``level`` (0 = P2): the grid of anchor centres and, at the centre
    location, the anchors of every aspect ratio. ``image``: uint8 frame of ``ff``'s input size."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    gen = model.rpn.anchor_generator
    feats = list(ff.features.values())
    anchors = gen(ff.images, feats)[0]  # [sum_l H_l W_l A, 4]
    per_level = [f.shape[-2] * f.shape[-1] * gen.num_anchors_per_location()[l] for l, f in enumerate(feats)]
    a = anchors.split(per_level)[level].view(*feats[level].shape[-2:], -1, 4)  # [H_l, W_l, A, 4]
    h, w = feats[level].shape[-2:]
    fig, ax = plt.subplots(figsize=(6, 4))
    if image is not None:
        ax.imshow(image)
    centres = ((a[..., 0, :2] + a[..., 0, 2:]) / 2).reshape(-1, 2)
    ax.scatter(centres[:, 0], centres[:, 1], s=3, c="white", edgecolors="black", linewidths=0.3)
    for k, box in enumerate(a[h // 2, w // 2].tolist()):
        ax.add_patch(patches.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                                       edgecolor=plt.cm.tab10(k), linewidth=1.5,
                                       label=f"ratio h/w {model.cfg.aspect_ratios[k]}"))
    ax.set_title(f"P{level + 2}: {h}x{w} locations x {a.shape[2]} anchors of size {model.cfg.anchor_sizes[level]}",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.set_xlim(min(-10, float(a[..., 0].min())), max(ff.images.tensors.shape[-1] + 10, float(a[..., 2].max())))
    ax.set_ylim(max(ff.images.tensors.shape[-2] + 10, float(a[..., 3].max())), min(-10, float(a[..., 1].min())))
    return fig


def gru_by_the_equations(cell, x: torch.Tensor, h: torch.Tensor):
    """Eq. 1a-1d computed here from the cell's weight tensors, independently of ``ConvGRUCell.forward``:
    returns ``(h', z, r)``."""
    W_xz, W_xr, W_x = cell.conv_x.weight.chunk(3, dim=0)
    W_hz, W_hr = cell.conv_h_zr.weight.chunk(2, dim=0)
    W_h = cell.conv_h.weight
    conv = lambda w, t: F.conv2d(t, w, padding=w.shape[-1] // 2)  # noqa: E731  "*" in the paper
    z = torch.sigmoid(cell.gn_z(conv(W_hz, h) + conv(W_xz, x)))  # (1a)
    r = torch.sigmoid(cell.gn_r(conv(W_hr, h) + conv(W_xr, x)))  # (1b)
    h_tilde = torch.tanh(cell.gn_h(conv(W_h, r * h) + conv(W_x, x)))  # (1c)
    return (1 - z) * h + z * h_tilde, z, r  # (1d)


# ----------------------------------------------------------------------------- 02: BPTT


def bptt_gradients(model, frames: list, targets: list, bptt_cut: int | None = 4, seed: int = 0):
    """Where truncated BPTT lets each frame's loss reach (one clip, batch of 1, training mode).

    Returns ``(reach, parts)``: ``reach[t, s]`` = ||dL_t / dH_s|| (the Conv-GRU output of frame s,
    finest level), and ``parts[t, part]`` = ||dL_t / dparameters of part||; ``L_t`` is frame t's loss.
    """
    import pandas as pd

    from lipnb.model import detach_state

    hidden = []
    hook = model.memory.register_forward_hook(lambda m, i, o: hidden.append(o[0][0]))
    part_names = ["backbone", "memory", "rpn", "roi_heads"]
    params = {p: [q for q in getattr(model, p).parameters() if q.requires_grad] for p in part_names}
    model.train()
    losses, state = [], None
    try:
        with private_rng(seed):
            for t, (image, target) in enumerate(zip(frames, targets), start=1):  # LIP.forward_clip, frame by frame
                out, state = model([image], [target], state)
                losses.append(sum(out.values()))
                if bptt_cut and t % bptt_cut == 0:
                    state = detach_state(state)
    finally:
        hook.remove()
    T = len(frames)
    reach = np.zeros((T, T))
    parts = np.zeros((T, len(part_names)))
    for t, loss in enumerate(losses):
        flat = [q for p in part_names for q in params[p]]
        grads = torch.autograd.grad(loss, hidden + flat, retain_graph=True, allow_unused=True)
        reach[t] = [0.0 if g is None else float(g.norm()) for g in grads[:T]]
        rest = list(grads[T:])
        for j, p in enumerate(part_names):
            gs = [rest.pop(0) for _ in params[p]]
            parts[t, j] = float(torch.sqrt(sum((g.norm() ** 2 for g in gs if g is not None), torch.tensor(0.0))))
    frames_idx = [f"L_{t}" for t in range(1, T + 1)]
    reach_df = pd.DataFrame(reach, index=frames_idx, columns=[f"H_{s}" for s in range(1, T + 1)])
    parts_df = pd.DataFrame(parts, index=frames_idx, columns=[p + ("" if params[p] else " (frozen)") for p in part_names])
    return reach_df, parts_df


def plot_reach(reach, bptt_cut: int | None):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(np.log10(reach.values + 1e-12), cmap="viridis", vmin=np.log10(reach.values.max()) - 6)
    ax.set_xticks(range(reach.shape[1]), reach.columns, fontsize=7)
    ax.set_yticks(range(reach.shape[0]), reach.index, fontsize=7)
    ax.set_xlabel("Conv-GRU output of frame s")
    ax.set_ylabel("loss of frame t")
    if bptt_cut:
        for c in range(bptt_cut, reach.shape[0], bptt_cut):
            ax.axvline(c - 0.5, color="red", linewidth=1)
            ax.axhline(c - 0.5, color="red", linewidth=1)
    ax.set_title(f"log10 ||dL_t / dH_s||, cut every {bptt_cut} frames", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_frames(frames: list, titles: list, cell: float = 1.6):
    """A row of frames (tensors ``[3, H, W]`` in [0, 1] or uint8 arrays) with titles."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(cell * 1.4 * len(frames), cell), squeeze=False)
    for ax, f, t in zip(axes[0], frames, titles):
        if isinstance(f, torch.Tensor):
            f = (f.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        ax.imshow(f)
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- 03: Fig. 5, constraints, refresh


@torch.no_grad()
def class_specific_check(model, image: torch.Tensor, num_objects: int = 2, num_rois: int = 16, seed: int = 0):
    """Fig. 5 on a copy of ``model``: the last box / mask layers before and after
    :func:`lipnb.model.make_class_specific`, and the largest change of any id's box deltas and
    mask logits on ``num_rois`` proposals of ``image`` (0 up to float rounding).

    Returns ``(before, after, shapes table, max |change| of deltas, of mask logits)`` where
    before/after hold the ``bbox_pred`` and ``mask_fcn_logits`` weights."""
    import pandas as pd

    from lipnb.model import make_class_specific, reset_id_head

    m = copy.deepcopy(model).eval()
    with private_rng(seed):
        reset_id_head(m, num_objects, generator=torch.Generator().manual_seed(seed))
    rh = m.roi_heads
    ff = m.features([image])
    boxes = [m.rpn(ff.images, ff.features)[0][0][:num_rois]]
    rep, roi = rh.box_features(ff.features, boxes, ff.image_sizes)

    def snapshot():
        return {"bbox_pred": rh.box_predictor.bbox_pred.weight.clone(),
                "mask_fcn_logits": rh.mask_predictor.mask_fcn_logits.weight[:, :, 0, 0].clone(),
                "deltas": rh.box_deltas(rep, roi), "masks": rh.mask_logits(ff.features, boxes, ff.image_sizes)}

    before = snapshot()
    make_class_specific(m)
    after = snapshot()
    shapes = pd.DataFrame({"layer": ["box: bbox_pred.weight", "mask: mask_fcn_logits.weight"],
                           "class-agnostic (offline)": [tuple(before["bbox_pred"].shape), tuple(before["mask_fcn_logits"].shape)],
                           f"class-specific, {num_objects} objects": [tuple(after["bbox_pred"].shape),
                                                                      tuple(after["mask_fcn_logits"].shape)]})
    return (before, after, shapes, float((after["deltas"] - before["deltas"]).abs().max()),
            float((after["masks"] - before["masks"]).abs().max()))


def plot_class_specific(before: dict, after: dict):
    """The box layer's weight rows (4 per slot) before and after the copy: the foreground slot repeats."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [before["bbox_pred"].shape[0],
                                                                                 after["bbox_pred"].shape[0]]})
    lim = float(after["bbox_pred"].abs().max())
    for ax, w, title in ((axes[0], before["bbox_pred"], "class-agnostic: bg, fg"),
                         (axes[1], after["bbox_pred"], "class-specific: bg, fg copied per object")):
        ax.imshow(w[:, :64].T.numpy(), aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim)
        slots = w.shape[0] // 4
        ax.set_xticks([4 * s + 1.5 for s in range(slots)], ["bg"] + [f"id {s}" for s in range(1, slots)], fontsize=7)
        for s in range(1, slots):
            ax.axvline(4 * s - 0.5, color="black", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("input features (first 64)", fontsize=7)
    fig.suptitle("bbox_pred.weight, one column per output (dx, dy, dw, dh per slot)", fontsize=9)
    fig.tight_layout()
    return fig


def constraints_example(model, seq, cfg, frame: int = 1):
    """Online fine-tuning of a copy of ``model`` on frame 0 of ``seq`` (``cfg``'s settings), then
    frame ``frame``'s detections and the two constraints on them.

    Returns a dict: ``image`` (uint8, network input size), ``det`` (FrameDetections),
    ``previous`` ({id: Kept} from frame 0's boxes), ``kept`` (select_instances), and per id
    ``candidates`` (one maximum's candidates without continuity) and ``removed`` (dropped by
    location continuity); ``model`` is the fine-tuned copy."""
    from PIL import Image

    from lipnb.online import Kept, OnlineFineTuner, first_frame_targets, select_instances
    from lipnb.online.constraints import candidates_for_id
    from lipnb.online.detect import detect
    from lipnb.online.inference import object_ids_of, resize_mask, to_image

    m = copy.deepcopy(model).eval()
    device = next(m.parameters()).device
    frame0 = seq.read_frame(0)
    mask0 = resize_mask(seq.first_mask().astype(np.uint8), frame0.shape[:2])
    ids = [k for k in object_ids_of(mask0) if (mask0 == k).any()]
    with private_rng(cfg.seed):
        fit = OnlineFineTuner(m, cfg).fit(to_image(frame0, device), first_frame_targets(mask0, ids, cfg.box_expand))
        state = fit.features.state
        for i in range(1, frame):  # carry the memory up to the shown frame
            with torch.no_grad():
                state = m.features([to_image(seq.read_frame(i), device)], state).state
        with torch.no_grad():
            ff = m.features([to_image(seq.read_frame(frame), device)], state)
    labels = list(range(1, len(ids) + 1))
    previous = {k: Kept(-1, 1.0, tuple(map(float, b))) for k, b in zip(labels, fit.features.targets[0]["boxes"])}
    det = detect(m, ff, cfg.min_score)
    args = dict(min_score=cfg.min_score, top_k=cfg.top_k, continuity_score=cfg.continuity_score,
                continuity_iou=cfg.continuity_iou)
    candidates = {k: candidates_for_id(det.boxes, det.id_scores[:, k], None, **args) for k in labels}
    allowed = {k: candidates_for_id(det.boxes, det.id_scores[:, k], previous[k], **args) for k in labels}
    removed = {k: [i for i in candidates[k] if i not in allowed[k]] for k in labels}
    kept = select_instances(det.boxes, det.id_scores, labels, previous, sources=det.sources, **args)
    h, w = ff.image_sizes[0]
    image = np.asarray(Image.fromarray(seq.read_frame(frame)).resize((w, h), Image.BILINEAR))
    return {"image": image, "det": det, "previous": previous, "kept": kept, "candidates": candidates,
            "removed": removed, "labels": labels, "model": m, "frame": frame, "fit": fit, "args": args}


def plot_constraints(ex: dict, title: str = ""):
    """All candidates (thin, per id colour), the previous frame's box (dotted), candidates dropped by
    location continuity (red, dashed), the one-maximum pick (thick)."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    from lipnb.data.palette import colorize

    previous, det = ex["previous"], ex["det"]
    fig, axes = plt.subplots(1, len(ex["labels"]), figsize=(4 * len(ex["labels"]), 3.4), squeeze=False)
    for ax, k in zip(axes[0], ex["labels"]):
        colour = colorize(np.array([k], dtype=np.uint8))[0] / 255
        ax.imshow(ex["image"])

        def box(b, **kw):
            ax.add_patch(patches.Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, **kw))

        for i in ex["candidates"][k]:
            box(det.boxes[i].tolist(), edgecolor=colour, linewidth=0.8)
        for i in ex["removed"][k]:
            box(det.boxes[i].tolist(), edgecolor="red", linewidth=1.2, linestyle="--")
        if k in previous:
            box(previous[k].box, edgecolor="white", linewidth=1.2, linestyle=":")
        if k in ex["kept"]:
            box(ex["kept"][k].box, edgecolor=colour, linewidth=3)
        got = f"kept score {ex['kept'][k].score:.2f}" if k in ex["kept"] else "not found"
        ax.set_title(f"id {k}: {len(ex['candidates'][k])} candidates, {len(ex['removed'][k])} removed, {got}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"frame {ex['frame']}", fontsize=9)
    fig.tight_layout()
    return fig


def with_previous(ex: dict, previous: dict) -> dict:
    """``ex`` with the constraints applied again for another previous frame ``{id: Kept}``."""
    from lipnb.online import select_instances
    from lipnb.online.constraints import candidates_for_id

    det, args = ex["det"], ex["args"]
    allowed = {k: candidates_for_id(det.boxes, det.id_scores[:, k], previous.get(k), **args) for k in ex["labels"]}
    removed = {k: [i for i in ex["candidates"][k] if i not in allowed[k]] for k in ex["labels"]}
    kept = select_instances(det.boxes, det.id_scores, ex["labels"], previous, sources=det.sources, **args)
    return {**ex, "previous": previous, "removed": removed, "kept": kept}


def moved_box(ex: dict, k: int):
    """Id ``k``'s previous box mirrored through the frame's centre (a ``Kept`` with score 1)."""
    from lipnb.online import Kept

    h, w = ex["image"].shape[:2]
    x1, y1, x2, y2 = ex["previous"][k].box
    dx, dy = w - (x1 + x2), h - (y1 + y2)
    return Kept(-1, 1.0, (x1 + dx, y1 + dy, x2 + dx, y2 + dy))


@torch.no_grad()
def kept_id_scores(model, det, kept: dict) -> dict:
    """Each kept detection's id score recomputed by the (current) id head on the cached RoI features."""
    rh = model.roi_heads
    out = {}
    for k, v in kept.items():
        src = int(det.sources[v.index])
        out[k] = float(F.softmax(rh.id_head(det.rep[src:src + 1], det.roi[src:src + 1]), -1)[0, k])
    return out


# ----------------------------------------------------------------------------- 04: the update gate


def plot_gates_dynamic_vs_zero(seq, dynamic: list, zero: list, frames: list | None = None):
    """Frames with their true masks above the mean update gate z (P2) with the state carried and
    with it held at zero; one colour scale for both rows."""
    import matplotlib.pyplot as plt

    from lipnb.report.figures import overlay, pick_frames

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
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    for r, label in enumerate(("frame + truth", "z, dynamic", "z, zero state")):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(im, ax=axes[1:, :].ravel().tolist(), shrink=0.8)
    return fig
