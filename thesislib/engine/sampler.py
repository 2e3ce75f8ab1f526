"""Data order: a seeded permutation per epoch, cut into GLOBAL batches, split across ranks.

Step ``s`` of epoch ``e`` uses the global batch ``order_e[s*B : (s+1)*B]`` where ``order_e``
is a permutation seeded by ``(seed, e)`` and ``B`` is the global batch size. Rank ``r`` of
``W`` takes the ``r``-th contiguous slice of ``B / W`` indices, so a ``W``-process run sees,
step for step, the same samples as a 1-process run with the same ``B``. Resuming at step
``s`` slices the index list at ``s*B``; nothing is loaded and thrown away.

Data randomness (augmentation drawn from Python's, NumPy's or torch's global RNG inside
``__getitem__``) is made a function of ``(seed, epoch, index)`` by :class:`SeededDataset`:
sample ``i`` of epoch ``e`` gets the same augmentation whatever the number of workers or
ranks, and after a resume, while the caller's RNG streams are left untouched.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, TensorDataset

_GOLDEN = 0x9E3779B97F4A7C15  # odd 64-bit constant: spreads consecutive indices over the seed space


def steps_per_epoch(num_samples: int, batch_size: int, drop_last: bool, world_size: int = 1) -> int:
    """Optimiser steps in one epoch; a final partial batch smaller than ``world_size`` is dropped."""
    full, rest = divmod(num_samples, batch_size)
    return full + int(not drop_last and rest >= world_size)


def epoch_order(num_samples: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of ``epoch``: a permutation seeded by ``(seed, epoch)``, or ``arange``."""
    if not shuffle:
        return np.arange(num_samples, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(epoch)])))
    return rng.permutation(num_samples).astype(np.int64)


def data_seed(seed: int, epoch: int) -> int:
    """The 63-bit seed of epoch ``epoch``'s data randomness (a stream apart from the data order)."""
    low, high = np.random.SeedSequence([int(seed), int(epoch), 1]).generate_state(2)
    return (int(high) << 31 | int(low)) % 2**63


def cycling_rows(num_samples: int, count: int, seed: int, step: int) -> np.ndarray:
    """Rows ``step·count .. (step+1)·count - 1`` of an endless stream of reshuffles of ``range(num_samples)``.

    The stream is the concatenation of the permutations :func:`epoch_order` ``(num_samples, seed, c)`` for
    cycles c = 0, 1, ...: every sample is seen once per cycle, and the rows of a step are a pure function
    of ``(seed, step)`` (exact resume, no state). For the second stream of a two-stream batch (AutoNovel's
    ``TwoStreamBatchSampler``: ``B - b`` rows from one pass over one set, ``b`` from the other set reshuffled
    endlessly). Returns int64 ``(count,)``."""
    if num_samples <= 0:
        raise ValueError("cycling_rows: the stream has no samples")
    begin = step * count
    rows, position = [], begin
    while position < begin + count:
        cycle, offset = divmod(position, num_samples)
        take = min(num_samples - offset, begin + count - position)
        rows.append(epoch_order(num_samples, seed, cycle)[offset: offset + take])
        position += take
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


class IndexBatch(list):
    """A micro-batch of dataset indices that carries its epoch's data seed (to the worker processes)."""

    def __init__(self, indices: list[int], epoch_seed: int) -> None:
        super().__init__(indices)
        self.epoch_seed = epoch_seed


def is_deterministic(dataset: Dataset) -> bool:
    """True for datasets whose items draw no random numbers: a ``TensorDataset``, or any dataset
    with a true ``deterministic`` attribute (e.g. index datasets whose batch is gathered on device)."""
    return bool(getattr(dataset, "deterministic", False)) or isinstance(dataset, TensorDataset)


class IndexDataset(Dataset):
    """Items are the indices ``0 .. n-1``: for data already on the device (features, pre-made
    batches), which the step function gathers by index. It draws no random numbers
    (``deterministic``), so the engine does not seed per sample; :func:`collate_indices` batches it."""

    deterministic = True

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def collate_indices(indices: list[int]) -> torch.Tensor:
    """A batch of :class:`IndexDataset` items as one int64 tensor ``(B,)``."""
    return torch.as_tensor(indices, dtype=torch.int64)


