"""A dataset read as an endless, reproducible stream of samples.

Training draws sample *positions* ``0, 1, 2, ...``; position ``p`` is item
``perm(epoch)[p % n]`` of the dataset, ``epoch = p // n``, with one seeded permutation per
epoch, and its augmentation (scale, flip) is drawn from a generator seeded by ``(seed, p)``.
So what a training step sees is a function of the seed and its positions only, never of
the process that loads it: ``--resume`` restarts at a position and continues exactly, and
``N`` DDP processes reading disjoint slices of the positions of a step see the same
samples as one process reading them all.
"""

from __future__ import annotations

import random

import numpy as np
from torch.utils.data import Dataset


class SampleStream(Dataset):
    """Wrap a dataset with ``get(index, rng) -> sample`` as ``stream[position] -> sample``.

    ``dataset.get`` receives a ``random.Random`` that it may use for augmentation.
    ``len(stream)`` is the length of one epoch (the wrapped dataset's length).
    """

    def __init__(self, dataset, seed: int = 0, shuffle: bool = True):
        if len(dataset) == 0:
            raise ValueError(f"{type(dataset).__name__} is empty: nothing to stream")
        self.dataset, self.seed, self.shuffle = dataset, int(seed), shuffle
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return len(self.dataset)

    def index(self, position: int) -> int:
        """Dataset index of sample ``position``."""
        n = len(self.dataset)
        epoch, offset = divmod(int(position), n)
        if not self.shuffle:
            return offset
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self._perm_epoch = epoch
        return int(self._perm[offset])

    def rng(self, position: int) -> random.Random:
        return random.Random(f"lipnb-{self.seed}-{int(position)}")

    def __getitem__(self, position: int):
        return self.dataset.get(self.index(position), self.rng(position))


def step_positions(step: int, global_batch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Positions read by process ``rank`` at optimisation step ``step``.

    Step ``s`` covers positions ``[s * G, (s + 1) * G)``, ``G = global_batch``; process
    ``r`` of ``W`` reads the ``r``-th contiguous slice of ``G / W`` of them.
    """
    if global_batch % world_size:
        raise ValueError(f"global batch {global_batch} is not divisible by {world_size} processes")
    per = global_batch // world_size
    start = step * global_batch + rank * per
    return list(range(start, start + per))
