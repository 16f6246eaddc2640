"""What each notebook does, as functions: the notebooks explain, these compute.

A :class:`Run` holds one notebook's parameters (see :mod:`lipnb.profiles`) and the
folders the notebooks share through files::

    out_dir/work/pretrain/        last.pt, log.csv       (01, COCO-style pre-training, zero hidden state)
    out_dir/work/finetune/        last.pt, log.csv       (02, DAVIS fine-tuning, dynamic memory)
    out_dir/work/finetune-zero/   last.pt, log.csv       (04, the same fine-tuning with zero hidden state)
    out_dir/work/online/<set>[-zero]/<seq>/<frame>.png    (03, 04, online inference)
    out_dir/evaluations/<name>.json   J&F of one prediction folder (small; the tables read these)
    out_dir/figures/*.png             figures

Every number in a table traces to one evaluation file, and that file names the data, protocol,
sequences, checkpoint and iterations that produced it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from lipnb import profiles
from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.metrics import evaluate as davis_evaluate
from lipnb.online import OnlineConfig, infer_davis, load_model
from lipnb.paths import RESULTS_DIR
from lipnb.profiles import COMMON
from lipnb.report.figures import setup as setup_figures
from lipnb.train import TrainConfig, train
from lipnb.train.build import build_data, resolve_data_root

SINGLE_OBJECT_VIEW = "davis2016-view"  # procedural videos laid out for the DAVIS 2016 protocol


@dataclass
class Run:
    """One run's notebook parameters (what papermill injects; see :data:`lipnb.profiles.COMMON`)::

        run = Run(**notebook_parameters("davis-cpu", out_dir="results/davis-cpu")).setup()
    """

    profile: str
    out_dir: str
    device: str
    threads: int
    jobs: int
    seed: int
    coco: str
    davis_train: str
    davis2016: str
    davis2017: str
    frames_resolution: str
    num_sequences: int
    pretrain_iters: int
    finetune_iters: int
    online_iters: int
    online_lr: float
    refresh_iters: int

    @classmethod
    def from_namespace(cls, namespace: dict) -> "Run":
        """The parameters from a notebook's globals (the names of the ``parameters`` cell)."""
        return cls(**{k: namespace.get(k, v) for k, v in COMMON.items()})

    @property
    def params(self) -> dict:
        return asdict(self)

    @property
    def out(self) -> Path:
        return Path(self.out_dir).expanduser().resolve()

    @property
    def work(self) -> Path:
        return self.out / "work"

    @property
    def figures(self) -> Path:
        return self.out / "figures"

    @property
    def evaluations(self) -> Path:
        return self.out / "evaluations"

    def checkpoint(self, stage: str) -> Path:
        """``pretrain``, ``finetune`` or ``finetune-zero`` -> its ``last.pt``."""
        return self.work / stage / "last.pt"

    def setup(self) -> "Run":
        """Seeds, torch threads, folders. Call once at the top of a notebook."""
        import numpy as np
        import torch

        if self.threads:
            torch.set_num_threads(int(self.threads))
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        for folder in (self.work, self.figures, self.evaluations):
            folder.mkdir(parents=True, exist_ok=True)

        setup_figures()  # PNG at figures.DPI, inline and saved
        return self

    def device_name(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "out_dir")


# ----------------------------------------------------------------------------- training (01, 02, 04)


def _scaled(milestones, default_iters: int, iters: int) -> tuple:
    """A schedule's milestones moved to the same fractions of a different length."""
    return tuple(max(1, round(m * iters / default_iters)) for m in milestones)