class SeededDataset(Dataset):
    """Loads sample ``i`` of an :class:`IndexBatch` with the global RNGs seeded from ``(epoch_seed, i)``.

    Python's ``random``, NumPy's global generator and torch's CPU generator are seeded per
    sample (about 10 µs) and restored after the batch, in the main process as in workers.
    Datasets that draw no random numbers (:func:`is_deterministic`) skip the seeding: it would
    only cost time, and exact resume holds for them without it.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.deterministic = is_deterministic(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        if self.deterministic or not isinstance(indices, IndexBatch):
            return [self.dataset[i] for i in indices]
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            samples = []
            for i in indices:
                sample_seed = (indices.epoch_seed + (i + 1) * _GOLDEN) % 2**63
                random.seed(sample_seed)
                np.random.seed(sample_seed % 2**32)
                torch.default_generator.manual_seed(sample_seed)
                samples.append(self.dataset[i])
            return samples
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class GlobalBatchSampler(Sampler[list[int]]):
    """Batch sampler yielding this rank's micro-batches of indices for one epoch.

    Each optimiser step is ``grad_accum`` micro-batches of ``B / (W * grad_accum)`` indices. The
    global batch is first cut into ``grad_accum`` consecutive chunks and each chunk is shared out
    over the ranks, so micro-batch ``j`` of all ranks together is chunk ``j`` of a one-process run:
    an update that steps once per chunk (``k`` discriminator steps per generator step) sees the
    same samples under DDP as on one process.
    The last, partial global batch (``drop_last=False``) is trimmed to a multiple of ``W`` so
    that every rank holds the same number of samples (gradient averaging stays exact), and
    split into at most ``grad_accum`` near-equal micro-batches. Call :meth:`set_epoch`
    before iterating; it returns the plan: per step, the index arrays of its micro-batches.
    Iteration yields :class:`IndexBatch` lists (read by :class:`SeededDataset`).
    """

    def __init__(self, num_samples: int, batch_size: int, *, seed: int, shuffle: bool = True,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1, grad_accum: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"global batch_size {batch_size} is not divisible by the world size {world_size}")
        if (batch_size // world_size) % grad_accum:
            raise ValueError(f"per-rank batch {batch_size // world_size} is not divisible by grad_accum {grad_accum}")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world_size, self.grad_accum = rank, world_size, grad_accum
        self.steps_per_epoch = steps_per_epoch(num_samples, batch_size, drop_last, world_size)
        self._plan: list[list[np.ndarray]] = []
        self._epoch_seed = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> list[list[np.ndarray]]:
        """Plan epoch ``epoch`` from step ``start_step`` on (resume): per step, this rank's micro-batches."""
        order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)
        order = order[start_step * self.batch_size: self.steps_per_epoch * self.batch_size]
        plan = []
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin: begin + self.batch_size]
            per_rank = len(batch) // self.world_size
            sizes = [len(c) for c in np.array_split(np.arange(per_rank), min(self.grad_accum, per_rank))]
            micro, begin_chunk = [], 0
            for size in sizes:  # global chunk j = the next W * size samples; this rank takes its share
                chunk = batch[begin_chunk: begin_chunk + self.world_size * size]
                micro.append(chunk[self.rank * size: (self.rank + 1) * size])
                begin_chunk += self.world_size * size
            plan.append(micro)
        self._plan, self._epoch_seed = plan, data_seed(self.seed, epoch)
        return plan

    def __iter__(self) -> Iterator[IndexBatch]:
        plan, epoch_seed = self._plan, self._epoch_seed
        for micro_batches in plan:
            for indices in micro_batches:
                yield IndexBatch(indices.tolist(), epoch_seed)

    def __len__(self) -> int:
        return sum(len(micro) for micro in self._plan)
