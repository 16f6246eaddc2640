"""Online inference: from an offline model and the first frame's masks to masks for every frame
(paper §3.3, §4.2, §5.1).

Per sequence, on a copy of the offline model:

1. fine-tune on frame 0 (:class:`~lipnb.online.finetune.OnlineFineTuner`); its features are
   computed once and its memory state starts the propagation;
2. frame by frame, with the memory state carried: candidates per id (:func:`~.detect.detect`),
   location continuity then one maximum (:func:`~.constraints.select_instances`), masks of the
   kept detections pasted at the output resolution and overlaps resolved by id score
   (:func:`~.compose.compose_label_map`);
3. the id-head refresh on the frame's confident detections (:class:`~.refresh.IdHeadRefresher`).

Frame 0's output is the given mask. :func:`segment_sequence` works on any frames;
:func:`infer_davis` runs a DAVIS split and writes per-sequence timing beside the predictions.
"""

from __future__ import annotations

import copy
import csv
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from lipnb.data.davis import DavisDataset, resize_mask
from lipnb.model import LIP

from .compose import compose_label_map
from .config import OnlineConfig
from .constraints import Kept, select_instances
from .detect import detect, instance_masks
from .finetune import OnlineFineTuner, first_frame_targets
from .refresh import IdHeadRefresher

TIMING_NAME = "timing"  # <results>/timing.json and timing.csv, beside the sequence folders


@dataclass
class SequenceResult:
    """Per-sequence record (written to timing.json / timing.csv)."""

    name: str
    num_frames: int
    num_objects: int
    finetune_iters: int
    finetune_stopped_early: bool
    finetune_s: float  # frame 0: features once + fine-tuning
    inference_s: float  # frames 1..N-1: network, constraints, masks, refresh, PNG writing
    inference_fps: float
    refresh_runs: int  # frames whose confident detections refreshed the id head
    refresh_iters: int  # refresh optimiser steps, summed over frames
    refresh_s: float
    found: float  # fraction of (frame, object) pairs, frames 1..N-1, with a kept detection
    finetune_losses: dict


def to_image(frame: np.ndarray, device) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float ``[3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.array(frame, dtype=np.uint8)).to(device).permute(2, 0, 1).float().div_(255)


def object_ids_of(first_mask: np.ndarray, where: str = "first mask") -> list[int]:
    ids = [int(i) for i in np.unique(first_mask) if i != 0]
    if not ids:
        raise ValueError(f"{where} has no object: every pixel is background (0)")
    return ids


