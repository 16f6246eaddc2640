"""Statistics of a per-frame measure (J or F) over one object's scored frames.

- Mean: the average.
- Recall: the fraction of frames scoring more than 0.5.
- Decay: how much the measure drops over time, the mean of the first quarter of the
  frames minus the mean of the last quarter. The quarters are the DAVIS toolkit's bins:
  ``ids = round(linspace(1, L, 5) + 1e-10) - 1``, bin ``i`` = ``v[ids[i] : ids[i+1] + 1]``
  (neighbouring bins share a frame).

The toolkit stores ``ids`` as uint8, which wraps for sequences of more than 256 scored
frames; we keep plain integers, so results agree for every DAVIS sequence (at most 104
frames) and stay meaningful for longer ones.
"""

from __future__ import annotations

import numpy as np

RECALL_THRESHOLD = 0.5
DECAY_BINS = 4


def decay_bins(length: int, n_bins: int = DECAY_BINS) -> list[slice]:
    """The toolkit's ``n_bins`` overlapping bins over ``length`` frames."""
    ids = np.round(np.linspace(1, length, n_bins + 1) + 1e-10).astype(np.int64) - 1
    return [slice(int(ids[i]), int(ids[i + 1]) + 1) for i in range(n_bins)]


def mean_recall_decay(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, Recall and Decay of ``values`` [L] (one object, scored frames in order).

    An empty sequence (fewer than three frames: nothing is scored) gives NaNs.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    bins = decay_bins(len(values))
    mean = float(np.mean(values))
    recall = float(np.mean(values > RECALL_THRESHOLD))
    decay = float(np.mean(values[bins[0]]) - np.mean(values[bins[-1]]))
    return mean, recall, decay
