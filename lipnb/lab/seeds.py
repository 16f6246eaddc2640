"""Table 3 over several seeds: dynamic memory vs zero hidden state, with the spread.

    python -m lipnb ablation --profile smoke --seeds 0 1 2 --jobs 2
    python -m lipnb ablation --profile davis-cpu --seeds 0 1 2 -p finetune_iters 100
    python -m lipnb ablation --profile davis-cpu --seeds 0 1 2 --tables table1 --jobs 2 \
        --reference results/davis-cpu
    python -m lipnb ablation --profile davis-cpu --seeds 0 1 2 --jobs 2 --reference results/davis-cpu --dial

One seed is one whole run of notebooks 01-04's stages with that seed (pre-training; fine-tuning
with dynamic memory and, from the same pre-trained weights, with the hidden state held at zero;
online fine-tuning and inference of both models on the Table 2 videos, and on the Table 1 videos
where those differ, or on those of ``--tables`` only; evaluation), in
``results/<profile>-ablation/seed-<s>/`` (its ``work/`` is not committed). Every stage continues
from what an interrupted call left; ``--reference results/<profile>`` reads the seed that
reproduction ran instead of running it again. Then:

* ``ablation_seeds.csv``: one row per seed, videos and memory (J&F, J, F Mean in percent);
* ``ablation_seeds.md``: per videos, the mean and standard deviation over seeds of each model's
  J&F and of the paired difference dynamic - zero, with the scale of the runs;
* with ``--dial``, ``ablation_dial.{csv,md,png}``: the memory dial (:mod:`lipnb.lab.dial`) on
  Table 2's videos for every seed, and its mean over seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

from lipnb.lab import dial as memory_dial
from lipnb.lab import recipes
from lipnb.profiles import RESULT_PARAMETERS, notebook_parameters
from lipnb.report.figures import save
from lipnb.report.tables import to_markdown
from lipnb.repro import stages

METRICS = ("J&F-Mean", "J-Mean", "F-Mean")
TABLES = ("table2", "table1")  # whose videos the two models run on


def run_seed(profile: str, seed: int, out: str, overrides: dict, tables=TABLES,
             dial: bool = False, finetune_settings: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Train, run and score both models for one seed on the videos of ``tables`` (a set of videos
    shared by two tables runs once), then (``dial``) the memory dial on Table 2's videos. Returns
    ``(one row per (videos, memory), one dial row per alpha or [])``. ``finetune_settings``:
    ``{"train": TrainConfig fields, "model": LIPConfig fields}`` both arms' fine-tuning uses (a
    lever of :mod:`lipnb.lab.levers`; the fields a static memory ignores are dropped for the zero
    arm); None: the profile's."""
    run = stages.Run(**notebook_parameters(profile, out_dir=out, seed=seed, **overrides)).setup()
    stages.train_stage(run, "pretrain")
    if finetune_settings:
        from lipnb.lab import levers

        levers.train_lever(run, finetune_settings, run.work / "finetune", zero_hidden=False)
        levers.train_lever(run, levers.static_part(finetune_settings), run.work / "finetune-zero", zero_hidden=True)
    else:
        stages.train_stage(run, "finetune")
        stages.train_stage(run, "finetune", zero_hidden=True)
    sets = []
    for table in tables:
        es = stages.eval_set(run, table)
        if all(es.key != other.key for other in sets):
            sets.append(es)
    # each model's online recipe, chosen on training videos (notebooks 03, 04)
    recipe = {zero: recipes.choose(run, zero_hidden=zero) for zero in (False, True)}
    rows = []
    for es in sets:
        for zero in (False, True):
            pred = stages.predict(run, es, recipe[zero], zero_hidden=zero)
            rows.append(_row(seed, stages.evaluate(run, es, pred, es.table + ("-zero" if zero else ""),
                                                   zero_hidden=zero)))
    if not dial:
        return rows, []
    return rows, memory_dial.seed_rows(run, seed)


def _row(seed: int, ev: dict) -> dict:
    return {"seed": seed, "videos": ev["data"], "protocol": ev["protocol"], "memory": ev["memory"],
            **{m: round(100 * ev["global"][m], 2) for m in METRICS}, "sequences": len(ev["sequences"])}


# the evaluations a reproduction (``python -m lipnb reproduce``) writes, per table: dynamic, zero
REFERENCE_EVALUATIONS = {"table2": ("table2", "table3-zero"), "table1": ("table1", "table3-zero-table1")}