def segment_sequence(
    model: LIP,
    read_frame: Callable[[int], np.ndarray],
    num_frames: int,
    first_mask: np.ndarray,
    write: Callable[[int, np.ndarray], None],
    cfg: Optional[OnlineConfig] = None,
    name: str = "sequence",
    progress: bool = True,
    on_frame: Optional[Callable] = None,
) -> SequenceResult:
    """Segment one video. ``model`` itself is not changed (a copy is fine-tuned).

    Args:
        read_frame: ``i`` -> frame ``i``, uint8 ``[H, W, 3]``.
        first_mask: ``[H0, W0]`` object ids of frame 0; ``(H0, W0)`` is the output resolution.
        write: called with ``(i, ids uint8 [H0, W0])`` for every frame, 0 included.
        on_frame: called with ``(i, fine-tuned model, detections or None on frame 0, tracked ids)``
            after each frame's output (e.g. :class:`lipnb.lab.oracle.OracleFrames`).
    """
    from tqdm.auto import tqdm

    cfg = cfg or OnlineConfig()
    object_ids = object_ids_of(first_mask, f"{name}: first mask")
    out_size = tuple(first_mask.shape)
    model = copy.deepcopy(model).eval()
    device = next(model.parameters()).device

    # ---- frame 0: the given mask, and fine-tuning on it (§4.2); read before anything is written
    frame0 = read_frame(0)
    write(0, first_mask.astype(np.uint8))
    mask0 = resize_mask(first_mask.astype(np.uint8), frame0.shape[:2])  # targets at the frames' size
    missing = [k for k in object_ids if not (mask0 == k).any()]
    if missing:
        warnings.warn(f"{name}: objects {missing} vanish at the frames' resolution; they are not tracked",
                      stacklevel=2)
    tracked = [k for k in object_ids if k not in missing]
    if not tracked:
        raise ValueError(f"{name}: no object of the first mask is visible at the frames' resolution")
    tuner = OnlineFineTuner(model, cfg)
    fit = tuner.fit(to_image(frame0, device), first_frame_targets(mask0, tracked, cfg.box_expand), progress)
    state = carried(fit.features.state, cfg.memory_alpha)
    labels = list(range(1, len(tracked) + 1))  # network label k is object tracked[k - 1]
    if on_frame:
        on_frame(0, model, None, tracked)
    previous = {k: Kept(-1, 1.0, tuple(map(float, b))) for k, b in zip(labels, fit.features.targets[0]["boxes"])}

    # ---- frames 1..N-1 (§3.3)
    refresher = IdHeadRefresher(model, cfg)
    refresh_runs = refresh_iters = found = 0
    refresh_s = 0.0
    t0 = time.perf_counter()
    for i in tqdm(range(1, num_frames), desc=name, leave=False, disable=not progress):
        frame = read_frame(i)
        if frame.shape != frame0.shape:  # the memory state has the first frame's shape
            raise ValueError(f"{name}: frame {i} is {frame.shape[1]}x{frame.shape[0]}, frame 0 is "
                             f"{frame0.shape[1]}x{frame0.shape[0]}; all frames must have one size")
        with torch.no_grad():
            ff = model.features([to_image(frame, device)], state)
        state = carried(ff.state, cfg.memory_alpha)
        det = detect(model, ff, cfg.min_score)
        kept = select_instances(det.boxes, det.id_scores, labels, previous, min_score=cfg.min_score,
                                top_k=cfg.top_k, continuity_score=cfg.continuity_score,
                                continuity_iou=cfg.continuity_iou, sources=det.sources)
        write(i, label_map(model, det, kept, tracked, out_size, cfg.mask_threshold))
        if on_frame:
            on_frame(i, model, det, tracked)
        found += len(kept)
        if cfg.refresh:
            r = refresher(det, kept)
            refresh_runs += r.iterations > 0
            refresh_iters += r.iterations
            refresh_s += r.seconds
        previous = kept
    inference_s = time.perf_counter() - t0
    n = num_frames - 1
    return SequenceResult(name, num_frames, len(tracked), fit.iterations, fit.stopped_early, fit.seconds,
                          inference_s, n / inference_s if n and inference_s > 0 else 0.0, refresh_runs,
                          refresh_iters, refresh_s, found / (n * len(tracked)) if n else 1.0, fit.losses)


def carried_features(model, seq, last: int | None = None):
    """Play ``seq``'s frames ``0..last`` through ``model`` (eval, no gradient) with the memory
    carried from frame to frame; yields each frame's :class:`FrameFeatures` (``.gates``: one dict
    ``{"z", "r"}`` of ``[1, C_h, H_l, W_l]`` per level, ``.features``: the levels the heads see).
    Raises ValueError for a model without a visual memory."""
    device = next(model.parameters()).device
    model = model.eval()
    n = seq.num_frames if last is None else min(seq.num_frames, last + 1)
    state = None
    with torch.no_grad():
        for i in range(n):
            ff = model.features([to_image(seq.read_frame(i), device)], state)
            if not ff.gates:
                raise ValueError("the model has no visual memory (use_memory=False): no gates")
            state = ff.state
            yield ff


def carried(state: Optional[list], alpha: float) -> Optional[list]:
    """The state passed to the next frame: ``alpha`` times this frame's (5 ``[1, C_h, H_l, W_l]``)."""
    if state is None or alpha == 1.0:
        return state
    return [alpha * h for h in state]


