"""``python -m lipnb.cli.levers``: the memory's levers at a small scale (issue 21), one at a
time and combined, over seeds (:mod:`lipnb.lab.levers`)::

    python -m lipnb.cli.levers --profile smoke --seeds 0 1 2 --jobs 2 --levers baseline groups \
        -p online_iters 50 -p refresh_iters 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lipnb.lab.levers import LEVERS, collect, lever, run_levers
from lipnb.paths import RESULTS_DIR


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lipnb.cli.levers", description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=[*LEVERS, "combined"], metavar="LEVER",
                   help=f"of {list(LEVERS)} and 'combined'")
    p.add_argument("--combine", nargs="+", default=[], choices=list(LEVERS), metavar="LEVER",
                   help="the levers 'combined' joins")
    p.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    p.add_argument("--videos", type=int, default=16, help="procedural memory videos scored (val split)")
    p.add_argument("--data-seed", type=int, default=100, help="the videos' seed, apart from the model seeds")
    p.add_argument("--stat-videos", type=int, default=4, help="videos the gate and scale measures use")
    p.add_argument("--out", default=None, help="default RESULTS_DIR/<profile>-levers")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter of both arms, as papermill's -p")
    p.add_argument("--collect", metavar="COMMAND", default=None,
                   help="run nothing: build the table from the finished runs' lever_row.json in <out>/work, "
                        "naming COMMAND as the command that ran them (for a call that was stopped)")
    args = p.parse_args(argv)
    from lipnb.profiles import notebook_parameters

    overrides = {k: type(notebook_parameters(args.profile)[k])(v) for k, v in args.parameter}
    params = notebook_parameters(args.profile, **overrides)
    out = Path(args.out or RESULTS_DIR / f"{args.profile}-levers")
    out.mkdir(parents=True, exist_ok=True)
    shared = dict(profile=args.profile, params=params, videos=args.videos, data_seed=args.data_seed,
                  stat_videos=args.stat_videos)
    if args.collect:
        path = collect(out, args.levers, args.collect, combined=tuple(args.combine), **shared)
    else:
        command = "python -m lipnb.cli.levers " + " ".join(argv if argv is not None else sys.argv[1:])
        levers = {n: lever(n, tuple(args.combine)) for n in args.levers}
        path = run_levers(levers, args.seeds, out, command, overrides=overrides, jobs=args.jobs, **shared)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
