"""A small multi-label data set for the G-softmax demo: 2x2 mosaics of scikit-learn digits.

Each image is a ``grid x grid`` mosaic (default 2x2, so 16x16 pixels) of 8x8 digits drawn from the
digits data set bundled with scikit-learn (real handwritten digits, no download). Every cell is kept
with probability ``keep_prob`` (default 0.7) independently, conditioned on at least one cell being
kept (exact rejection sampling); empty cells are black. The labels are the set of digit classes
present, a multi-hot vector over 10 classes, so an image has 1 to 4 labels (fewer when a class
repeats). Train and test mosaics are built from disjoint pools of source digits
(:func:`digit_mosaic_splits`) so that no handwritten digit appears in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from thesislib.data.digits import load_digits_arrays, load_digits_split

NUM_CLASSES = 10
DIGIT_SIZE = 8


@dataclass(frozen=True)
class DigitMosaics:
    """A mosaic data set (N images).

    images: (N, 1, 8 grid, 8 grid) float32 in [0, 1]; labels: (N, 10) float32 multi-hot;
    cell_digits: (N, grid^2) int64 class of each cell in row-major order, -1 where empty;
    cell_sources: (N, grid^2) int64 index of the source digit in ``load_digits()``, -1 where empty.
    """

    images: Tensor
    labels: Tensor
    cell_digits: Tensor
    cell_sources: Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


def sample_keep_mask(rng: np.random.Generator, num_images: int, cells: int, keep_prob: float) -> np.ndarray:
    """(N, cells) bool: each cell kept with ``keep_prob``, conditioned on >= 1 kept (rejection sampling)."""
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    keep = rng.random((num_images, cells)) < keep_prob
    empty = ~keep.any(1)
    while empty.any():
        keep[empty] = rng.random((int(empty.sum()), cells)) < keep_prob
        empty = ~keep.any(1)
    return keep


def make_digit_mosaics(num_images: int, seed: int, keep_prob: float = 0.7, grid: int = 2,
                       source_indices: Sequence[int] | np.ndarray | None = None) -> DigitMosaics:
    """Generate ``num_images`` mosaics (seeded, deterministic).

    Args:
        num_images: N.
        seed: seed of the private NumPy generator (global RNG state is not touched).
        keep_prob: probability that a cell holds a digit (before conditioning on >= 1).
        grid: cells per side.
        source_indices: indices into ``load_digits()`` that may be used (default: all 1,797);
            digits are drawn uniformly with replacement from this pool.
    """
    if num_images < 1 or grid < 1:
        raise ValueError("num_images and grid must be >= 1")
    images, targets = load_digits_arrays()
    pool = np.arange(len(targets)) if source_indices is None else np.asarray(source_indices, dtype=np.int64)
    if pool.size == 0 or pool.min() < 0 or pool.max() >= len(targets):
        raise ValueError(f"source_indices must be non-empty indices in [0, {len(targets)})")
    rng = np.random.default_rng(seed)
    cells = grid * grid
    sources = pool[rng.integers(0, pool.size, size=(num_images, cells))]      # (N, cells)
    keep = sample_keep_mask(rng, num_images, cells, keep_prob)
    tiles = images[sources] * keep[:, :, None, None]                          # (N, cells, 8, 8)
    mosaic = (tiles.reshape(num_images, grid, grid, DIGIT_SIZE, DIGIT_SIZE)
              .transpose(0, 1, 3, 2, 4)
              .reshape(num_images, 1, grid * DIGIT_SIZE, grid * DIGIT_SIZE))
    cell_digits = np.where(keep, targets[sources], -1)
    labels = np.zeros((num_images, NUM_CLASSES), dtype=np.float32)
    rows = np.broadcast_to(np.arange(num_images)[:, None], keep.shape)
    labels[rows[keep], cell_digits[keep]] = 1.0
    return DigitMosaics(images=torch.from_numpy(np.ascontiguousarray(mosaic)),
                        labels=torch.from_numpy(labels),
                        cell_digits=torch.from_numpy(cell_digits),
                        cell_sources=torch.from_numpy(np.where(keep, sources, -1)))


def digit_mosaic_splits(num_train: int, num_test: int, seed: int, test_fraction: float = 0.3,
                        keep_prob: float = 0.7, grid: int = 2) -> tuple[DigitMosaics, DigitMosaics]:
    """Train and test mosaics from disjoint, class-stratified pools of source digits.

    The 1,797 digits are split ``1 - test_fraction`` / ``test_fraction`` (stratified by class,
    seeded); the train mosaics use only the first pool, the test mosaics only the second.
    """
    split = load_digits_split(test_fraction, seed)   # the single-label experiment's split
    train_pool, test_pool = split.index_train.numpy(), split.index_test.numpy()
    seeds = np.random.SeedSequence(seed).generate_state(2)
    train = make_digit_mosaics(num_train, int(seeds[0]), keep_prob, grid, np.sort(train_pool))
    test = make_digit_mosaics(num_test, int(seeds[1]), keep_prob, grid, np.sort(test_pool))
    return train, test