def label_map(model: LIP, det, kept: dict, object_ids: list[int], out_size, threshold: float) -> np.ndarray:
    """The kept detections of one frame -> ids ``uint8 [H0, W0]`` (network label k -> ``object_ids[k-1]``)."""
    rows = [v.index for v in kept.values()]
    masks = instance_masks(model, det.ff, det.boxes[rows], det.labels[rows], out_size)
    ids = [object_ids[k - 1] for k in kept]
    scores = [v.score for v in kept.values()]
    return compose_label_map(masks.cpu(), ids, scores, out_size, threshold).numpy()


def infer_davis(
    model: LIP,
    dataset: DavisDataset,
    out_dir: str | Path,
    cfg: Optional[OnlineConfig] = None,
    sequences: Optional[list] = None,
    progress: bool = True,
    resume: bool = False,
    on_sequence: Optional[Callable] = None,
    jobs: int = 1,
) -> list[SequenceResult]:
    """Segment every sequence of ``dataset`` (or ``sequences``) into ``out_dir/<seq>/<frame>.png``
    at the annotations' resolution; per-sequence timing goes to ``out_dir/timing.{json,csv}``,
    rewritten after each sequence. ``resume``: sequences already in ``timing.json`` (finished by
    an earlier, interrupted call with the same model and settings) are kept, not run again.
    ``on_sequence``: called with each sequence (a :class:`~lipnb.data.davis.DavisSequence`) before
    it runs; what it returns becomes :func:`segment_sequence`'s ``on_frame`` (the hook of the lab's
    oracle, :func:`lipnb.lab.oracle.oracle_hook`). ``jobs``: sequences segmented at once, each in
    its own process (:mod:`lipnb.online.pool`; CPU, without ``on_sequence``)."""
    from tqdm.auto import tqdm

    from .pool import map_on_copies

    out_dir, cfg = Path(out_dir), cfg or OnlineConfig()
    names = list(sequences or dataset.sequences)
    timing = out_dir / f"{TIMING_NAME}.json"
    done = {r["name"]: SequenceResult(**r) for r in json.loads(timing.read_text())} if resume and timing.is_file() else {}
    todo = [n for n in names if n not in done]
    if on_sequence is not None and jobs > 1:
        raise ValueError("infer_davis: on_sequence hooks run in this process only; use jobs=1")
    tasks = [(dataset, name, out_dir, cfg, progress and jobs <= 1, on_sequence) for name in todo]
    for _, result in tqdm(map_on_copies(model, _segment_davis, tasks, jobs, ordered=False), total=len(todo),
                          desc="sequences", disable=not progress):
        done[result.name] = result
        write_timing(out_dir, [done[n] for n in names if n in done])
    return [done[n] for n in names]


def _segment_davis(model: LIP, dataset: DavisDataset, name: str, out_dir: Path, cfg: OnlineConfig,
                   progress: bool, on_sequence: Optional[Callable]) -> SequenceResult:
    """One sequence of :func:`infer_davis`, its masks written under ``out_dir/<name>/``."""
    seq = dataset[name]
    on_frame = on_sequence(seq) if on_sequence else None
    return segment_sequence(model, seq.read_frame, seq.num_frames, seq.first_mask(),
                            lambda i, ids: seq.write_result(out_dir, i, ids), cfg, name, progress, on_frame)


def write_timing(out_dir: str | Path, results: list[SequenceResult]) -> tuple[Path, Path]:
    """``out_dir/timing.json`` (all fields) and ``timing.csv`` (one row per sequence)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in results]
    json_path, csv_path = out_dir / f"{TIMING_NAME}.json", out_dir / f"{TIMING_NAME}.csv"
    json_path.write_text(json.dumps(rows, indent=1))
    columns = [k for k in rows[0] if k != "finetune_losses"] if rows else []
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return json_path, csv_path
