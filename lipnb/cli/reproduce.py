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
place and is reported with its cell (see :mod:`lipnb.repro.pipeline`). Bad parameter values (type
and range of each ``-p``), a results folder inside a data folder, and a ``--resume`` whose
parameters differ from the run it continues are refused before any work; one run at a time
writes ``RESULTS_DIR/<profile>`` (a lock file ``<profile>.lock`` beside it).
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


def check_parameters(profile: str, overrides: dict, values: bool = True) -> dict:
    """The notebook parameters of ``profile`` with ``-p`` ``overrides``; unless ``values`` is false (the
    runner checks them itself), every value checked for type and range before any work (one
    ``error:`` line per bad value)."""
    from lipnb.errors import fail, raise_all
    from lipnb.profiles import notebook_parameter_problems, notebook_parameters

    if "out_dir" in overrides:
        fail("-p out_dir: set by the command itself (RESULTS_DIR/<profile>); choose the folder with --results-dir")
    try:
        params = notebook_parameters(profile, **overrides)
    except KeyError as e:
        fail(e.args[0])
    if values:
        raise_all(notebook_parameter_problems(params, overrides))
    return params


def data_inputs(params: dict) -> dict:
    """The data folders the notebooks read, for :func:`lipnb.cli.safety.check_out_apart`."""
    from lipnb.cli.safety import data_folders
    from lipnb.profiles import NOTEBOOK_DATA

    inputs = {}
    for key in NOTEBOOK_DATA:
        inputs.update(data_folders(f"-p {key}", params.get(key)))
    return inputs


def run(args: argparse.Namespace) -> int:
    import logging

    from lipnb.cli.safety import check_out_apart, out_lock
    from lipnb.repro.pipeline import NotebookFailed, run_pipeline

    if args.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = parse_overrides(args.parameter)
    params = check_parameters(args.profile, overrides, values=False)  # run_pipeline checks every value first
    final = check_out_apart(Path(args.results_dir) / args.profile, data_inputs(params), flag="--results-dir")
    with out_lock(final, flag="--results-dir"):
        try:
            out = run_pipeline(args.profile, args.results_dir, overrides,
                               log=lambda message: print(message, flush=True), log_output=args.log_output,
                               resume=args.resume)
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
