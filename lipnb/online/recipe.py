"""Choosing the online recipe on training videos, so that the validation videos stay for scoring.

The paper gives the online fine-tuning's caps and its early-stopping rule but not its learning
rate, and says nothing of frame 0's state. Candidates (:class:`OnlineConfig` variants) are
each run on a few *training* sequences, cut to their first ``max_frames`` frames, and scored
with J&F against the training masks in memory (no files); the best mean wins. Each model of
Table 3 gets its recipe from the same candidates and sequences, so neither arm is tuned more::

    best, rows = choose_recipe(model, davis_train, ["bear", "bmx-bumps"], {"lr=0.01": cfg, ...})
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from lipnb.data.davis import DavisDataset
from lipnb.metrics.evaluation import score_frame
from lipnb.model import LIP

from .config import OnlineConfig
from .inference import object_ids_of, segment_sequence


def spread(names: list, k: int) -> list:
    """``k`` names spread evenly over the sorted ``names`` (all of them when ``k >= len``)."""
    names = sorted(names)
    if k >= len(names):
        return names
    return [names[round(i * (len(names) - 1) / max(k - 1, 1))] for i in range(k)]


def score_sequence(model: LIP, dataset: DavisDataset, name: str, cfg: OnlineConfig,
                   max_frames: int) -> dict:
    """Segment ``name``'s first ``max_frames`` frames with ``cfg``; J&F over frames 1.. (percent)
    and the fine-tuning's iterations."""
    seq = dataset[name]
    n = min(seq.num_frames, max_frames)
    first = seq.first_mask()
    object_ids = object_ids_of(first, f"{name}: first mask")
    j, f = [], []

    def write(i: int, ids: np.ndarray) -> None:  # ids come at the annotations' size
        if i == 0:
            return
        js, fs = score_frame(seq.read_mask(i), ids, object_ids)
        j.append(js.mean())
        f.append(fs.mean())

    result = segment_sequence(model, seq.read_frame, n, first, write, cfg, name, progress=False)
    jm, fm = 100 * float(np.mean(j)), 100 * float(np.mean(f))
    return {"sequence": name, "frames": n, "J&F": (jm + fm) / 2, "J": jm, "F": fm,
            "finetune_iters": result.finetune_iters, "seconds": result.finetune_s + result.inference_s}


def choose_recipe(model: LIP, dataset: DavisDataset, sequences: list, candidates: dict,
                  max_frames: int = 25, log: Optional[callable] = print) -> tuple[str, list]:
    """Run every candidate on ``sequences`` of ``dataset`` (training videos).

    Returns ``(best name, rows)``: one row per (candidate, sequence) with its J&F, and the best
    candidate by mean J&F over the sequences (the first listed wins a tie).
    """
    rows, means = [], {}
    for label, cfg in candidates.items():
        scores = [dict(candidate=label, **score_sequence(model, dataset, s, cfg, max_frames)) for s in sequences]
        rows += scores
        means[label] = float(np.mean([r["J&F"] for r in scores]))
        if log:
            log(f"  recipe {label}: J&F {means[label]:.1f} on {len(sequences)} training sequences "
                f"(fine-tuning {', '.join(str(r['finetune_iters']) for r in scores)} it)")
    best = max(means, key=lambda k: (means[k], -list(means).index(k)))
    return best, rows
