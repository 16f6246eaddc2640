"""The evaluator's output: the toolkit's two tables, printed and as CSV files.

``global_results-<split>.csv``: ``J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay``
``per-sequence_results-<split>.csv``: ``Sequence,J-Mean,F-Mean``, one row per object
(``<sequence>_<object id>``). Values are written with 6 decimals (the toolkit writes 3).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lipnb.metrics.evaluation import GLOBAL_COLUMNS, SEQUENCE_COLUMNS, Evaluation

DECIMALS = 6


def _fmt(value: float) -> str:
    return f"{value:.{DECIMALS}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[c])) for r in [header] + rows) for c in range(len(header))]
    lines = [" ".join(str(cell).rjust(w) if c else str(cell).ljust(w)
                      for c, (cell, w) in enumerate(zip(row, widths))) for row in [header] + rows]
    return "\n".join(lines)


def format_tables(evaluation: Evaluation) -> str:
    """Both tables as text, the global one first."""
    g = evaluation.global_results()
    rows = [[name, _fmt(j), _fmt(f)] for name, j, f in evaluation.per_sequence_results()]
    return (f"{'-' * 20} Global results for {evaluation.split} {'-' * 20}\n"
            + _table(GLOBAL_COLUMNS, [[_fmt(g[c]) for c in GLOBAL_COLUMNS]])
            + f"\n\n{'-' * 10} Per sequence results for {evaluation.split} {'-' * 10}\n"
            + _table(SEQUENCE_COLUMNS, rows))


def write_csv(evaluation: Evaluation, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write both CSV files into ``out_dir``; returns their paths (global, per-sequence)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    global_path = out_dir / f"global_results-{evaluation.split}.csv"
    sequence_path = out_dir / f"per-sequence_results-{evaluation.split}.csv"
    g = evaluation.global_results()
    with open(global_path, "w", newline="") as f:
        csv.writer(f).writerows([GLOBAL_COLUMNS, [_fmt(g[c]) for c in GLOBAL_COLUMNS]])
    with open(sequence_path, "w", newline="") as f:
        csv.writer(f).writerows([SEQUENCE_COLUMNS] + [[name, _fmt(j), _fmt(fm)]
                                                       for name, j, fm in evaluation.per_sequence_results()])
    return global_path, sequence_path