def reference_rows(reference: Path, profile: str, overrides: dict, seeds, tables=TABLES) -> list[dict]:
    """The rows of the seed a finished reproduction (``python -m lipnb reproduce``, its
    ``results/<profile>`` folder) ran, read from its ``evaluations/``; [] when that seed is not in
    ``seeds``. Every parameter that shapes the result (:data:`~lipnb.profiles.RESULT_PARAMETERS`) must equal the ablation's
    for that seed, else ValueError."""
    manifest_path = Path(reference) / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} not found: --reference takes a results/<profile> folder "
                                "written by 'python -m lipnb reproduce'")
    given = json.loads(manifest_path.read_text())["parameters"]
    if given["seed"] not in seeds:
        return []
    params = notebook_parameters(profile, **{**overrides, "seed": given["seed"]})
    differ = [f"{k} {given.get(k)} != {params[k]}" for k in RESULT_PARAMETERS if given.get(k) != params[k]]
    if differ:
        raise ValueError(f"{manifest_path}: the reproduction ran with other parameters ({', '.join(differ)})")
    rows, seen = [], set()
    for table in tables:
        dynamic, zero = (manifest_path.parent / "evaluations" / f"{n}.json" for n in REFERENCE_EVALUATIONS[table])
        ev = json.loads(dynamic.read_text())
        if ev["data"] in seen:
            continue  # these videos were scored for an earlier table
        seen.add(ev["data"])
        if not zero.is_file():  # the zero-state model ran on Table 2's videos only (Table 1 shares them)
            continue
        rows += [_row(given["seed"], ev), _row(given["seed"], json.loads(zero.read_text()))]
    return rows


def summarize(rows: list[dict]):
    """Per videos: mean and std over seeds of each model's J&F and of dynamic - zero (paired)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for videos, g in df.groupby("videos", sort=False):
        wide = g.pivot(index="seed", columns="memory", values="J&F-Mean")
        diff = wide["dynamic"] - wide["zero"]
        out.append({"videos": videos, "seeds": len(wide),
                    "dynamic J&F mean": wide["dynamic"].mean(), "dynamic J&F std": wide["dynamic"].std(ddof=1),
                    "zero J&F mean": wide["zero"].mean(), "zero J&F std": wide["zero"].std(ddof=1),
                    "dynamic - zero mean": diff.mean(), "dynamic - zero std": diff.std(ddof=1),
                    "seeds where dynamic wins": int((diff > 0).sum())})
    return pd.DataFrame(out).round(2)


def write_report(rows: list[dict], folder: Path, profile: str, params: dict, tables=TABLES,
                 reference: tuple | None = None) -> Path:
    """``ablation_seeds.{csv,md}`` in ``folder``; ``reference``: (folder, seed) when that seed's rows
    were read from a reproduction."""
    import pandas as pd

    per_seed = pd.DataFrame(rows).sort_values(["videos", "seed", "memory"])
    per_seed.to_csv(folder / "ablation_seeds.csv", index=False)
    summary = summarize(rows)
    defaults = notebook_parameters(profile)
    given = "".join(f" -p {k} {v}" for k, v in params.items() if k not in ("out_dir", "threads", "jobs", "seed")
                    and v != defaults[k])
    if tuple(tables) != TABLES:
        given = f" --tables {' '.join(tables)}" + given
    notes = ["std: sample standard deviation over seeds; the difference is paired by seed",
             "the paper's Table 3 (DAVIS 2017 val, one run): zero 59.2, dynamic 61.1"]
    if reference:
        given += f" --reference {reference[0]}"
        notes.insert(1, f"seed {reference[1]}: read from the reproduction in `{reference[0]}` (same parameters)")
    scale = (f"profile `{profile}`, measured by this project (`python -m lipnb ablation --profile {profile} "
             f"--seeds {' '.join(str(s) for s in sorted(per_seed.seed.unique()))}{given}`); iterations: pre-training "
             f"{params['pretrain_iters']}, fine-tuning {params['finetune_iters']}, online fine-tuning <= "
             f"{params['online_iters']} per sequence, id-head refresh <= {params['refresh_iters']} per frame")
    text = (to_markdown(summary, "Table 3 over seeds: dynamic memory vs zero hidden state (J&F-Mean, %)",
                        [scale, *notes])
            + "\n" + to_markdown(per_seed, "Per seed", ["one row per seed, videos and memory"], paper_source=False))
    path = folder / "ablation_seeds.md"
    path.write_text(text)
    return path


def write_dial_report(rows: list[dict], folder: Path, profile: str, reference: tuple | None = None) -> Path:
    """``ablation_dial.{csv,md,png}``: the memory dial per seed and its mean over seeds."""
    import pandas as pd

    per_seed = pd.DataFrame(rows).sort_values(["seed", "alpha"])
    per_seed.to_csv(folder / "ablation_dial.csv", index=False)
    save(memory_dial.plot_seeds(rows), folder / "ablation_dial.png")
    notes = [f"profile `{profile}`, measured by this project (`python -m lipnb ablation --profile {profile} --dial`, "
             "seeds and parameters as in ablation_seeds.md); videos: " + per_seed["videos"].iloc[0],
             "the dynamic model with its carried state scaled by alpha in online fine-tuning and inference: "
             "alpha 1 is the dynamic model's own run, alpha 0 the same weights with the zero state "
             "(not the model fine-tuned with the zero state)", "not in the paper"]
    if reference:
        notes.append(f"seed {reference[1]}: read from the reproduction in `{reference[0]}` (notebook 04)")
    text = (to_markdown(memory_dial.summarize_seeds(rows), "The memory dial over seeds (J&F-Mean, %)", notes,
                        paper_source=False)
            + "\n" + to_markdown(per_seed, "Per seed", ["one row per seed and alpha"], paper_source=False))
    path = folder / "ablation_dial.md"
    path.write_text(text)
    return path
