"""The online recipe of a run, chosen on training videos for each model alike (notebooks 03, 04).

The candidates are the run's online settings (``online_lr``, ``online_iters``) and variants
of them: a learning rate ten times lower (the authors' 0.001 when the run uses 0.01), and, for
a model whose memory is carried, frame 0 first passed through the Conv-GRU three times so that
the heads are fine-tuned on a filled memory (:attr:`OnlineConfig.warm_first_frame`). Each is
run on a few sequences of the *training* videos (``davis_train``; 4, or 1 for ``smoke``), cut
to their first 25 frames (12 for ``smoke``), and the best mean J&F is kept in ``online_recipe[-zero].json``; the validation
videos are only scored, never used for the choice. The zero-hidden model (Table 3) gets the
same candidates minus the warm-up, which cannot change it::

    cfg = recipes.choose(run)                       # notebook 03, the dynamic model
    cfg = recipes.choose(run, zero_hidden=True)     # notebook 04
    recipes.chosen(run, zero_hidden)                # what predict() uses (the plain settings if none)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

SEQUENCES = {"smoke": 1}  # training sequences the candidates run on (default 4)
MAX_FRAMES = {"smoke": 12}  # their first frames scored (default 25)
WARM_FRAMES = 3


def candidates(run, zero_hidden: bool = False) -> dict:
    """Label -> :class:`OnlineConfig`, the run's own settings first."""
    from lipnb.report.stages import online_config

    base = online_config(run)
    lrs = [base.lr, round(base.lr / 10, 8)]
    warms = [0] if zero_hidden else [0, WARM_FRAMES]
    return {f"lr={lr:g}, warm_first_frame={w}": replace(base, lr=lr, warm_first_frame=w) for lr in lrs for w in warms}


def _path(run, zero_hidden: bool) -> Path:
    return run.out / f"online_recipe{'-zero' if zero_hidden else ''}.json"  # small: committed with the tables


def training_videos(run):
    """The run's fine-tuning videos as a :class:`DavisDataset` and the sequences to choose on."""
    from lipnb.data.davis import DavisDataset
    from lipnb.online.recipe import spread
    from lipnb.report.stages import train_config
    from lipnb.train.build import resolve_data_root

    cfg = train_config(run, "finetune")
    data = DavisDataset(resolve_data_root(cfg), cfg.davis_year, cfg.davis_split, cfg.davis_resolution)
    return data, spread(list(data.sequences), SEQUENCES.get(run.profile, 4))


def choose(run, zero_hidden: bool = False) -> "OnlineConfig":  # noqa: F821
    """Run the candidates on the training videos with the offline model; keep and return the best.
    A choice already recorded for this checkpoint and these candidates is reused."""
    from lipnb.online.recipe import choose_recipe
    from lipnb.report.stages import load_offline_model

    options = candidates(run, zero_hidden)
    ckpt = run.checkpoint("finetune-zero" if zero_hidden else "finetune")
    key = {"checkpoint_mtime_ns": ckpt.stat().st_mtime_ns,
           "candidates": {k: v.to_dict() for k, v in options.items()}}
    path = _path(run, zero_hidden)
    if path.is_file():
        record = json.loads(path.read_text())
        if {k: record.get(k) for k in key} == json.loads(json.dumps(key)):
            print(f"online recipe: {record['best']} (chosen before on {', '.join(record['sequences'])})")
            return options[record["best"]]
    data, names = training_videos(run)
    frames = MAX_FRAMES.get(run.profile, 25)
    print(f"choosing the online recipe on {len(names)} training sequence(s) ({', '.join(names)}), "
          f"first {frames} frames, {len(options)} candidates")
    best, rows = choose_recipe(load_offline_model(run, zero_hidden), data, names, options, frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**key, "best": best, "sequences": names, "max_frames": frames,
                                "rows": rows}, indent=1))
    print(f"online recipe: {best}")
    return options[best]


def chosen(run, zero_hidden: bool = False):
    """The recorded choice for this model (its :class:`OnlineConfig`), or the run's plain online
    settings when no choice was made."""
    from lipnb.online import OnlineConfig
    from lipnb.report.stages import online_config

    path = _path(run, zero_hidden)
    if not path.is_file():
        return online_config(run)
    record = json.loads(path.read_text())
    return OnlineConfig(**record["candidates"][record["best"]])


def table(run, zero_hidden: bool = False):
    """The recorded choice as a DataFrame: mean J&F and fine-tuning iterations per candidate."""
    import pandas as pd

    record = json.loads(_path(run, zero_hidden).read_text())
    rows = pd.DataFrame(record["rows"])
    return rows.groupby("candidate", sort=False).agg(**{"J&F": ("J&F", "mean"), "J": ("J", "mean"),
                                                       "F": ("F", "mean"),
                                                       "iterations": ("finetune_iters", "mean")}).round(1)
