"""The memory dial: the dynamic model with its carried state scaled by alpha (issue 13).

alpha = 1 is the model as trained (the paper's dynamic memory), alpha = 0 the same weights with
the zero state on every frame; in between the memory is kept but faded. A curve that peaks
between the ends says some memory helps even where all of it does not::

    dial = run_dial(run, stages.eval_set(run, "table2"), alphas=(0, 0.25, 0.5))
    fig = plot_dial(dial, zero=stages.load_evaluation(run, "table3-zero"))
"""

from __future__ import annotations

import json
from pathlib import Path

from lipnb.lab import recipes
from lipnb.profiles import lab_setting
from lipnb.repro import stages


def run_dial(run, es, alphas=None, reference: str = "table2"):
    """Predict and score ``es`` once per alpha (``evaluations/table3-alpha<a>.json``); alpha = 1
    is read from the ``reference`` evaluation. Returns a DataFrame: alpha, J&F, J, F (percent)."""
    import pandas as pd

    rows = []
    for alpha in alphas or lab_setting(run.profile, "dial_alphas"):
        pred = stages.predict(run, es, recipes.chosen(run).replace(memory_alpha=float(alpha)))
        ev = stages.evaluate(run, es, pred, f"table3-alpha{alpha:g}", alpha=alpha)
        rows.append((alpha, ev))
    rows.append((1.0, stages.load_evaluation(run, reference)))
    return pd.DataFrame([{"alpha": a, **{k: round(100 * ev["global"][f"{k}-Mean"], 1) for k in ("J&F", "J", "F")}}
                         for a, ev in sorted(rows, key=lambda r: r[0])])


def plot_dial(dial, zero: dict | None = None):
    """J&F against alpha, with the model fine-tuned with the zero state as a horizontal line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    ax.plot(dial["alpha"], dial["J&F"], marker="o", label="dynamic model, state x alpha")
    if zero is not None:
        ax.axhline(100 * zero["global"]["J&F-Mean"], color="grey", ls="--", label="model fine-tuned with zero state")
    ax.set_xlabel("alpha (scale of the carried state)")
    ax.set_ylabel("J&F-Mean (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- over seeds (``lipnb ablation --dial``)

def _rows(seed: int, evaluations: dict) -> list[dict]:
    """``alpha -> evaluation record`` -> one row per alpha (percent, as the seeds table)."""
    return [{"seed": seed, "videos": ev["data"], "alpha": alpha,
             **{f"{k}-Mean": round(100 * ev["global"][f"{k}-Mean"], 2) for k in ("J&F", "J", "F")}}
            for alpha, ev in sorted(evaluations.items())]


def seed_rows(run, seed: int, table: str = "table2") -> list[dict]:
    """Run the dial for one seed's run (``lipnb ablation``'s ``seed-<s>`` folder) on ``table``'s
    videos, where the dynamic model's own evaluation is alpha = 1; one row per alpha."""
    run_dial(run, stages.eval_set(run, table), reference=table)
    return read_rows(run.evaluations, seed, run.profile, table)


def read_rows(evaluations: Path, seed: int, profile: str, table: str = "table2") -> list[dict]:
    """The dial's rows from an ``evaluations/`` folder (a seed's, or a reproduction's: notebook 04)."""
    evaluations = Path(evaluations)
    alphas = lab_setting(profile, "dial_alphas")
    names = {a: f"table3-alpha{a:g}" for a in alphas} | {1.0: table}
    missing = [f"{n}.json" for n in names.values() if not (evaluations / f"{n}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{evaluations}: no {', '.join(missing)}; run the dial (notebook 04) first")
    return _rows(seed, {a: json.loads((evaluations / f"{n}.json").read_text()) for a, n in names.items()})


def summarize_seeds(rows: list[dict]):
    """Per alpha: mean and std over seeds of J&F, and the seeds whose best alpha it is."""
    import pandas as pd

    df = pd.DataFrame(rows)
    best = df.loc[df.groupby("seed")["J&F-Mean"].idxmax()].groupby("alpha").size()
    out = df.groupby("alpha")["J&F-Mean"].agg(["mean", "std", "count"]).reset_index()
    out.columns = ["alpha", "J&F mean", "J&F std", "seeds"]
    out["seeds where best"] = [int(best.get(a, 0)) for a in out["alpha"]]
    return out.round(2)


def plot_seeds(rows: list[dict]):
    """J&F against alpha, one thin line per seed and their mean in bold."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    for seed, g in df.groupby("seed"):
        ax.plot(g["alpha"], g["J&F-Mean"], marker="o", lw=1, alpha=0.6, label=f"seed {seed}")
    mean = df.groupby("alpha")["J&F-Mean"].mean()
    ax.plot(mean.index, mean.values, color="black", lw=2.5, marker="o", label="mean over seeds")
    ax.set_xlabel("alpha (scale of the carried state; 0 = zero state)")
    ax.set_ylabel("J&F-Mean (%)")
    ax.set_title(df["videos"].iloc[0], fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig
