"""The memory's levers, one at a time and combined, at a small scale (issue 21)::

    python -m lipnb.cli.levers --profile smoke --seeds 0 1 2 --jobs 2
    python -m lipnb.cli.levers --profile smoke --seeds 0 1 2 --jobs 2 --levers baseline groups combined \
        --combine mix groups

Each lever is a set of :class:`~lipnb.train.TrainConfig` fields (``train``) and
:class:`~lipnb.model.LIPConfig` fields (``model``) applied to the fine-tuning stage; the defaults
are the paper's (``baseline``). Per seed one pre-training is shared by every lever
(``work/seed-<s>/work/pretrain``), except the levers that change the network (model fields in
``PRETRAIN_MODEL``: ``norm``, ``norm_groups``, ``gate_open``) or the pre-training itself (``pretrain`` fields:
``pseudo_clips``), which pre-train with those fields once per seed (``work/seed-<s>/pretrain-<key>``,
shared by the levers with the same fields). A lever's ``run``
fields (``groups_long``: ``finetune_iters``) change the run parameters of both arms. Per (lever, seed):

* the dynamic model fine-tuned with the lever, and the zero-hidden-state model (Table 3's other
  arm) fine-tuned with the same lever (levers that cannot change a static memory, the warm-up and
  ``carry``, share the baseline's zero arm);
* both arms' online recipes chosen by the same search (:mod:`lipnb.lab.recipes`);
* both scored on the *memory videos*: ``--videos`` procedural memory videos (val split) of data
  seed ``--data-seed``, the same for every model seed, with J&F per situation (the role of each
  object in ``procedural.json``: the hider is occluded, the twins cross, the leaver leaves and
  returns);
* the memory dial (alpha 0, 0.5 and the model's own 1: :mod:`lipnb.lab.dial`);
* on the first ``--stat-videos`` of them: the per-channel gate measure and the channel-mean one
  (:func:`~lipnb.lab.memory_stats.gate_channel_selectivity`, ``gate_selectivity``), the relative
  movement of W_h (``weight_change``) and ``||N||`` carried over zero-state
  (:func:`~lipnb.lab.memory_stats.state_scale`), all as means over the pyramid levels.

Writes ``<out>/levers_runs.csv`` (one row per lever and seed), ``<out>/levers.csv`` and
``levers.md`` (per lever: mean and std over seeds), ``<out>/levers_runs.json`` (per-level details).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lipnb.paths import RESULTS_DIR

# --------------------------------------------------------------------------- the levers

LEVERS = {
    "baseline": {},
    # (a) clips from several sources: the run's own videos plus 32 more procedural memory videos
    "mix": {"train": {"clip_sources": ("memory",), "memory_videos": 32}},
    # (b) Detectron's parameter groups, plus the Conv-GRU's lr x10
    "groups": {"train": {"weight_decay_norm": 0.0, "weight_decay_bias": 0.0, "bias_lr_factor": 2.0,
                         "memory_lr_factor": 10.0}},
    # (c) a random no-gradient warm-up of 0..12 frames before each clip (frames before the clip)
    "warmup": {"train": {"warmup_frames": 0, "warmup_frames_max": 12}},
    # (d) carry H (eq. 1) instead of N (the authors' code)
    "carry_h": {"model": {"carry": "H"}},
    # (e) not in the paper: the heads read N rescaled per position to a fixed channel RMS (LIPConfig.head_input_norm),
    # against the measured ||N|| carried/zero of 1.7x; it changes the network, so the seed's pre-training is run
    # with it too (its own, not the shared one)
    "norm": {"model": {"head_input_norm": "rms_pos"}},
}
# (f) not in the paper: W_hz, W_hr, W_h (random after a zero-state pre-training) set to zero when fine-tuning starts
LEVERS["zero_wh"] = {"train": {"memory_recurrent_init": "zero"}}
LEVERS["zero_wh_groups"] = {"train": {**LEVERS["groups"]["train"], "memory_recurrent_init": "zero"}}
LEVERS["norm_groups"] = {"train": dict(LEVERS["groups"]["train"]), "model": dict(LEVERS["norm"]["model"])}
# groups with 3x the fine-tuning clips (a run parameter: both arms)
LEVERS["groups_long"] = {"train": dict(LEVERS["groups"]["train"]), "run": {"finetune_iters": 90}}
# (g) not in the paper (§4.1.1 pre-trains with the state at zero): pre-training with the memory on, each image
# batch passed 0..2 times without gradient before its loss pass reads the carried state (TrainConfig fields
# of the pre-training: ``pretrain``), so that the heads meet carried states and W_h learns from the start
LEVERS["pseudo_clips"] = {"pretrain": {"static_memory": False, "pretrain_warm_passes": 2}}
# (h) not in the paper: every Conv-GRU's update gate starts open (GN_z's shift 2, z about 0.84: LIPConfig.update_gate_bias),
# so that the zero state's N = z h~ and a carried N are of nearly one scale and N leans on the current frame; an
# initialisation, so the seed's pre-training is run with it
LEVERS["gate_open"] = {"model": {"update_gate_bias": 2.0}}
# (i) the same shift set when fine-tuning starts (TrainConfig.memory_gate_shift), on the shared pre-training
LEVERS["gate_shift"] = {"train": {"memory_gate_shift": 2.0}}
# the model fields that change the pre-trained network (a lever with one pre-trains on its own), with what each
# is, for the table's notes
PRETRAIN_MODEL_NOTES = {
    "head_input_norm": "LIPConfig.head_input_norm, the heads read N rescaled per position to a fixed channel RMS, "
                       "the carried state is not; its ||N|| carried/zero is 1 by construction (the in-object ratio "
                       "at P2, 2.9 for baseline, is 1.1-1.2: levers_runs.json)",
    "update_gate_bias": "LIPConfig.update_gate_bias, the initial shift of every Conv-GRU's GN_z (the update gate's "
                        "bias; the paper's 0)",
}
PRETRAIN_MODEL = tuple(PRETRAIN_MODEL_NOTES)
# the fields that cannot change a model fine-tuned with a static memory (its zero arm is shared)
STATIC_IRRELEVANT = {"train": ("warmup_frames", "warmup_frames_max", "memory_recurrent_init"), "model": ("carry",)}
SITUATIONS = {"hider": "occlusion", "twin": "crossing", "leaver": "leaving-returning", "distinct": "other"}


def combine(names) -> dict:
    out = {"train": {}, "model": {}}
    for n in names:
        for part in ("train", "model", "run"):
            if LEVERS[n].get(part):
                out.setdefault(part, {}).update(LEVERS[n][part])
    return out


# --------------------------------------------------------------------------- data: the memory videos


def memory_eval_set(videos: int, data_seed: int):
    """``videos`` procedural memory videos (val split) of ``data_seed``, as a Table 2 eval set."""
    from lipnb.data.davis import DavisDataset
    from lipnb.data.procedural import ProceduralSpec, ensure_procedural
    from lipnb.repro.stages import EvalSet

    root = ensure_procedural(ProceduralSpec(seed=data_seed, coco_train=1, coco_val=1, davis_train=0,
                                            davis_val=videos)).davis
    data = DavisDataset(root, "2017", "val")
    label = f"procedural memory videos ({videos}, val split, data seed {data_seed}; DAVIS 2017 protocol)"
    return EvalSet("table2", label, f"memory{videos}-d{data_seed}", data, data, list(data.sequences))


def situation_of_objects(root: Path) -> dict:
    """``"<sequence>_<id>" -> situation`` from ``procedural.json``."""
    meta = json.loads((Path(root) / "procedural.json").read_text())["sequences"]
    return {f"{name}_{o['id']}": SITUATIONS[o["role"]] for name, m in meta.items() for o in m["objects"]}


def by_situation(ev: dict, situations: dict) -> dict:
    """J&F (percent) per situation from an evaluation's per-object rows."""
    groups: dict = {}
    for row in ev["per_object"]:
        groups.setdefault(situations.get(row["name"], "other"), []).append((row["J-Mean"] + row["F-Mean"]) / 2)
    return {k: 100 * float(np.mean(v)) for k, v in groups.items()}


