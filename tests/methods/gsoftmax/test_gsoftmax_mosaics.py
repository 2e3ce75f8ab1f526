"""2x2 digit mosaics: label statistics, consistency with the cells, determinism, disjoint splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from thesislib.methods.gsoftmax import digit_mosaic_splits, make_digit_mosaics
from thesislib.methods.gsoftmax.mosaics import sample_keep_mask

N = 20000
KEEP = 0.7


@pytest.fixture(scope="module")
def mosaics():
    return make_digit_mosaics(N, seed=0, keep_prob=KEEP)


def test_shapes_and_types(mosaics):
    assert mosaics.images.shape == (N, 1, 16, 16) and mosaics.images.dtype == torch.float32
    assert mosaics.labels.shape == (N, 10) and mosaics.cell_digits.shape == (N, 4) == mosaics.cell_sources.shape
    assert float(mosaics.images.min()) >= 0.0 and float(mosaics.images.max()) <= 1.0
    assert len(mosaics) == N


def test_kept_cell_count_follows_truncated_binomial(mosaics):
    kept = (mosaics.cell_digits >= 0).sum(1).numpy()
    assert kept.min() >= 1 and kept.max() <= 4
    norm_const = 1 - (1 - KEEP) ** 4
    for k in range(1, 5):
        p = math.comb(4, k) * KEEP**k * (1 - KEEP) ** (4 - k) / norm_const
        observed = (kept == k).mean()
        assert abs(observed - p) < 4 * math.sqrt(p * (1 - p) / N), (k, observed, p)
    mean = 4 * KEEP / norm_const                                          # 2.8229
    assert abs(kept.mean() - mean) < 0.02


def test_label_statistics(mosaics):
    labels = mosaics.labels.numpy()
    n_labels = labels.sum(1)
    assert n_labels.min() >= 1 and n_labels.max() <= 4
    # P(class c present) = sum_k P(k kept) (1 - (1 - q_c)^k), q_c the class share of the digit pool
    q = np.bincount(load_digits().target, minlength=10) / 1797
    norm_const = 1 - (1 - KEEP) ** 4
    pk = np.array([math.comb(4, k) * KEEP**k * (1 - KEEP) ** (4 - k) / norm_const for k in range(1, 5)])
    expected = np.array([(pk * (1 - (1 - qc) ** np.arange(1, 5))).sum() for qc in q])   # about 0.25 each
    observed = labels.mean(0)
    assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / N))
    assert abs(n_labels.mean() - expected.sum()) < 0.03                   # repeats make it < 2.82


def test_labels_and_pixels_match_the_cells(mosaics):
    digits = load_digits()
    cells, sources = mosaics.cell_digits[:300], mosaics.cell_sources[:300]
    for i in range(300):
        present = set(cells[i][cells[i] >= 0].tolist())
        assert set(torch.nonzero(mosaics.labels[i]).flatten().tolist()) == present
        for c in range(4):
            r, col = divmod(c, 2)
            tile = mosaics.images[i, 0, 8 * r:8 * r + 8, 8 * col:8 * col + 8]
            if cells[i, c] < 0:
                assert sources[i, c] == -1 and torch.count_nonzero(tile) == 0
            else:
                assert digits.target[sources[i, c]] == cells[i, c]
                assert torch.allclose(tile, torch.from_numpy(digits.images[sources[i, c]] / 16).float())


def test_seeded_and_deterministic():
    a = make_digit_mosaics(50, seed=3)
    b = make_digit_mosaics(50, seed=3)
    c = make_digit_mosaics(50, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    state = np.random.get_state()[1].copy()
    make_digit_mosaics(10, seed=0)
    assert np.array_equal(state, np.random.get_state()[1])                # global RNG untouched


def test_splits_use_disjoint_digit_pools():
    train, test = digit_mosaic_splits(2000, 1000, seed=0)
    assert len(train) == 2000 and len(test) == 1000
    tr = set(train.cell_sources[train.cell_sources >= 0].tolist())
    te = set(test.cell_sources[test.cell_sources >= 0].tolist())
    assert not tr & te
    assert len(te) > 400                                                 # most of the ~540 test digits used


def test_keep_mask_edge_cases():
    rng = np.random.default_rng(0)
    assert sample_keep_mask(rng, 100, 4, 1.0).all()
    low = sample_keep_mask(rng, 5000, 4, 0.05)
    assert low.any(1).all()
    with pytest.raises(ValueError):
        sample_keep_mask(rng, 3, 4, 0.0)
    with pytest.raises(ValueError):
        make_digit_mosaics(5, seed=0, source_indices=[5000])
