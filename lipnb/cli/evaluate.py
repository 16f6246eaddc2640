"""``python -m lipnb evaluate``: score a results folder as the official DAVIS toolkit does.

    python -m lipnb evaluate --davis ROOT --results DIR [--year 2016|2017] [--split val]
                             [--resolution 480p] [--out DIR]

Prints the global table (J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay)
and the per-object table, and writes ``global_results-<split>.csv`` and
``per-sequence_results-<split>.csv`` into ``--out`` (never into the results folder: the
official toolkit would silently reuse them as a cache). Imports neither torch nor pandas.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lipnb.data.davis import YEARS, DavisDataset, DavisFormatError
from lipnb.metrics.evaluation import evaluate
from lipnb.metrics.tables import format_tables, write_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--davis", required=True, metavar="ROOT",
                        help="DAVIS folder with JPEGImages/, Annotations/, ImageSets/")
    parser.add_argument("--results", required=True, metavar="DIR",
                        help="results folder: DIR/<sequence>/<frame>.png, object ids as palette indices")
    parser.add_argument("--year", choices=YEARS, default=None,
                        help="2016: one object per sequence (0/255 masks); 2017: several. "
                             "Default: 2017 if ImageSets/2017/<split>.txt exists, else 2016")
    parser.add_argument("--split", default="val", help="ImageSets/<year>/<split>.txt (default: %(default)s)")
    parser.add_argument("--resolution", default="480p", help="Annotations/<resolution> (default: %(default)s)")
    parser.add_argument("--out", default=".", metavar="DIR", help="where the CSV files go (default: current folder)")
    parser.add_argument("--sequences", nargs="+", default=None, metavar="SEQ", help="score only these sequences")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_year(root: Path, split: str) -> str:
    """2017 when its sequence list exists (the toolkit's default), else 2016."""
    return "2017" if (root / "ImageSets" / "2017" / f"{split}.txt").is_file() else "2016"


_QUIET_WORKERS = []  # set while a command runs: forked scoring workers ignore Ctrl-C


def _workers_leave_ctrl_c_to_the_main_process() -> None:
    """Ctrl-C reaches every process of the terminal's group: the scoring workers (forked) ignore it,
    the main process ends them and prints one line instead of one traceback per worker."""
    import os
    import signal

    def ignore_ctrl_c():
        if _QUIET_WORKERS:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    if not _QUIET_WORKERS:
        os.register_at_fork(after_in_child=ignore_ctrl_c)
    _QUIET_WORKERS[:] = [True]


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    finally:
        _QUIET_WORKERS.clear()


def _run(args: argparse.Namespace) -> int:
    from lipnb.cli.safety import check_out_apart
    from lipnb.errors import UserError

    root, results, out = Path(args.davis), Path(args.results), Path(args.out)
    try:  # paths resolved, links inside the inputs followed; --out may hold them (only two CSVs are added)
        check_out_apart(out, {"results folder (--results)": results}, contains=False)
    except UserError as error:
        print(f"error: {error}; the official toolkit would also reuse CSV files there as a cache", file=sys.stderr)
        return 2
    try:
        check_out_apart(out, {"--davis": root}, contains=False)
        for name in (f"global_results-{args.split}.csv", f"per-sequence_results-{args.split}.csv"):
            if (out / name).is_symlink():  # a CSV written through a link into an input
                check_out_apart(out / name, {"--davis": root, "--results": results}, contains=False)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.sequences and len(set(args.sequences)) != len(args.sequences):
        twice = sorted({n for n in args.sequences if args.sequences.count(n) > 1})
        print(f"error: --sequences: {', '.join(twice)} given more than once; give each sequence once",
              file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file; the CSV files need a folder: choose another --out", file=sys.stderr)
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: cannot create --out {out}: {error.strerror or error}; choose another --out", file=sys.stderr)
        return 2
    if args.processes is not None and args.processes < 1:
        print(f"error: --processes {args.processes}: must be >= 1", file=sys.stderr)
        return 2
    _workers_leave_ctrl_c_to_the_main_process()
    try:
        dataset = DavisDataset(root, year=args.year or default_year(root, args.split),
                               split=args.split, resolution=args.resolution)
        start = time.perf_counter()
        evaluation = evaluate(dataset, results, sequences=args.sequences, processes=args.processes,
                              progress=not args.no_progress)
        seconds = time.perf_counter() - start
    except DavisFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_tables(evaluation))
    global_csv, sequence_csv = write_csv(evaluation, out)
    print(f"\nDAVIS {dataset.year} {dataset.split}: {len(evaluation.sequences)} sequences, "
          f"{len(evaluation.per_sequence_results())} objects, {evaluation.num_frames} scored frames "
          f"in {seconds:.1f} s\nwrote {global_csv} and {sequence_csv}")
    return 0