# --------------------------------------------------------------------------- training with a lever


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lever_config(run, lever: dict, zero_hidden: bool):
    from lipnb.repro import stages

    cfg = stages.train_config(run, "finetune", zero_hidden)
    return dataclasses.replace(cfg, **lever.get("train", {}), model={**cfg.model, **lever.get("model", {})})


def train_lever(run, lever: dict, folder: Path, zero_hidden: bool) -> dict:
    """Fine-tune into ``folder`` with the lever (kept when already finished there)."""
    from lipnb.repro.stages import finished_summary
    from lipnb.train import train

    cfg = lever_config(run, lever, zero_hidden)
    done = finished_summary(cfg, folder)
    same = lambda d: {k: v for k, v in d.items() if k != "init"}  # noqa: E731  (the pre-training is the seed's)
    if done is not None and same(json.loads((folder / "config.json").read_text())["train"]) == same(json.loads(
            json.dumps(cfg.to_dict(), default=str))):
        return done
    return train(cfg, folder, resume=False, progress=False)


def static_part(lever: dict) -> dict:
    """The lever's fields that can change a model fine-tuned with a static memory."""
    out = {part: {k: v for k, v in lever.get(part, {}).items() if k not in STATIC_IRRELEVANT[part]}
           for part in ("train", "model")}
    for part in ("run", "pretrain"):  # run parameters (fine-tuning length) and the pre-training change both arms
        if lever.get(part):
            out[part] = dict(lever[part])
    return out


