"""Where does one model beat another? Paired per-sequence differences of two evaluations, set beside
two traits of each sequence read from its ground truth (issue 21: on which videos the memory costs).

* ``motion``: 1 - the mean IoU of consecutive true masks (0: the object does not move or change);
* ``area``: the mean share of the frame the object covers (every 5th frame).

::

    diffs = paired_differences(evaluation_a, evaluation_b)      # {sequence: J&F_a - J&F_b}, in points
    rows = [{"sequence": s, **sequence_traits(data[s])} for s in diffs]
    rho = spearman([r["motion"] for r in rows], [diffs[r["sequence"]] for r in rows])
"""

from __future__ import annotations

import numpy as np

TRAITS = ("motion", "area")


def per_sequence_jf(evaluation: dict) -> dict:
    """An evaluation JSON (``lipnb evaluate`` / ``lipnb infer``) -> ``{sequence: J&F in points}``,
    each sequence the mean over its objects."""
    scores: dict = {}
    for row in evaluation["per_object"]:
        scores.setdefault(row["name"].rsplit("_", 1)[0], []).append(50 * (row["J-Mean"] + row["F-Mean"]))
    return {name: float(np.mean(v)) for name, v in scores.items()}


def paired_differences(a: dict, b: dict) -> dict:
    """``{sequence: J&F(a) - J&F(b)}`` over the sequences both evaluations scored."""
    ja, jb = per_sequence_jf(a), per_sequence_jf(b)
    common = [s for s in ja if s in jb]
    if not common:
        raise ValueError("the two evaluations share no sequence")
    return {s: ja[s] - jb[s] for s in common}


def sequence_traits(seq, area_every: int = 5) -> dict:
    """``{"motion", "area"}`` of a sequence with a true mask on every frame (module docstring)."""
    if len(seq.annotation_paths) < 2:
        raise ValueError(f"sequence {seq.name!r}: motion needs a true mask on every frame")
    masks = [seq.read_mask(i) > 0 for i in range(seq.num_frames)]
    ious = [(a & b).sum() / union if (union := (a | b).sum()) else 1.0 for a, b in zip(masks, masks[1:])]
    area = [m.mean() for m in masks[::area_every]]
    return {"motion": float(1 - np.mean(ious)), "area": float(np.mean(area))}


def spearman(x, y) -> float:
    """Spearman's rank correlation (ranks by order; ties broken by position)."""
    rx, ry = (np.argsort(np.argsort(np.asarray(v, dtype=float))) for v in (x, y))
    return float(np.corrcoef(rx, ry)[0, 1])
