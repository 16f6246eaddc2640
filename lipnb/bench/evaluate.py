"""``python -m lipnb.bench evaluate``: speed of the J&F evaluator, I/O included.

Writes the copy-first baseline of a DAVIS split to a temporary folder (not timed), then
times :func:`lipnb.metrics.evaluate` on it ``--repeat`` times (reading every ground-truth
and result PNG each time) and prints frames/s and wall time: best and median.
The default is DAVIS 2016 val at 480p from ``../shared/data/davis2016`` (16 sequences,
1112 scored frames); the official toolkit takes about 25 s on 2 cores for it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time

from lipnb import paths
from lipnb.data.davis import DavisDataset
from lipnb.metrics.baselines import write_copy_first
from lipnb.metrics.evaluation import available_cores, evaluate


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (the pool's workers)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lipnb.bench evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--davis", default=str(paths.davis2016_root()), help="DAVIS root (default: %(default)s)")
    parser.add_argument("--year", default="2016", choices=["2016", "2017"])
    parser.add_argument("--split", default="val")
    parser.add_argument("--resolution", default="480p")
    parser.add_argument("--repeat", type=int, default=5, help="timed evaluations (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")
    args = parser.parse_args(argv)

    dataset = DavisDataset(args.davis, year=args.year, split=args.split, resolution=args.resolution)
    processes = args.processes or available_cores()
    with tempfile.TemporaryDirectory(prefix="lipnb-bench-") as results:
        write_copy_first(dataset, results)  # untimed
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            evaluation = evaluate(dataset, results, processes=processes, progress=False)
            times.append(time.perf_counter() - start)
            cpu.append(_cpu_seconds() - start_cpu)
    frames = evaluation.num_frames
    best, median = min(times), statistics.median(times)
    g = evaluation.global_results()
    print(f"evaluate: DAVIS {args.year} {args.split} {args.resolution}, {len(dataset)} sequences, "
          f"{frames} scored frames, copy-first results, {processes} processes")
    print(f"  J&F-Mean {g['J&F-Mean']:.6f}  J-Mean {g['J-Mean']:.6f}  F-Mean {g['F-Mean']:.6f}")
    print(f"  wall time  best {best:.2f} s  median {median:.2f} s  ({args.repeat} runs: "
          + ", ".join(f"{t:.2f}" for t in times) + ")")
    print(f"  frames/s   best {frames / best:.0f}  median {frames / median:.0f}")
    print(f"  CPU time   best {min(cpu):.2f} s  median {statistics.median(cpu):.2f} s  "
          f"(all processes; wall time on an idle machine is about CPU time / processes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