def pretrain_part(lever: dict) -> dict:
    """What the lever changes in pre-training: ``{"model": LIPConfig fields, "train": TrainConfig
    fields}`` (empty: the seed's shared pre-training)."""
    model = {k: v for k, v in lever.get("model", {}).items() if k in PRETRAIN_MODEL}
    return {k: v for k, v in (("model", model), ("train", dict(lever.get("pretrain", {})))) if v}


def pretrain_lever(run, fields: dict, folder: Path) -> dict:
    """Pre-train into ``folder`` with ``fields`` (:func:`pretrain_part`; kept when already finished there)."""
    from lipnb.repro import stages
    from lipnb.train import train

    cfg = stages.train_config(run, "pretrain")
    cfg = dataclasses.replace(cfg, **fields.get("train", {}), model={**cfg.model, **fields.get("model", {})})
    done = stages.finished_summary(cfg, folder)
    if done is not None and json.loads((folder / "config.json").read_text())["train"] == json.loads(
            json.dumps(cfg.to_dict(), default=str)):
        return done
    return train(cfg, folder, resume=False, progress=False)


def zero_key(lever: dict) -> str:
    return hashlib.sha1(json.dumps(static_part(lever), sort_keys=True, default=str).encode()).hexdigest()[:10]


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.resolve(), link, target_is_directory=True)


def pretrain_seed(profile: str, seed: int, out: str, overrides: dict) -> float:
    """The shared pre-training of ``seed`` (``<out>/work/seed-<s>/pretrain``); returns seconds."""
    from lipnb.profiles import notebook_parameters
    from lipnb.repro import stages

    t = time.time()
    run = stages.Run(**notebook_parameters(profile, out_dir=str(Path(out) / "work" / f"seed-{seed}"),
                                           seed=seed, threads=1, jobs=1, **overrides)).setup()
    with _locked(run.work / "pretrain.lock"):
        stages.train_stage(run, "pretrain")
    return time.time() - t


