"""Tables 1-3: the paper's numbers (copied, labelled) beside this run's measured LIP rows.

Each table is a DataFrame with a ``Method`` column, a ``Source`` column (``paper`` or
``this run``) and the metric columns in percent, written as ``tableN.csv`` and ``tableN.md``;
the Markdown file opens with the scale the measured rows were made at (profile, data,
sequences, iterations) and the evaluation file each measured row comes from.
"""

from __future__ import annotations

from pathlib import Path

from lipnb.report.paper_numbers import METRICS, SOURCE, TABLE1, TABLE2, TABLE3, TABLE3_METRICS

TITLES = {
    "table1": "Table 1: DAVIS 2016 protocol (single object)",
    "table2": "Table 2: DAVIS 2017 protocol (multiple objects)",
    "table3": "Table 3: ablation, zero vs dynamic hidden state of the Conv-GRU (DAVIS 2017 protocol)",
}


def _percent(values: dict, metrics: list) -> list:
    return [round(100.0 * float(values[m]), 1) for m in metrics]


def scale_note(ev: dict) -> str:
    it = ev["iterations"]
    n = len(ev["sequences"])
    return (f"profile `{ev['profile']}`, data: {ev['data']}, {n} sequence{'s' * (n != 1)}, iterations: "
            f"pre-training {it['pretrain_iters']}, fine-tuning {it['finetune_iters']}, online fine-tuning "
            f"<= {it['online_iters']} per sequence (lr {it.get('online_lr', 0.001)}), id-head refresh <= {it['refresh_iters']} per frame")


def results_table(paper: dict, measured: dict, others: list = ()):
    """Paper rows (in the paper's order), the measured LIP row, then ``others``: ``(method,
    source, evaluation)`` rows measured beside it (baselines, an earlier run); J/F in percent."""
    import pandas as pd

    rows = [[f"{m} (paper)", "paper", *v] for m, v in paper.items()]
    rows.append([f"LIP (this run, {measured['profile']})", "this run", *_percent(measured["global"], METRICS)])
    rows += [[method, source, *_percent(ev["global"], METRICS)] for method, source, ev in others]
    return pd.DataFrame(rows, columns=["Method", "Source", *METRICS])


BASELINE_ROWS = {  # evaluation name -> Table 1 method
    "table1-copy-first": "copy the first mask to every frame",
    "table1-probe": "ImageNet features + first-frame linear probe, no offline training",
}


def table1_others(evaluations: dict, earlier: dict | None = None) -> tuple[list, list]:
    """Table 1's extra rows and their notes: the baselines this run measured on the same
    sequences, and ``earlier``, another run's Table 1 evaluation (``{"label", "source",
    "evaluation", "path"}``), e.g. the from-scratch ``davis-cpu-scratch`` reference."""
    rows, notes = [], []
    for name, method in BASELINE_ROWS.items():
        if name in evaluations:
            rows.append((method, "this run (baseline)", evaluations[name]))
            notes.append(f"{method}: evaluations/{name}.json")
    if earlier is not None:
        rows.append((earlier["label"], earlier["source"], earlier["evaluation"]))
        notes.append(f"{earlier['label']}: {scale_note(earlier['evaluation'])} ({earlier['path']})")
    return rows, notes


def ablation_table(pairs: list):
    """Table 3: the paper's two rows, then a zero-hidden and a dynamic row of this run for each
    ``(dynamic, zero, data)`` pair (``data`` names the videos when there is more than one pair)."""
    import pandas as pd

    rows = [[f"{m} (paper)", "paper", *v] for m, v in TABLE3.items()]
    for dynamic, zero, data in pairs:
        where = f", {data}" if len(pairs) > 1 else ""
        rows.append([f"zero hidden state (this run, {zero['profile']}{where})", "this run",
                     *_percent(zero["global"], TABLE3_METRICS)])
        rows.append([f"dynamic memory (this run, {dynamic['profile']}{where})", "this run",
                     *_percent(dynamic["global"], TABLE3_METRICS)])
    return pd.DataFrame(rows, columns=["Method", "Source", *TABLE3_METRICS])


