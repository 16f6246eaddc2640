"""``python -m lipnb <command>``: one sub-command per stage of the pipeline.

Each command lives in its own module that defines ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so that
``lipnb evaluate`` starts without importing torch.

Errors a user can fix are printed as one line, ``error: ...``, naming the file and what to do
(exit code 2, or 1); ``--debug`` (anywhere on the command line) shows the traceback instead.
Ctrl-C and SIGTERM end a command with one line too (exit code 130 and 143): outputs being
written are kept as a marked partial folder (see :mod:`lipnb.cli.safety`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS = {
    "evaluate": ("lipnb.cli.evaluate", "score a results folder against DAVIS ground truth (J&F)"),
    "train": ("lipnb.cli.train", "pre-train or fine-tune LIP (COCO / DAVIS / procedural data)"),
    "segment": ("lipnb.cli.segment", "segment a folder of frames from its first mask (online LIP)"),
    "infer": ("lipnb.cli.infer", "online fine-tuning + inference over a DAVIS split, then evaluate"),
    "probe": ("lipnb.cli.probe", "baseline: frozen ImageNet features + a linear probe fitted on the first frame"),
    "reproduce": ("lipnb.cli.reproduce", "run the reproduction for a profile into results/<profile>/"),
    "bench": ("lipnb.cli.bench", "speed benches: LIP vs plain Mask R-CNN (model), the J&F evaluator (evaluate)"),
    "ablation": ("lipnb.cli.ablation", "Table 3 over several seeds: dynamic memory vs zero hidden state"),
}


def _build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="lipnb", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (any position)")
    sub = parser.add_subparsers(dest="command", metavar="command")
    chosen = None
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if argv and argv[0] == name:  # import only the module whose command runs
            chosen = importlib.import_module(module_name)
            chosen.add_arguments(p)
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        from lipnb.cli.errors import report
        from lipnb.cli.safety import signals_as_exceptions

        with signals_as_exceptions():  # SIGTERM unwinds like Ctrl-C: partial outputs marked, locks freed
            parser, module = _build_parser(argv)
            args = parser.parse_args(argv)
            if module is None:
                parser.print_help()
                return 2
            try:
                return int(module.run(args) or 0)
            except Exception as error:  # noqa: BLE001 - one line for the user; --debug for the traceback
                return report(error, debug)
    except KeyboardInterrupt as error:  # Ctrl-C (or SIGTERM) anywhere: one line, exit 128 + signal
        if debug:
            raise
        from lipnb.cli.safety import interrupt_code, interrupt_name

        print(f"error: {interrupt_name(error)}{getattr(error, 'partial_note', '')}", file=sys.stderr)
        return interrupt_code(error)
