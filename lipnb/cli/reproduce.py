"""``python -m lipnb reproduce --profile smoke``: the five notebooks, in order, into ``results/<profile>/``.

    python -m lipnb reproduce                                  # smoke: procedural data, CPU, minutes
    python -m lipnb reproduce --profile davis-cpu              # COCO tiny + DAVIS 2016 from ../shared/data
    python -m lipnb reproduce --profile davis-cpu -p pretrain_iters 20 -p num_sequences 2
    python -m lipnb reproduce --profile paper                  # GPU, COCO + DAVIS 2017 in data/
    python -m lipnb reproduce --profile davis-cpu --resume     # continue an interrupted run

Runs ``notebooks/01..05`` with papermill (kernel ``python3`` of this interpreter) into a
staging folder, then moves it to ``results/<profile>/``: executed notebooks, ``table{1,2,3}.csv``
and ``.md``, ``figures/*.png``, ``evaluations/*.json``, ``manifest.json`` (checkpoints and
predictions under ``work/``, not committed). A failed notebook leaves the previous results in
place and is reported with its cell (see :mod:`lipnb.repro.pipeline`). Bad parameter values and a
``--resume`` whose parameters differ from the run it continues are refused before any work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lipnb import paths
from lipnb.profiles import PROFILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="smoke", help="(default: %(default)s)")
    parser.add_argument("--results-dir", default=str(paths.RESULTS_DIR),
                        help="outputs go to RESULTS_DIR/<profile>/ (default: %(default)s)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override one notebook parameter, as papermill's -p (e.g. -p pretrain_iters 20)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted or failed run from its checkpoints and finished sequences "
                             "(its result-shaping parameters must equal this call's)")
    parser.add_argument("--log-output", action="store_true", help="stream the notebooks' cell outputs")


def run(args: argparse.Namespace) -> int:
    import logging

    from lipnb.repro.pipeline import NotebookFailed, run_pipeline

    if args.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        out = run_pipeline(args.profile, args.results_dir, parse_overrides(args.parameter),
                           log=lambda message: print(message, flush=True), log_output=args.log_output, resume=args.resume)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except NotebookFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name in ("table1", "table2", "table3"):
        print("\n" + Path(out, f"{name}.md").read_text())
    print(f"results: {out} (manifest: {Path(out, 'manifest.json')})")
    return 0


def parse_overrides(pairs: list) -> dict:
    """``[["pretrain_iters", "20"], ...]`` -> values parsed as JSON where they parse (papermill's ``-p``)."""
    out = {}
    for key, value in pairs:
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