def run_lever(profile: str, name: str, lever: dict, seed: int, out: str, overrides: dict, videos: int,
              data_seed: int, stat_videos: int) -> dict:
    """One (lever, seed): train both arms, choose their recipes, score, dial, statistics -> a row."""
    import torch

    from lipnb.lab import dial, memory_stats, recipes
    from lipnb.online import load_model
    from lipnb.profiles import notebook_parameters
    from lipnb.repro import stages

    t0 = time.time()
    base = Path(out) / "work" / f"seed-{seed}"
    run = stages.Run(**notebook_parameters(profile, out_dir=str(base / name), seed=seed, threads=1, jobs=1,
                                           **{**overrides, **lever.get("run", {})})).setup()
    pre_fields = pretrain_part(lever)
    if pre_fields:  # a network change: this lever's own pre-training (shared by the levers with the same fields)
        key = hashlib.sha1(json.dumps(pre_fields, sort_keys=True).encode()).hexdigest()[:10]
        folder = base / f"pretrain-{key}"
        with _locked(folder.with_suffix(".lock")):
            pretrain_lever(run, pre_fields, folder)
        _link(run.work / "pretrain", folder)
    else:
        _link(run.work / "pretrain", base / "work" / "pretrain")
    stages.train_stage(run, "pretrain")  # finished: kept
    train_lever(run, lever, run.work / "finetune", zero_hidden=False)
    zero_folder = base / f"zero-{zero_key(lever)}"
    with _locked(zero_folder.with_suffix(".lock")):
        train_lever(run, static_part(lever), zero_folder, zero_hidden=True)
    _link(run.work / "finetune-zero", zero_folder)
    t_train = time.time() - t0

    es = memory_eval_set(videos, data_seed)
    situations = situation_of_objects(es.scored.root)
    recipe = {zero: recipes.choose(run, zero_hidden=zero) for zero in (False, True)}
    evs = {}
    for zero in (False, True):
        pred = stages.predict(run, es, recipe[zero], zero_hidden=zero)
        evs[zero] = stages.evaluate(run, es, pred, "memory-zero" if zero else "memory-dynamic", zero_hidden=zero)
    dialed = dial.run_dial(run, es, alphas=(0.0, 0.5), reference="memory-dynamic")
    jf = {zero: 100 * evs[zero]["global"]["J&F-Mean"] for zero in (False, True)}
    row = {"lever": name, "seed": seed, "dynamic": jf[False], "zero": jf[True], "dynamic - zero": jf[False] - jf[True],
           **{f"alpha {a:g}": float(v) for a, v in zip(dialed["alpha"], dialed["J&F"])},
           "recipe dynamic": recipes.label(recipes.chosen(run)), "recipe zero": recipes.label(recipes.chosen(run, True))}
    sit_dyn, sit_zero = by_situation(evs[False], situations), by_situation(evs[True], situations)
    for s in ("occlusion", "crossing", "leaving-returning"):
        row[f"{s}: dynamic - zero"] = sit_dyn.get(s, float("nan")) - sit_zero.get(s, float("nan"))

    # memory statistics on the first stat_videos memory videos
    torch.set_num_threads(1)
    pre = load_model(run.checkpoint("pretrain"))
    pre.memory.static = False
    fin = load_model(run.checkpoint("finetune"))
    names = es.sequences[:stat_videos]
    per_level = {
        "gate_channel": memory_stats._mean_over([memory_stats.gate_channel_selectivity(fin, es.scored[n]) for n in names]),
        "gate_mean": memory_stats._mean_over([memory_stats.gate_selectivity(fin, es.scored[n]) for n in names]),
        "state_scale": memory_stats._mean_over([memory_stats.state_scale(fin, es.scored[n]) for n in names]),
        "state_scale_pretrained": memory_stats._mean_over([memory_stats.state_scale(pre, es.scored[n]) for n in names]),
        "weight_change": memory_stats.weight_change(pre, fin),
    }
    lv = lambda key, field: float(np.mean([r[field] for r in per_level[key]]))  # noqa: E731
    row.update({"z channel |obj-bg|": lv("gate_channel", "z_channel_abs_object_minus_background"),
                "z mean obj-bg": lv("gate_mean", "z_object_minus_background"),
                "W_h moved": lv("weight_change", "W_h"),
                "||N|| carried/zero": lv("state_scale", "carried_over_zero"),
                "||N|| carried/zero (pre-trained)": lv("state_scale_pretrained", "carried_over_zero"),
                "train s": t_train, "wall s": time.time() - t0})
    (run.out / "lever_row.json").write_text(json.dumps({"row": row, "per_level": per_level}, indent=1))
    print(f"[levers] {name} seed {seed}: dynamic - zero {row['dynamic - zero']:+.2f} in {row['wall s']:.0f} s", flush=True)
    return row


