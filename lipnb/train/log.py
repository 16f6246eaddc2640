"""Per-step training log: ``<out>/log.csv`` and ``<out>/log.jsonl``, one row per logged step.

Columns: ``step`` (1-based count of optimisation steps done), ``lr``, ``loss`` (the total)
and every loss the model returns (``loss_objectness``, ``loss_rpn_box_reg``, ``loss_id``,
``loss_box_reg``, ``loss_mask``), ``sec`` (wall time of the step) and ``samples`` (images
or clips in the step). On resume, rows after the resumed step are dropped first, so the
log of an interrupted and resumed run reads like one straight run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


class StepLog:
    def __init__(self, out_dir: str | Path, resume_from_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.csv_path, self.json_path = Path(out_dir) / "log.csv", Path(out_dir) / "log.jsonl"
        self.rows: list[dict] = []
        if not enabled:
            return
        if resume_from_step > 0 and self.json_path.exists():
            for line in self.json_path.read_text().splitlines():
                row = json.loads(line)
                if row["step"] <= resume_from_step:
                    self.rows.append(row)
        self._rewrite()

    def _columns(self) -> list[str]:
        cols = ["step", "lr", "loss"]
        for row in self.rows:
            cols += [k for k in row if k not in cols]
        return cols

    def _rewrite(self) -> None:
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self.json_path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        with self.csv_path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._columns())
            w.writeheader()
            w.writerows(self.rows)

    def append(self, row: dict) -> None:
        if not self.enabled:
            return
        new_columns = any(k not in self._columns() for k in row)
        self.rows.append(row)
        if new_columns:
            self._rewrite()
            return
        with self.json_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns()).writerow(row)
