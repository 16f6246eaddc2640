"""The online recipe of a run, chosen on training videos for each model alike (notebooks 03, 04).

The paper gives the online fine-tuning's caps and its early-stopping rule but not the rule's
thresholds or the learning rate, and says nothing of frame 0's state. Candidates (:class:`OnlineConfig` variants) are
each run on a few *training* sequences, cut to their first ``max_frames`` frames, and scored
with J&F against the training masks in memory (no files); the best mean wins. Each model of
Table 3 gets its recipe from the same candidates and sequences, so neither arm is tuned more::

    best, rows = choose_recipe(model, davis_train, ["bear", "bmx-bumps"], {"off": cfg, ...})

The candidates are the run's online settings (``online_lr``, ``online_iters``) and variants
of them: with the early stopping of the authors' thresholds or without early stopping (every
head trained for all ``online_iters``), and, for a model whose memory is carried, frame 0 first
passed through the Conv-GRU three times so that the heads are fine-tuned on a filled memory
(:attr:`OnlineConfig.warm_first_frame`). The paper's thresholds are "empirically chosen"
(§4.2); the authors' values were chosen for their losses, and under this project's focal id loss
(a mean over the sampled RoIs) 0.15 is reached while the id scores are still near 0.5, the same
for a box on the object and a box half off it (davis-cpu model of commit 2361701, its recipe, 16
val sequences: 46.8 J&F with the authors' thresholds, 53.2 with the id head's at 0, 55.3 with
none). Each candidate is run on a few sequences of the *training* videos (``davis_train``; the
profile's ``recipe_sequences``), cut to their first ``recipe_frames`` frames
(:data:`lipnb.profiles.LAB`), and the best mean J&F is kept in ``online_recipe[-zero].json``;
the validation videos are only scored, never used for the choice. The zero-hidden model
(Table 3) gets the same candidates minus the warm-up, which cannot change it::

    cfg = recipes.choose(run)                       # notebook 03, the dynamic model
    cfg = recipes.choose(run, zero_hidden=True)     # notebook 04
    recipes.chosen(run, zero_hidden)                # what predict() uses (the plain settings if none)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from lipnb.data.davis import DavisDataset
from lipnb.metrics.evaluation import score_frame
from lipnb.model import LIP
from lipnb.online import OnlineConfig
from lipnb.online.config import HEADS
from lipnb.online.inference import object_ids_of, segment_sequence
from lipnb.online.pool import map_on_copies
from lipnb.profiles import lab_setting
from lipnb.repro import stages
from lipnb.repro.release import recipe_name
from lipnb.repro.stages import load_offline_model, online_config
from lipnb.train.build import resolve_data_root

WARM_FRAMES = 3
NO_EARLY_STOPPING = {head: 0.0 for head in HEADS}  # no loss is ever under 0: every head trains to max_iters


# ----------------------------------------------------------------------------- the search


def spread(names: list, k: int) -> list:
    """``k`` names spread evenly over the sorted ``names`` (all of them when ``k >= len``)."""
    names = sorted(names)
    if k >= len(names):
        return names
    return [names[round(i * (len(names) - 1) / max(k - 1, 1))] for i in range(k)]


def score_sequence(model: LIP, dataset: DavisDataset, name: str, cfg: OnlineConfig,
                   max_frames: int) -> dict:
    """Segment ``name``'s first ``max_frames`` frames with ``cfg``; J&F over frames 1.. (percent)
    and the fine-tuning's iterations."""
    seq = dataset[name]
    n = min(seq.num_frames, max_frames)
    first = seq.first_mask()
    object_ids = object_ids_of(first, f"{name}: first mask")
    j, f = [], []

    def write(i: int, ids: np.ndarray) -> None:  # ids come at the annotations' size
        if i == 0:
            return
        js, fs = score_frame(seq.read_mask(i), ids, object_ids)
        j.append(js.mean())
        f.append(fs.mean())

    result = segment_sequence(model, seq.read_frame, n, first, write, cfg, name, progress=False)
    jm, fm = 100 * float(np.mean(j)), 100 * float(np.mean(f))
    return {"sequence": name, "frames": n, "J&F": (jm + fm) / 2, "J": jm, "F": fm,
            "finetune_iters": result.finetune_iters, "seconds": result.finetune_s + result.inference_s}