# --------------------------------------------------------------------------- the table


def summarize(rows: list[dict]):
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [c for c in df.columns if c not in ("lever", "seed", "recipe dynamic", "recipe zero")]
    out = []
    for lever, g in df.groupby("lever", sort=False):
        r = {"lever": lever, "seeds": len(g)}
        for c in cols:
            r[f"{c} mean"] = g[c].mean()
            if c in ("dynamic - zero", "dynamic", "zero", "alpha 0", "alpha 0.5", "alpha 1"):
                r[f"{c} std"] = g[c].std(ddof=1)
        r["seeds where dynamic wins"] = int((g["dynamic - zero"] > 0).sum())
        r["wins (mean > std)"] = bool(r["dynamic - zero mean"] > 0 and r["dynamic - zero mean"] > r["dynamic - zero std"])
        out.append(r)
    return pd.DataFrame(out).round(3)


def write(rows: list[dict], out: Path, command: str, profile: str, params: dict, videos: int, data_seed: int,
          stat_videos: int, levers: dict, wall: float) -> Path:
    import pandas as pd

    from lipnb.report.tables import to_markdown

    rows = [{("W_h moved %" if k == "W_h moved" else k): (100 * v if k == "W_h moved" else v) for k, v in r.items()}
            for r in rows]  # relative movement in percent (the tables print 2 decimals)
    runs = pd.DataFrame(rows).sort_values(["lever", "seed"], kind="stable")
    runs.round(3).to_csv(out / "levers_runs.csv", index=False)
    table = summarize(rows)
    table.to_csv(out / "levers.csv", index=False)
    short = ["lever", "seeds", "dynamic - zero mean", "dynamic - zero std", "seeds where dynamic wins",
             "dynamic mean", "zero mean", "alpha 0 mean", "alpha 0.5 mean", "alpha 1 mean",
             "occlusion: dynamic - zero mean", "crossing: dynamic - zero mean",
             "leaving-returning: dynamic - zero mean", "z channel |obj-bg| mean", "z mean obj-bg mean",
             "W_h moved % mean", "||N|| carried/zero mean", "wall s mean"]
    took = (f"wall {wall / 60:.1f} min" if not isinstance(wall, tuple) else
            f"the runs' own times sum to {wall[0] / 60:.1f} min, about {wall[0] / 120:.1f} min wall")
    notes = [f"measured by this project: `{command}` ({took} on 2 processes x 1 torch thread, 2 shared CPU cores)",
             f"profile `{profile}`; iterations: pre-training {params['pretrain_iters']} (one per seed, shared by the "
             f"levers), fine-tuning {params['finetune_iters']} clips per arm, online fine-tuning <= "
             f"{params['online_iters']} per sequence (lr: each arm's recipe, chosen by the same search), id-head "
             f"refresh <= {params['refresh_iters']} per frame",
             f"videos: {videos} procedural memory videos (val split, data seed {data_seed}), the same for every model "
             "seed; J&F-Mean in %; dynamic - zero paired by seed (std: sample std over seeds); per situation: the "
             "objects of that role (hider: occlusion, twins: crossing, leaver: leaving and returning)",
             "dial: the dynamic model's carried state x alpha (alpha 0 = its weights with the zero state)",
             f"gate and scale measures on the first {stat_videos} of those videos, mean over the 5 levels: z channel "
             "|obj-bg| = mean over channels of |z on objects - z on background|; z mean obj-bg = the channel mean's "
             "difference (gate_selectivity); W_h moved % = 100 ||W_h after - before|| / ||before|| over fine-tuning; "
             "||N|| carried/zero = norm of the heads' input N with the state carried over the same frame's with a "
             "zero state (frames 5..)",
             "levers: " + "; ".join(f"{k}: {json.dumps(v, default=str)}" for k, v in levers.items()),
             *(f"{', '.join(own)}: change the network (not in the paper: {PRETRAIN_MODEL_NOTES[field]}), so each "
               "seed's pre-training is run with that setting too (one per seed, shared by the levers with the same "
               "fields; not the shared baseline pre-training); their zero arm starts from it"
               for field in PRETRAIN_MODEL
               if (own := [k for k, v in levers.items() if field in pretrain_part(v).get("model", {})])),
             *([f"{', '.join(warm)}: change the pre-training (not in the paper, whose pre-training holds the state at "
                "zero, §4.1.1: TrainConfig.pretrain_warm_passes, each image batch passed 0..N times without gradient "
                "and the loss pass reading the carried state), one pre-training per seed with it; both arms start "
                "from it"]
               if (warm := [k for k, v in levers.items() if pretrain_part(v).get("train")]) else []),
             *([f"{', '.join(longer)}: run parameters of both arms (dynamic and zero) changed by the lever's run fields "
                "(finetune_iters: fine-tuning clips per arm)"]
               if (longer := [k for k, v in levers.items() if v.get("run")]) else []),
             "not in the paper; these are this project's measurements at a tiny scale"]
    text = to_markdown(table[[c for c in short if c in table.columns]].round(3),
                       "Memory levers at smoke scale (issue 21)", notes, paper_source=False)
    text += "\n" + to_markdown(runs[[c for c in runs.columns if c not in ("train s",)]].round(3), "Per run",
                               ["one row per lever and seed"], paper_source=False)
    path = out / "levers.md"
    path.write_text(text)
    return path


