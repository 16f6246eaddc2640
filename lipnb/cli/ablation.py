"""``python -m lipnb ablation``: Table 3 over several seeds (:mod:`lipnb.lab.seeds`).

    python -m lipnb ablation --profile smoke --seeds 0 1 2 --jobs 2
    python -m lipnb ablation --profile davis-cpu --seeds 0 1 2 --jobs 2 --reference results/davis-cpu --dial

Every ``-p`` value, ``--seeds`` (each once) and ``--jobs`` are checked before any work; the output
folder ``RESULTS_DIR/<profile>-ablation`` may not lie inside a data folder or ``--reference``, and
one run at a time writes it (a lock file ``<profile>-ablation.lock`` beside it).
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
from lipnb.profiles import PROFILES


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


def _ignore_ctrl_c() -> None:
    """In the seed processes: Ctrl-C is for the main process, which ends them (one line, no tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_pool(jobs: list, processes: int) -> list:
    pool = ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_ignore_ctrl_c)
    try:
        result = list(pool.map(seeds.run_seed, *zip(*jobs)))
    except BaseException:  # Ctrl-C, SIGTERM or a failed seed: end the other seeds now, not after hours
        workers = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown()
    return result


def run(args: argparse.Namespace) -> int:
    from lipnb.cli.reproduce import check_parameters, data_inputs
    from lipnb.cli.safety import check_out_apart, out_lock

    overrides = parse_overrides(args.parameter)
    if "seed" in overrides:
        fail("-p seed: the seeds come from --seeds; give them there")
    twice = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
    problems = [f"--seeds: {', '.join(map(str, twice))} given more than once; give each seed once" if twice else None]
    problems += [f"--seeds {s}: must be an integer >= 0" for s in args.seeds if s < 0]
    problems.append(f"--jobs {args.jobs}: must be >= 1" if args.jobs < 1 else None)
    raise_all(problems)
    if args.jobs > 1:  # the seeds in parallel, each on one thread and one sequence at a time
        overrides.update(threads=1, jobs=1)
    params = check_parameters(args.profile, overrides)  # one error line per bad value
    folder = check_out_apart(Path(args.results_dir) / f"{args.profile}-ablation",
                             {**data_inputs(params), "--reference": args.reference}, flag="--results-dir")
    with out_lock(folder, flag="--results-dir"):
        return _run(args, overrides, params, folder)


def _run(args, overrides: dict, params: dict, folder: Path) -> int:
    reused = []
    if args.reference:
        try:
            reused = seeds.reference_rows(Path(args.reference), args.profile, overrides, args.seeds, args.tables)
        except (OSError, ValueError, KeyError) as e:
            fail(f"--reference {args.reference}: {e}")
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(args.profile, s, str(folder / f"seed-{s}"), overrides, tuple(args.tables), args.dial)
            for s in args.seeds if s not in {row["seed"] for row in reused}]
    if args.jobs > 1 and jobs:
        per_seed = _run_pool(jobs, args.jobs)
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
