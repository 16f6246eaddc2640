"""Region similarity J: the Jaccard index (intersection over union) of two masks.

    J = |M ∩ G| / |M ∪ G|,   J = 1 when both masks are empty,

as the DAVIS benchmark defines it (Perazzi et al. 2016; ``db_eval_iou`` in the toolkit).
"""

from __future__ import annotations

import numpy as np


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """J of one frame: ``gt``, ``pred`` boolean masks [H, W] -> float in [0, 1]."""
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union
