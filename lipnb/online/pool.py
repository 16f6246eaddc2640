"""Sequences segmented at once: one process per job, each with its own copy of the model.

Online inference works sequence by sequence, and every sequence fine-tunes its own copy of the
offline model (§4.2), so sequences are independent. On a CPU the network is small for intra-op
threading: measured on 2 cores (4 DAVIS 2016 val sequences, 280 frames, the released davis-cpu
model of 2f40166 and its recipe), one process with 2 threads took 142 s, two processes with 1 thread
each 97 s, with the same masks to float precision (mean IoU between the two 0.99993)::

    for result in map_on_copies(model, segment_one, [(dataset, name, out) for name in names], jobs=2):
        ...

``fn(model, *task)`` runs in a worker that holds the model (sent once per worker, not per task);
``fn`` and the tasks must be picklable (module-level functions, plain data). ``jobs=1`` runs in
this process, in order, with the threads it has.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Iterable, Iterator

import torch

_MODEL = None  # the worker's model


def _init(model, threads: int) -> None:
    global _MODEL
    torch.set_num_threads(threads)
    _MODEL = model


def _call(job):
    index, fn, task = job
    return index, fn(_MODEL, *task)


def map_on_copies(model: torch.nn.Module, fn: Callable, tasks: Iterable[tuple], jobs: int = 1,
                  ordered: bool = True) -> Iterator:
    """``fn(model, *task)`` for each task, in ``jobs`` processes of ``torch threads // jobs`` threads
    (at least 1). Yields the results in the tasks' order, or as they finish (``ordered=False``:
    ``(index, result)`` pairs). A model on a GPU runs in this process, whatever ``jobs``; ``fn`` must
    not rely on changing ``model``."""
    tasks = list(tasks)
    if jobs <= 1 or len(tasks) <= 1 or next(model.parameters()).device.type != "cpu":
        for i, task in enumerate(tasks):
            yield fn(model, *task) if ordered else (i, fn(model, *task))
        return
    threads = max(1, torch.get_num_threads() // jobs)
    jobs_list = [(i, fn, task) for i, task in enumerate(tasks)]
    with mp.get_context("spawn").Pool(min(jobs, len(tasks)), _init, (model, threads)) as pool:
        if ordered:
            for _, result in pool.imap(_call, jobs_list):
                yield result
        else:
            yield from pool.imap_unordered(_call, jobs_list)