def _pool(fn, jobs, processes):
    if processes <= 1:
        return [fn(*j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, *zip(*jobs)))


def collect(out: Path, names: list, command: str, profile: str, params: dict, videos: int, data_seed: int,
            stat_videos: int, combined: tuple = ()) -> Path:
    """The table from the finished runs' ``lever_row.json`` in ``out/work`` (levers ``names``, in
    that order), naming ``command`` as what ran them (for a call that was stopped)."""
    found = sorted((out / "work").glob("seed-*/*/lever_row.json"))
    order = {n: i for i, n in enumerate(names)}
    rows = sorted([r for r in (json.loads(f.read_text())["row"] for f in found) if r["lever"] in order],
                  key=lambda r: (order[r["lever"]], r["seed"]))
    (out / "levers_runs.json").write_text(json.dumps(rows, indent=1))
    wall = (sum(r["wall s"] for r in rows),)
    return write(rows, out, command, profile, params, videos, data_seed, stat_videos,
                 {n: lever(n, combined) for n in names if any(r["lever"] == n for r in rows)}, wall)


def run_levers(levers: dict, seeds: list, out: Path, command: str, profile: str, overrides: dict, params: dict,
               jobs: int = 2, videos: int = 16, data_seed: int = 100, stat_videos: int = 4) -> Path:
    """Pre-train once per seed, then every (lever, seed) on ``jobs`` processes; the table goes to
    ``out`` beside the rows of other levers measured there before. Returns ``levers.md``'s path."""
    t0 = time.time()
    memory_eval_set(videos, data_seed)  # generate once, before the processes
    _pool(pretrain_seed, [(profile, s, str(out), overrides) for s in seeds], jobs)
    rows = _pool(run_lever, [(profile, n, lv, s, str(out), overrides, videos, data_seed, stat_videos)
                             for n, lv in levers.items() for s in seeds], jobs)
    # earlier rows of other levers in this folder (a table built over several calls)
    old = out / "levers_runs.json"
    kept = [r for r in (json.loads(old.read_text()) if old.is_file() else []) if r["lever"] not in levers]
    rows = kept + rows
    old.write_text(json.dumps(rows, indent=1))
    return write(rows, out, command, profile, params, videos, data_seed, stat_videos,
                 {**{r["lever"]: LEVERS.get(r["lever"], {}) for r in kept}, **levers}, time.time() - t0)


def lever(name: str, combined: tuple = ()) -> dict:
    """A lever by name; ``combined`` joins the levers it names."""
    return combine(list(combined)) if name == "combined" else LEVERS[name]

