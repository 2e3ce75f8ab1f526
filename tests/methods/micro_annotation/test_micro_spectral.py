"""Algorithm 3: the linear-time solver against hand-computed cases and the quadratic reference."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.linalg
from sklearn.metrics import adjusted_rand_score

from thesislib.methods.micro_annotation.spectral import (
    SpectralConfig,
    check_patterns,
    choose_k,
    cluster_means,
    degrees,
    reference_spectral_clustering,
    reference_spectral_embedding,
    spectral_clustering,
    spectral_embedding,
)


def _groups(n_per: int, dim: int, centres: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.uniform(0, 1, (centres, dim)) ** 6
    labels = np.repeat(np.arange(centres), n_per)
    a = means[labels] + noise * rng.uniform(0, 1, (len(labels), dim))
    return a / np.linalg.norm(a, axis=1, keepdims=True), labels


def test_two_orthogonal_groups_by_hand():
    """Patterns e1, e1, e2, e2, e2: W is block diagonal, so lambda_1 = lambda_2 = 0 and the graph
    splits exactly into the two blocks; lambda_3 = lambda_4 = 1 (W has rank 2)."""
    a = np.array([[1.0, 0], [1, 0], [0, 1], [0, 1], [0, 1]])
    lam, vec = spectral_embedding(a, 4)
    assert np.allclose(lam, [0, 0, 1, 1], atol=1e-12)
    d = degrees(a)
    assert np.allclose(d, [2, 2, 3, 3, 3])
    assert np.allclose((vec[:, :2] ** 2 * d[:, None]).sum(axis=0), 1.0)       # v^T D v = 1
    assert np.allclose(vec[:, 2:], 0.0)                                         # beyond rank(A)
    result = spectral_clustering(a, SpectralConfig(rho=0.7, min_clusters=2, max_clusters=4))
    assert result.k == 2 and adjusted_rand_score(result.labels, [0, 0, 1, 1, 1]) == 1.0
    assert np.allclose(np.sort(result.means[:, 0]), [0, 1]) and sorted(result.sizes.tolist()) == [2, 3]


def test_degrees_equal_the_row_sums_of_w():
    a, _ = _groups(30, 8, 3, 0.3, 1)
    assert np.allclose(degrees(a), (a @ a.T).sum(axis=1))


@pytest.mark.parametrize("solver", ["svd", "lanczos"])
def test_fast_path_equals_the_quadratic_reference(solver):
    a, truth = _groups(120, 12, 3, 0.08, 2)
    lam_fast, vec_fast = spectral_embedding(a, 4, solver)
    lam_ref, vec_ref = reference_spectral_embedding(a, 4)
    assert np.allclose(lam_fast, lam_ref, atol=1e-8)
    # the generalized problem holds for the fast eigenvectors: L v = lambda D v
    w = a @ a.T
    d = np.diag(w.sum(axis=1))
    residual = (d - w) @ vec_fast - d @ vec_fast * lam_fast
    assert np.abs(residual).max() < 1e-7
    # same eigenvectors up to sign (eigenvalues are distinct here)
    gaps = np.diff(lam_ref)
    assert gaps.min() > 1e-3
    assert np.allclose(np.abs(vec_fast), np.abs(vec_ref), atol=1e-6)
    fast = spectral_clustering(a, SpectralConfig(solver=solver))
    slow = reference_spectral_clustering(a)
    assert fast.k == slow.k == 3
    assert adjusted_rand_score(fast.labels, slow.labels) == 1.0
    assert adjusted_rand_score(fast.labels, truth) == 1.0


def test_eigenvalues_are_those_of_d_inverse_l():
    a, _ = _groups(40, 6, 2, 0.2, 3)
    w = a @ a.T
    d = w.sum(axis=1)
    every = np.sort(np.linalg.eigvals(np.diag(1 / d) @ (np.diag(d) - w)).real)
    assert np.allclose(spectral_embedding(a, 4)[0], every[:4], atol=1e-9)
    assert np.allclose(scipy.linalg.eigh(np.diag(d) - w, np.diag(d), eigvals_only=True)[:4], every[:4], atol=1e-9)


@pytest.mark.parametrize("eigenvalues, expected", [
    ([0.0, 0.3, 0.5, 0.9], 3),      # three below rho
    ([0.0, 0.8, 0.9, 0.95], 2),     # only lambda_1 below: the lower bound m = 2
    ([0.0, 0.1, 0.2, 0.3], 4),      # all four below: M
    ([0.0, 0.1, 0.2, 0.3, 0.4], 4),  # only the M smallest count
])
def test_choose_k(eigenvalues, expected):
    assert choose_k(np.array(eigenvalues), rho=0.7, min_clusters=2, max_clusters=4) == expected


def test_cluster_means_are_eq_3_1_averages():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    means = cluster_means(a, np.array([0, 1, 1]), 2)
    assert np.allclose(means, [[1.0, 0.0], [0.3, 0.9]])


def test_bad_patterns_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        check_patterns(np.array([[1.0, -0.1]]) / np.linalg.norm([1.0, -0.1]))
    with pytest.raises(ValueError, match="L2-normalised"):
        check_patterns(np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="L2-normalised"):
        check_patterns(np.array([[0.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="at least max_clusters"):
        spectral_clustering(np.eye(3))
    with pytest.raises(ValueError, match="min_clusters"):
        SpectralConfig(min_clusters=3, max_clusters=2)


def test_seeded_and_deterministic():
    a, _ = _groups(80, 10, 3, 0.3, 4)
    r1, r2 = spectral_clustering(a, SpectralConfig(seed=5)), spectral_clustering(a, SpectralConfig(seed=5))
    assert np.array_equal(r1.labels, r2.labels) and np.array_equal(r1.embedding, r2.embedding)


def test_linear_time_on_200k_patterns():
    """W would need 200k^2 * 8 bytes = 320 GB; the fast path runs in seconds and O(N K) memory."""
    rng = np.random.default_rng(0)
    n, dim = 200_000, 64
    centres = rng.uniform(0, 1, (2, dim)) ** 6
    labels = rng.integers(0, 2, n)
    a = (centres[labels] + 0.05 * rng.uniform(0, 1, (n, dim))).astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    start = time.perf_counter()
    result = spectral_clustering(a, SpectralConfig(kmeans_init=2))
    seconds = time.perf_counter() - start
    assert seconds < 30, f"{seconds:.1f} s"
    assert result.labels.shape == (n,) and result.embedding.shape == (n, result.k)
    assert adjusted_rand_score(labels, result.labels) > 0.99