def choose_recipe(model: LIP, dataset: DavisDataset, sequences: list, candidates: dict,
                  max_frames: int = 25, log: Optional[callable] = print, jobs: int = 1) -> tuple[str, list]:
    """Run every candidate on ``sequences`` of ``dataset`` (training videos), ``jobs`` sequences at
    once (:mod:`lipnb.online.pool`).

    Returns ``(best name, rows)``: one row per (candidate, sequence) with its J&F, and the best
    candidate by mean J&F over the sequences (the first listed wins a tie).
    """
    tasks = [(dataset, s, cfg, max_frames) for cfg in candidates.values() for s in sequences]
    results = map_on_copies(model, score_sequence, tasks, jobs)
    rows, means = [], {}
    for label in candidates:
        scores = [dict(candidate=label, **next(results)) for _ in sequences]
        rows += scores
        means[label] = float(np.mean([r["J&F"] for r in scores]))
        if log:
            log(f"  recipe {label}: J&F {means[label]:.1f} on {len(sequences)} training sequences "
                f"(fine-tuning {', '.join(str(r['finetune_iters']) for r in scores)} it)")
    best = max(means, key=lambda k: (means[k], -list(means).index(k)))
    return best, rows


# ----------------------------------------------------------------------------- a run's recipe (notebooks 03, 04)


def candidates(run, zero_hidden: bool = False) -> dict:
    """Label -> :class:`OnlineConfig`, the run's own settings first."""
    base = online_config(run)
    stops = {"authors'": base.stop_thresholds, "off": NO_EARLY_STOPPING}
    warms = [0] if zero_hidden else [0, WARM_FRAMES]
    return {f"early stopping {name}, warm_first_frame={w}": replace(base, stop_thresholds=dict(t), warm_first_frame=w)
            for name, t in stops.items() for w in warms}


def label(cfg: OnlineConfig) -> str:
    """A recipe in a few words: its early stopping, lr and frame-0 warm-up (a lever table's column)."""
    stopping = "off" if not any(cfg.stop_thresholds.values()) else "authors'"
    return f"early stopping {stopping}, lr {cfg.lr:g}, warm_first_frame={cfg.warm_first_frame}"


def _path(run, zero_hidden: bool) -> Path:
    return run.out / recipe_name(zero_hidden)  # small: committed with the tables


def training_videos(run):
    """The run's fine-tuning videos as a :class:`DavisDataset` and the sequences to choose on."""

    cfg = stages.train_config(run, "finetune")
    data = DavisDataset(resolve_data_root(cfg), cfg.davis_year, cfg.davis_split, cfg.davis_resolution)
    return data, spread(list(data.sequences), lab_setting(run.profile, "recipe_sequences"))


def choose(run, zero_hidden: bool = False) -> OnlineConfig:
    """Run the candidates on the training videos with the offline model; keep and return the best.
    A choice already recorded for this checkpoint and these candidates is reused."""

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
    frames = lab_setting(run.profile, "recipe_frames")
    print(f"choosing the online recipe on {len(names)} training sequence(s) ({', '.join(names)}), "
          f"first {frames} frames, {len(options)} candidates")
    best, rows = choose_recipe(load_offline_model(run, zero_hidden), data, names, options, frames,
                               jobs=run.jobs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**key, "best": best, "sequences": names, "max_frames": frames,
                                "rows": rows}, indent=1))
    print(f"online recipe: {best}")
    return options[best]


def chosen(run, zero_hidden: bool = False):
    """The recorded choice for this model (its :class:`OnlineConfig`), or the run's plain online
    settings when no choice was made."""
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
