"""``python -m lipnb ablation``: Table 3 over several seeds (:mod:`lipnb.lab.seeds`).

    python -m lipnb ablation --profile smoke --seeds 0 1 2 --jobs 2
    python -m lipnb ablation --profile davis-cpu --seeds 0 1 2 --jobs 2 --reference results/davis-cpu --dial
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from lipnb import paths
from lipnb.cli.reproduce import parse_overrides
from lipnb.errors import fail, raise_all
from lipnb.lab import dial, seeds
from lipnb.lab.seeds import TABLES
from lipnb.profiles import PROFILES, notebook_parameter_problems, notebook_parameters


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
    overrides = parse_overrides(args.parameter)
    if args.jobs > 1:
        overrides["threads"] = 1
    try:
        params = notebook_parameters(args.profile, **overrides)
    except KeyError as e:
        fail(e.args[0])
    raise_all(notebook_parameter_problems(params, overrides))  # one error line per bad value
    reused = []
    if args.reference:
        try:
            reused = seeds.reference_rows(Path(args.reference), args.profile, overrides, args.seeds, args.tables)
        except (OSError, ValueError, KeyError) as e:
            fail(f"--reference {args.reference}: {e}")
    folder = Path(args.results_dir).resolve() / f"{args.profile}-ablation"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(args.profile, s, str(folder / f"seed-{s}"), overrides, tuple(args.tables), args.dial)
            for s in args.seeds if s not in {row["seed"] for row in reused}]
    if args.jobs > 1 and jobs:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            per_seed = list(pool.map(seeds.run_seed, *zip(*jobs)))
    else:
        per_seed = [seeds.run_seed(*job) for job in jobs]
    rows = reused + [row for seed_rows, _ in per_seed for row in seed_rows]
    (folder / "rows.json").write_text(json.dumps(rows, indent=1))
    reference = (args.reference, reused[0]["seed"]) if reused else None
    path = seeds.write_report(rows, folder, args.profile, params, args.tables, reference)
    print("\n" + path.read_text())
    if args.dial:
        dial_rows = [row for _, seed_dial in per_seed for row in seed_dial]
        if reused:
            dial_rows = dial.read_rows(Path(args.reference) / "evaluations", reused[0]["seed"], args.profile) + dial_rows
        print(seeds.write_dial_report(dial_rows, folder, args.profile, reference).read_text())
    return 0
