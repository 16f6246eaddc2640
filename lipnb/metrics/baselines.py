"""Reference predictions that need no model, used to check the evaluator and as a floor.

copy-first: the first ground-truth mask repeated on every frame, the trivial
semi-supervised baseline (it scores how much the objects move and change).
"""

from __future__ import annotations

import os
from pathlib import Path

from lipnb.data.davis import DavisDataset


def write_copy_first(dataset: DavisDataset, results_dir: str | os.PathLike,
                     sequences: list[str] | None = None) -> Path:
    """Write ``results_dir/<seq>/<frame>.png`` = the first mask, for every frame; returns the folder."""
    for name in sequences or dataset.sequences:
        seq = dataset[name]
        first = seq.first_mask()
        for i in range(seq.num_frames):
            seq.write_result(results_dir, i, first)
    return Path(results_dir)


def write_ground_truth(dataset: DavisDataset, results_dir: str | os.PathLike,
                       sequences: list[str] | None = None) -> Path:
    """Write the ground truth itself as results (it must score J = F = 1, decay 0)."""
    for name in sequences or dataset.sequences:
        seq = dataset[name]
        for i in range(seq.num_frames):
            seq.write_result(results_dir, i, seq.read_mask(i))
    return Path(results_dir)
