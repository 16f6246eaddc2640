"""The memory dial: the dynamic model with its carried state scaled by alpha (issue 13).

alpha = 1 is the model as trained (the paper's dynamic memory), alpha = 0 the same weights with
the zero state on every frame; in between the memory is kept but faded. A curve that peaks
between the ends says some memory helps even where all of it does not::

    dial = run_dial(run, stages.eval_set(run, "table2"), alphas=(0, 0.25, 0.5))
    fig = plot_dial(dial, zero=stages.load_evaluation(run, "table3-zero"))
"""

from __future__ import annotations

ALPHAS = {"smoke": (0.5,)}  # per profile (default 0, 0.25, 0.5; smoke: minutes); 1 is the dynamic model's own run


def run_dial(run, es, alphas=None, reference: str = "table2"):
    """Predict and score ``es`` once per alpha (``evaluations/table3-alpha<a>.json``); alpha = 1
    is read from the ``reference`` evaluation. Returns a DataFrame: alpha, J&F, J, F (percent)."""
    import pandas as pd

    from lipnb.report import stages

    rows = []
    for alpha in alphas or ALPHAS.get(run.profile, (0.0, 0.25, 0.5)):
        pred = stages.predict(run, es, alpha=alpha)
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