def build_tables(evaluations: dict, earlier: dict | None = None) -> dict:
    """``{"table1": (df, notes), ...}`` from the evaluation records ``table1``, ``table2``,
    ``table3-zero`` and, where the run also ran the ablation on Table 1's videos (real DAVIS 2016
    beside procedural Table 2 data), ``table3-zero-table1``. Table 1 also gets the baselines'
    rows (``table1-copy-first``, ``table1-probe``) and ``earlier`` (see :func:`table1_others`)."""
    t1, t2, zero = evaluations["table1"], evaluations["table2"], evaluations["table3-zero"]
    pairs = [(t2, zero, "")]
    notes3 = [scale_note(zero), "zero hidden state: fine-tuned and run with the Conv-GRU's input state held at "
              "zero (evaluations/table3-zero.json); dynamic memory: the Table 2 run (evaluations/table2.json)"]
    zero1 = evaluations.get("table3-zero-table1")
    if zero1 is not None:
        pairs = [(ev, z, ev["data"].split(" (")[0]) for ev, z in ((t2, zero), (t1, zero1))]
        notes3 += [f"also on the Table 1 videos: {scale_note(zero1)}; zero hidden state: "
                   "evaluations/table3-zero-table1.json, dynamic memory: the Table 1 run (evaluations/table1.json)"]
    others1, notes1 = table1_others(evaluations, earlier)
    return {
        "table1": (results_table(TABLE1, t1, others1), [scale_note(t1), "measured row: evaluations/table1.json", *notes1]),
        "table2": (results_table(TABLE2, t2), [scale_note(t2), "measured row: evaluations/table2.json"]),
        "table3": (ablation_table(pairs), notes3),
    }


def _number(v: float) -> str:
    """One decimal as the paper prints (81.0), two where the paper has them (0.05)."""
    text = f"{v:.2f}"
    return text[:-1] if text.endswith("0") else text


def to_markdown(df, title: str, notes: list, paper_source: bool = True) -> str:
    """A GitHub Markdown table (no extra dependency) under a title and notes; text columns
    left-aligned, numbers right-aligned."""
    header = "| " + " | ".join(df.columns) + " |"
    from pandas.api.types import is_numeric_dtype

    rule = "|" + "|".join("---:" if is_numeric_dtype(df[c]) else "---" for c in df.columns) + "|"
    body = ["| " + " | ".join(_number(v) if isinstance(v, float) else str(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    notes = list(notes) + ([f"paper rows: {SOURCE}"] if paper_source else [])
    lines = [f"## {title}", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines + [header, rule] + body) + "\n"


def write_tables(tables: dict, out_dir: str | Path) -> list[Path]:
    """``tableN.csv`` and ``tableN.md`` for each table; returns the paths."""
    out_dir = Path(out_dir)
    written = []
    for name, (df, notes) in tables.items():
        df.to_csv(out_dir / f"{name}.csv", index=False)
        (out_dir / f"{name}.md").write_text(to_markdown(df, TITLES[name], notes))
        written += [out_dir / f"{name}.csv", out_dir / f"{name}.md"]
    return written


def per_sequence_table(evaluations: dict):
    """One row per evaluation and object: ``evaluation, memory, data, object, J-Mean, F-Mean,
    J&F-Mean`` in percent (DAVIS 2016 objects are named ``<sequence>_1``)."""
    import pandas as pd

    rows = [[name, ev["memory"], ev["data"], o["name"], *(round(100.0 * v, 1) for v in
                                                        (o["J-Mean"], o["F-Mean"], (o["J-Mean"] + o["F-Mean"]) / 2))]
            for name, ev in sorted(evaluations.items()) for o in ev["per_object"]]
    return pd.DataFrame(rows, columns=["evaluation", "memory", "data", "object", "J-Mean", "F-Mean", "J&F-Mean"])


def write_per_sequence(evaluations: dict, out_dir: str | Path) -> Path:
    """``per_sequence.csv`` of :func:`per_sequence_table`."""
    path = Path(out_dir) / "per_sequence.csv"
    per_sequence_table(evaluations).to_csv(path, index=False)
    return path
