"""Randomness of the data pipeline as a function of (seed, epoch, sample index) alone.

Neither the shuffle order nor an augmentation depends on how many loader workers there are,
which worker reads a sample, or what else drew random numbers before: the same seed gives the
same batches with ``data.num_workers`` 0, 1 or 8.

- The order of epoch ``e`` is a permutation drawn from a generator seeded by (seed, e).
- A sample's augmentation draws from generators seeded by (seed, e, index), handed to the
  albumentations pipeline as one shared random state (``Compose.set_random_state``), so its
  transforms draw one after another and do not repeat each other's numbers (seeding each
  transform with the same seed, as ``Compose.set_random_seed`` does, makes e.g. a horizontal
  and a vertical flip of equal ``p`` fire always together).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Sampler

_ORDER, _SAMPLE = 0, 1  # separate streams for the shuffle and for the samples

SampleKey = tuple[int, int]  # (epoch, sample index)


def _entropy(seed: int, *more: int) -> list[int]:
    # SeedSequence takes non-negative integers; a negative seed keeps its own stream.
    return [seed % 2**64, *more]


def order(seed: int, epoch: int, size: int) -> list[int]:
    """The shuffled order of ``size`` samples in ``epoch``."""
    state = np.random.SeedSequence(_entropy(seed, _ORDER, epoch)).generate_state(1, np.uint64)
    generator = torch.Generator().manual_seed(int(state[0]))
    return torch.randperm(size, generator=generator).tolist()


def seed_pipeline(transform: A.Compose, seed: int, epoch: int, index: int) -> None:
    """Give ``transform`` the random state of sample ``index`` in ``epoch``."""
    sequence = np.random.SeedSequence(_entropy(seed, _SAMPLE, epoch, index))
    py_seed = int(sequence.generate_state(1, np.uint64)[0])
    transform.set_random_state(np.random.default_rng(sequence), random.Random(py_seed))


class EpochSampler(Sampler[SampleKey]):
    """``(epoch, index)`` keys, shuffled per epoch by (seed, epoch) when ``shuffle``.

    The n-th pass over the loader is epoch n (counted here, in the main process, where the
    sampler runs whatever the number of workers); the key travels with the index to whichever
    worker loads the sample.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True):
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[SampleKey]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        indices = order(self.seed, epoch, self.size) if self.shuffle else range(self.size)
        return iter([(epoch, index) for index in indices])
