"""``python -m lipnb bench evaluate``: speed of the J&F evaluator, I/O included.

Writes the copy-first baseline of a DAVIS split to a temporary folder (not timed), then
times :func:`lipnb.metrics.evaluate` on it ``--repeat`` times (reading every ground-truth
and result PNG each time) and prints frames/s and wall time: best and median.
The default is DAVIS 2016 val at 480p from ``../shared/data/davis2016`` (16 sequences,
1112 scored frames); the official toolkit takes about 25 s on 2 cores for it.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time

from lipnb.data.davis import DavisDataset
from lipnb.metrics.baselines import write_copy_first
from lipnb.metrics.evaluation import available_cores, evaluate


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (the pool's workers)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def run(args) -> int:
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