def train_config(run: Run, stage: str, zero_hidden: bool = False):
    """The profile's TrainConfig for ``stage`` at this run's iterations, data, seed and device."""
    base = profiles.train_config(run.profile, stage)
    iters = int(run.pretrain_iters if stage == "pretrain" else run.finetune_iters)
    overrides = dict(
        data=run.coco if stage == "pretrain" else run.davis_train,
        max_iters=iters, milestones=_scaled(base.milestones, base.max_iters, iters),
        warmup_iters=min(base.warmup_iters, iters // 5), seed=run.seed, device=run.device,
        ckpt_every=max(1, min(base.ckpt_every, iters)), procedural_seed=run.seed)
    if stage == "finetune":
        overrides["init"] = str(run.checkpoint("pretrain"))
        if zero_hidden:  # Table 3: "fine-tuning ... is done by training with static images only"
            overrides["static_memory"] = True
    return profiles.train_config(run.profile, stage, **overrides)


FINISHED_KEYS = ("stage", "seed", "batch_size", "micro_batch", "data", "procedural_seed", "max_iters")


def finished_summary(cfg, folder: Path) -> dict | None:
    """The recorded ``summary.json`` of a run in ``folder`` that already reached ``cfg.max_iters``
    with the same stage, data, seed, batch and length (``config.json`` says), else None."""
    summary, config = folder / "summary.json", folder / "config.json"
    if not ((folder / "last.pt").is_file() and summary.is_file() and config.is_file()):
        return None
    recorded, trained = json.loads(summary.read_text()), json.loads(config.read_text()).get("train", {})
    mine = cfg.to_dict()
    if recorded.get("final_step") != cfg.max_iters or any(trained.get(k) != mine.get(k) for k in FINISHED_KEYS):
        return None
    return recorded


def train_stage(run: Run, stage: str, zero_hidden: bool = False) -> dict:
    """Train ``stage`` into ``work/<stage>[-zero]``; returns the loop's summary. A stage already
    finished there (a re-run cell, a resumed reproduction, a moved staging folder) is kept as it
    is: its ``summary.json`` is returned untouched and nothing is trained. An interrupted one is
    continued from its checkpoint, with a progress bar."""

    cfg = train_config(run, stage, zero_hidden)
    folder = run.work / (stage + ("-zero" if zero_hidden else ""))
    name = f"{stage}{' (zero hidden state)' if zero_hidden else ''}"
    done = finished_summary(cfg, folder)
    if done is not None:
        print(f"{name}: already finished ({done['steps_run']} steps in {done['wall_s']:.0f} s), kept")
        return done
    resume = (folder / "last.pt").is_file()
    summary = train(cfg, folder, resume=resume, progress=resume)
    print(f"{name}: {summary['steps_run']} steps in "
          f"{summary['wall_s']:.0f} s, loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f}")
    return summary


def training_log(run: Run, stage: str):
    """``work/<stage>/log.csv`` as a DataFrame (one row per step)."""
    import pandas as pd

    return pd.read_csv(run.work / stage / "log.csv")


# ----------------------------------------------------------------------------- evaluation data


def data_root(name: str, stage: str = "finetune") -> Path:
    """A data keyword or folder -> the folder (the training code's rules)."""

    return resolve_data_root(TrainConfig(stage=stage, data=name))


def _procedural_davis(run: Run) -> Path:

    return ensure_procedural(ProceduralSpec(seed=run.seed)).davis


def single_object_view(davis_root: Path, dest: Path, split: str = "val") -> Path:
    """A DAVIS 2017 folder laid out for the DAVIS 2016 protocol: the same frames and masks
    (linked, not copied) and ``ImageSets/2016/<split>.txt``; read with ``year="2016"`` every
    object of a mask is one foreground ("we detect multiple objects and evaluate in the way
    for single-object", §5.2)."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in ("JPEGImages", "Annotations"):
        link = dest / folder
        if not link.exists():
            os.symlink(davis_root.resolve() / folder, link, target_is_directory=True)
    split_file = dest / "ImageSets" / "2016" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text((davis_root / "ImageSets" / "2017" / f"{split}.txt").read_text())
    return dest


@dataclass
class EvalSet:
    """One table's evaluation set: the dataset scored, the dataset the model runs on, a label."""

    table: str  # "table1" | "table2"
    label: str  # what the tables print, e.g. "procedural videos (DAVIS 2016 protocol: objects merged)"
    key: str  # prediction folder name under work/online/
    scored: object  # DavisDataset read with the table's protocol
    inferred: object  # DavisDataset the online inference runs on
    sequences: list


def eval_set(run: Run, table: str) -> EvalSet:
    """Table 1 (DAVIS 2016 protocol) or Table 2 (DAVIS 2017 protocol) data of this run."""

    name = run.davis2016 if table == "table1" else run.davis2017
    if name == "procedural":
        root = _procedural_davis(run)
        multi = DavisDataset(root, "2017", "val")
        if table == "table1":
            view = single_object_view(root, run.work / SINGLE_OBJECT_VIEW)
            scored, label = DavisDataset(view, "2016", "val"), "procedural videos, objects merged (DAVIS 2016 protocol)"
        else:
            scored, label = multi, "procedural multi-object videos (DAVIS 2017 protocol; DAVIS 2017 absent)"
        inferred, key = multi, "procedural-val"
    else:
        year = "2016" if table == "table1" else "2017"
        root = data_root(name)
        scored = inferred = DavisDataset(root, year, "val", "480p", run.frames_resolution)
        label, key = f"DAVIS {year} val ({root.name}, frames {run.frames_resolution})", f"davis{year}-val"
    names = list(scored.sequences)
    if run.num_sequences:
        names = names[: int(run.num_sequences)]
    return EvalSet(table, label, key, scored, inferred, names)


# ----------------------------------------------------------------------------- online (03, 04)


def online_config(run: Run):
    """The paper's online settings with this run's iteration caps (schedule scaled to fit)."""

    paper = OnlineConfig()
    iters = int(run.online_iters)
    return OnlineConfig(max_iters=iters, lr=float(run.online_lr),
                        milestones=_scaled(paper.milestones, paper.max_iters, iters),
                        warmup_iters=min(paper.warmup_iters, iters // 10), refresh_iters=int(run.refresh_iters),
                        seed=run.seed)


def load_offline_model(run: Run, zero_hidden: bool = False):
    """The fine-tuned model (``finetune`` or, for Table 3, ``finetune-zero`` with the Conv-GRU's
    input hidden state held at zero on every frame)."""

    model = load_model(run.checkpoint("finetune-zero" if zero_hidden else "finetune"), device=run.device_name())
    if zero_hidden:
        model.hold_hidden_at_zero()
    return model


def predict(run: Run, es: EvalSet, cfg, zero_hidden: bool = False, model=None) -> Path:
    """Online fine-tuning + inference on ``es``'s sequences with the online settings ``cfg`` (an
    :class:`~lipnb.online.OnlineConfig`, e.g. the recipe :func:`lipnb.lab.recipes.chosen` picked)
    -> ``work/online/<key>[-zero][-alpha<a>]/`` (``a``: ``cfg.memory_alpha``, the scale of the
    carried state, when not 1 as in the paper). A folder already complete for these sequences, this
    checkpoint and these settings is reused (Tables 1 and 2 share one inference when they share
    the videos); sequences finished by an interrupted call with the same model and settings are kept."""

    alpha = cfg.memory_alpha
    out = run.work / "online" / (es.key + ("-zero" if zero_hidden else "") + (f"-alpha{alpha:g}" if alpha != 1 else ""))
    done, started = out / "done.json", out / "started.json"
    ckpt = run.checkpoint("finetune-zero" if zero_hidden else "finetune")
    key = json.loads(json.dumps({"checkpoint": str(ckpt.relative_to(run.out)),  # relative: the run folder may move
                                 "checkpoint_mtime_ns": ckpt.stat().st_mtime_ns, "online": cfg.to_dict()}))
    if done.is_file() and json.loads(done.read_text()) == {"sequences": es.sequences, **key}:
        return out  # same sequences, same model, same settings
    resume = started.is_file() and json.loads(started.read_text()) == key
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        started.write_text(json.dumps(key))
    model = model or load_offline_model(run, zero_hidden)
    print(f"online fine-tuning and inference: {len(es.sequences)} sequences -> {out.relative_to(run.out)}", flush=True)
    results = infer_davis(model, es.inferred, out, cfg, es.sequences, progress=True, resume=resume,
                          jobs=run.jobs)
    for r in results:
        print(f"  {r.name}: {r.num_frames} frames, {r.num_objects} object(s), fine-tuning {r.finetune_iters} it "
              f"/ {r.finetune_s:.1f} s, {r.inference_fps:.1f} frames/s, found {r.found:.0%}")
    done.write_text(json.dumps({"sequences": es.sequences, **key}))
    return out


def evaluate(run: Run, es: EvalSet, predictions: Path, name: str, zero_hidden: bool = False,
             method: str = "LIP", alpha: float = 1.0) -> dict:
    """J&F of ``predictions`` under ``es``'s protocol -> ``evaluations/<name>.json`` (returned).
    ``method``: ``LIP`` (this run's model) or a baseline's name (:mod:`lipnb.lab.baselines`); ``alpha``: the scale of
    the carried state the predictions were made with (:func:`predict`)."""

    ev = davis_evaluate(es.scored, predictions, sequences=es.sequences, processes=1, progress=False)
    lip = method == "LIP"
    record = {
        "table": es.table, "method": method, "protocol": f"DAVIS {es.scored.year}", "data": es.label,
        "data_root": str(es.inferred.root), "sequences": es.sequences,
        "memory": ("zero" if zero_hidden else "dynamic" if alpha == 1 else f"dynamic x {alpha:g}") if lip else "none",
        "checkpoint": str(run.checkpoint("finetune-zero" if zero_hidden else "finetune").relative_to(run.out)) if lip else None,
        "profile": run.profile, "iterations": {k: run.params[k] for k in
                                               ("pretrain_iters", "finetune_iters", "online_iters", "online_lr", "refresh_iters")},
        "global": ev.global_results(),
        "per_object": [{"name": n, "J-Mean": j, "F-Mean": f} for n, j, f in ev.per_sequence_results()],
    }
    (run.evaluations / f"{name}.json").write_text(json.dumps(record, indent=1))
    g = record["global"]
    print(f"{name}: {es.label}, {len(es.sequences)} sequences: J&F {100 * g['J&F-Mean']:.1f}  "
          f"J {100 * g['J-Mean']:.1f}  F {100 * g['F-Mean']:.1f}")
    return record


def load_evaluations(run: Run) -> dict:
    """Every ``evaluations/<name>.json`` of this run, by name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(run.evaluations.glob("*.json"))}


def earlier_run(run: Run) -> dict | None:
    """The from-scratch reference beside this run in Table 1: ``results/<profile>-scratch``'s
    Table 1 evaluation, when that run exists and scored the same sequences (else None)."""

    folder = RESULTS_DIR / f"{run.profile}-scratch"
    path = folder / "evaluations" / "table1.json"
    if run.profile.endswith("-scratch") or not path.is_file():
        return None
    ev = json.loads(path.read_text())
    mine = run.evaluations / "table1.json"
    if mine.is_file() and json.loads(mine.read_text())["sequences"] != ev["sequences"]:
        return None
    manifest = folder / "manifest.json"
    commit = json.loads(manifest.read_text())["git"]["commit"][:7] if manifest.is_file() else "unknown"
    return {"label": f"LIP from scratch, no ImageNet ({folder.name})", "source": f"earlier run (commit {commit})",
            "evaluation": ev, "path": str(path.relative_to(RESULTS_DIR.parent))}


def load_evaluation(run: Run, name: str) -> dict:
    path = run.evaluations / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the notebook that writes it first")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- what to show

FIGURE_SEQUENCES = ("parkour", "drift-straight", "dogs-jump", "blackswan", "car-shadow")  # the paper's examples


def figure_sequences(es: EvalSet, k: int = 3) -> list:
    """Up to ``k`` sequences to draw: the paper's Fig. 1 / 6 sequences when evaluated, else the first."""
    chosen = [s for s in FIGURE_SEQUENCES if s in es.sequences]
    return (chosen + [s for s in es.sequences if s not in chosen])[:k]


def most_different(dynamic: dict, zero: dict) -> str:
    """The sequence whose J Mean gains most from the dynamic memory (Fig. 8's example)."""
    def by_sequence(ev):
        out: dict = {}
        for row in ev["per_object"]:
            out.setdefault(row["name"].rsplit("_", 1)[0], []).append(row["J-Mean"])
        return {k: sum(v) / len(v) for k, v in out.items()}

    d, z = by_sequence(dynamic), by_sequence(zero)
    return max(d, key=lambda s: d[s] - z.get(s, 0.0))


def first_samples(run: Run, stage: str, n: int = 4):
    """The first ``n`` training samples of ``stage`` (exactly what step 0 reads) and the id names."""

    data = build_data(train_config(run, stage))
    samples = [data.stream[i] for i in range(n)]
    names = data.meta.get("categories") or [f"{s}/{o}" for s, o in data.meta.get("ids", [])]
    return samples, names


def online_iterations(predictions: Path):
    """The first-frame fine-tuning of each sequence of a :func:`predict` folder (its ``timing.csv``):
    a DataFrame with sequence, iterations, stopped_early, seconds."""
    import pandas as pd

    t = pd.read_csv(Path(predictions) / "timing.csv")
    return pd.DataFrame({"sequence": t["name"], "iterations": t["finetune_iters"],
                         "stopped_early": t["finetune_stopped_early"].astype(bool),
                         "seconds": t["finetune_s"].round(1)})
