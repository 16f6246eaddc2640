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
* with ``--dial``, ``ablation_dial.{csv,md,png}``: the memory dial (:mod:`lipnb.report.dial`) on
  Table 2's videos for every seed, and its mean over seeds.
"""

from __future__ import annotations

import argparse

from lipnb.report.profiles import PROFILES
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from lipnb import paths

METRICS = ("J&F-Mean", "J-Mean", "F-Mean")
TABLES = ("table2", "table1")  # whose videos the two models run on


def run_seed(profile: str, seed: int, out: str, overrides: dict, tables=TABLES,
             dial: bool = False) -> tuple[list[dict], list[dict]]:
    """Train, run and score both models for one seed on the videos of ``tables`` (a set of videos
    shared by two tables runs once), then (``dial``) the memory dial on Table 2's videos. Returns
    ``(one row per (videos, memory), one dial row per alpha or [])``."""
    from lipnb.report import stages
    from lipnb.report.profiles import notebook_parameters

    run = stages.Run(notebook_parameters(profile, out_dir=out, seed=seed, **overrides)).setup()
    stages.train_stage(run, "pretrain")
    stages.train_stage(run, "finetune")
    stages.train_stage(run, "finetune", zero_hidden=True)
    sets = []
    for table in tables:
        es = stages.eval_set(run, table)
        if all(es.key != other.key for other in sets):
            sets.append(es)
    from lipnb.report import recipes

    for zero in (False, True):  # each model's online recipe, chosen on training videos (notebooks 03, 04)
        recipes.choose(run, zero_hidden=zero)
    rows = []
    for es in sets:
        for zero in (False, True):
            pred = stages.predict(run, es, zero_hidden=zero)
            rows.append(_row(seed, stages.evaluate(run, es, pred, es.table + ("-zero" if zero else ""),
                                                   zero_hidden=zero)))
    if not dial:
        return rows, []
    from lipnb.report import dial as memory_dial

    return rows, memory_dial.seed_rows(run, seed)


def _row(seed: int, ev: dict) -> dict:
    return {"seed": seed, "videos": ev["data"], "protocol": ev["protocol"], "memory": ev["memory"],
            **{m: round(100 * ev["global"][m], 2) for m in METRICS}, "sequences": len(ev["sequences"])}


# the evaluations a reproduction (``python -m lipnb reproduce``) writes, per table: dynamic, zero
REFERENCE_EVALUATIONS = {"table2": ("table2", "table3-zero"), "table1": ("table1", "table3-zero-table1")}
COMPARED = ("profile", "seed", "coco", "davis_train", "davis2016", "davis2017", "frames_resolution",
            "num_sequences", "pretrain_iters", "finetune_iters", "online_iters", "online_lr", "refresh_iters")


def reference_rows(reference: Path, profile: str, overrides: dict, seeds, tables=TABLES) -> list[dict]:
    """The rows of the seed a finished reproduction (``python -m lipnb reproduce``, its
    ``results/<profile>`` folder) ran, read from its ``evaluations/``; [] when that seed is not in
    ``seeds``. Every parameter that shapes the result (``COMPARED``) must equal the ablation's
    for that seed, else ValueError."""
    from lipnb.report.profiles import notebook_parameters

    manifest_path = Path(reference) / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} not found: --reference takes a results/<profile> folder "
                                "written by 'python -m lipnb reproduce'")
    given = json.loads(manifest_path.read_text())["parameters"]
    if given["seed"] not in seeds:
        return []
    params = notebook_parameters(profile, **{**overrides, "seed": given["seed"]})
    differ = [f"{k} {given.get(k)} != {params[k]}" for k in COMPARED if given.get(k) != params[k]]
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
    from lipnb.report.profiles import notebook_parameters
    from lipnb.report.tables import to_markdown

    import pandas as pd

    per_seed = pd.DataFrame(rows).sort_values(["videos", "seed", "memory"])
    per_seed.to_csv(folder / "ablation_seeds.csv", index=False)
    summary = summarize(rows)
    defaults = notebook_parameters(profile)
    given = "".join(f" -p {k} {v}" for k, v in params.items() if k not in ("out_dir", "threads", "seed")
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="smoke", choices=PROFILES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES),
                        help="run on the videos of these tables (default: both)")
    parser.add_argument("--reference", metavar="DIR",
                        help="a results/<profile> folder of 'python -m lipnb reproduce' run with the same "
                             "parameters: its seed's rows are read from its evaluations, not run again")
    parser.add_argument("--dial", action="store_true",
                        help="also run the memory dial (the carried state x alpha) on Table 2's videos for each "
                             "seed -> ablation_dial.{csv,md,png}")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (processes, 1 torch thread each)")
    parser.add_argument("--results-dir", default=str(paths.RESULTS_DIR),
                        help="outputs go to RESULTS_DIR/<profile>-ablation/ (default: %(default)s)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override one notebook parameter (e.g. -p finetune_iters 100)")


def run(args: argparse.Namespace) -> int:
    from lipnb.report.pipeline import parse_overrides
    from lipnb.report.profiles import notebook_parameters

    overrides = parse_overrides(args.parameter)
    if args.jobs > 1:
        overrides["threads"] = 1
    try:
        params = notebook_parameters(args.profile, **overrides)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    from lipnb.validate import notebook_parameter_problems, raise_all

    raise_all(notebook_parameter_problems(params, overrides))  # one error line per bad value
    reused = []
    if args.reference:
        try:
            reused = reference_rows(Path(args.reference), args.profile, overrides, args.seeds, args.tables)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: --reference {args.reference}: {e}", file=sys.stderr)
            return 2
    folder = Path(args.results_dir).resolve() / f"{args.profile}-ablation"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(args.profile, s, str(folder / f"seed-{s}"), overrides, tuple(args.tables), args.dial)
            for s in args.seeds if s not in {row["seed"] for row in reused}]
    if args.jobs > 1 and jobs:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            per_seed = list(pool.map(run_seed, *zip(*jobs)))
    else:
        per_seed = [run_seed(*job) for job in jobs]
    rows = reused + [row for seed_rows, _ in per_seed for row in seed_rows]
    (folder / "rows.json").write_text(json.dumps(rows, indent=1))
    reference = (args.reference, reused[0]["seed"]) if reused else None
    path = write_report(rows, folder, args.profile, params, args.tables, reference)
    print("\n" + path.read_text())
    if args.dial:
        from lipnb.report import dial

        dial_rows = [row for _, seed_dial in per_seed for row in seed_dial]
        if reused:
            dial_rows = dial.read_rows(Path(args.reference) / "evaluations", reused[0]["seed"], args.profile) + dial_rows
        print(write_dial_report(dial_rows, folder, args.profile, reference).read_text())
    return 0


def write_dial_report(rows: list[dict], folder: Path, profile: str, reference: tuple | None = None) -> Path:
    """``ablation_dial.{csv,md,png}``: the memory dial per seed and its mean over seeds."""
    import pandas as pd

    from lipnb.report import dial
    from lipnb.report.figures import save
    from lipnb.report.tables import to_markdown

    per_seed = pd.DataFrame(rows).sort_values(["seed", "alpha"])
    per_seed.to_csv(folder / "ablation_dial.csv", index=False)
    save(dial.plot_seeds(rows), folder / "ablation_dial.png")
    notes = [f"profile `{profile}`, measured by this project (`python -m lipnb ablation --profile {profile} --dial`, "
             "seeds and parameters as in ablation_seeds.md); videos: " + per_seed["videos"].iloc[0],
             "the dynamic model with its carried state scaled by alpha in online fine-tuning and inference: "
             "alpha 1 is the dynamic model's own run, alpha 0 the same weights with the zero state "
             "(not the model fine-tuned with the zero state)", "not in the paper"]
    if reference:
        notes.append(f"seed {reference[1]}: read from the reproduction in `{reference[0]}` (notebook 04)")
    text = (to_markdown(dial.summarize_seeds(rows), "The memory dial over seeds (J&F-Mean, %)", notes,
                        paper_source=False)
            + "\n" + to_markdown(per_seed, "Per seed", ["one row per seed and alpha"], paper_source=False))
    path = folder / "ablation_dial.md"
    path.write_text(text)
    return path
