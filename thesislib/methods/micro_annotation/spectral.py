"""Spectral clustering of patterns in linear time (thesis Algorithm 3, step (ii) of section 3.3).

Input: the pattern matrix A (N, K) whose rows are the L2-normalised, non-negative patterns
a in A^y. Algorithm 3 (with erratum 4 of the study note: line 3 is L = D - W):

1. W = A A^T (N, N), W_ab = <a, b> >= 0;
2. D = diag(d), d_a = sum_b W_ab;
3. L = D - W;
4. the M smallest eigenpairs of the generalized problem L v = lambda D v;
5. k = number of those eigenvalues below rho, at least m (and at most M, since only M are
   computed);
6-8. k-means on the rows of U = [v_1 | ... | v_k].

W is never formed. With d = A (A^T 1) and B = D^{-1/2} A (N, K),

    D^{-1/2} L D^{-1/2} = I - D^{-1/2} W D^{-1/2} = I - B B^T,

so L v = lambda D v holds exactly when u = D^{1/2} v is an eigenvector of B B^T with eigenvalue
1 - lambda. The thin SVD B = U S V^T therefore gives every eigenpair: lambda_i = 1 - s_i^2 and
v_i = D^{-1/2} u_i, normalised so that v_i^T D v_i = 1 (the normalisation of
``scipy.linalg.eigh(L, D)``). Beyond rank(B) <= K the eigenvalues are exactly 1. The cost is
O(N K^2) time and O(N K) memory (``solver="svd"``); ``solver="lanczos"`` runs ARPACK's Lanczos
iteration (the thesis's choice) on the operator x -> B (B^T x), also without W.

Since the patterns are non-negative and unit-norm, d_a >= <a, a> = 1 > 0 and lambda_1 = 0 with
a constant v_1. :func:`reference_spectral_clustering` forms W and solves ``eigh(L, D)``
directly: O(N^2) memory, for tests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from sklearn.cluster import KMeans

Solver = Literal["svd", "lanczos"]


@dataclass(frozen=True)
class SpectralConfig:
    """Algorithm 3's parameters: ``rho`` (eigenvalue threshold, default 0.7), ``min_clusters`` m
    (default 2), ``max_clusters`` M (default 4); the eigen ``solver``; k-means restarts
    ``kmeans_init`` and ``seed``."""

    rho: float = 0.7
    min_clusters: int = 2
    max_clusters: int = 4
    solver: Solver = "svd"
    kmeans_init: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_clusters <= self.max_clusters:
            raise ValueError(f"need 1 <= min_clusters <= max_clusters, got {self.min_clusters}, "
                             f"{self.max_clusters}")
        if self.solver not in ("svd", "lanczos"):
            raise ValueError(f"solver must be 'svd' or 'lanczos', got {self.solver!r}")
        if self.kmeans_init < 1:
            raise ValueError("kmeans_init must be positive")


@dataclass(frozen=True)
class SpectralResult:
    """One class's clustering P^y.

    ``eigenvalues`` (M,) ascending (lambda_1 = 0); ``k`` the number of clusters; ``labels`` (N,)
    int64 cluster of each pattern, 0..k-1; ``embedding`` (N, k) the rows u_a of U; ``means``
    (k, K) the average cluster patterns a_C (Eq. 3.1); ``sizes`` (k,) the cluster sizes.
    """

    eigenvalues: np.ndarray
    k: int
    labels: np.ndarray
    embedding: np.ndarray
    means: np.ndarray
    sizes: np.ndarray

    @property
    def second_eigenvalue(self) -> float:
        """lambda_2, the ranking key of Fig. 3.5(b) (small: a strong two-cluster structure)."""
        return float(self.eigenvalues[1]) if len(self.eigenvalues) > 1 else 1.0


def check_patterns(patterns: np.ndarray, atol: float = 1e-4) -> np.ndarray:
    """Validate A (N, K): finite, non-negative rows of unit L2 norm; returned as float64."""
    a = np.asarray(patterns, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"patterns must be a non-empty (N, K) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("patterns contain NaN or infinite values")
    if (a < 0).any():
        raise ValueError("patterns must be non-negative (post-ReLU features, section 3.3(i))")
    norms = np.linalg.norm(a, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > atol)
    if bad.size:
        raise ValueError(f"{bad.size} patterns are not L2-normalised (e.g. row {bad[0]} has norm "
                         f"{norms[bad[0]]:.4g}); all-zero features cannot be patterns")
    return a


def degrees(a: np.ndarray) -> np.ndarray:
    """d = W 1 = A (A^T 1), (N,), without forming W (Algorithm 3, line 2)."""
    return a @ a.sum(axis=0)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so that its entry of largest magnitude is positive (a deterministic sign)."""
    idx = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[idx, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


def spectral_embedding(patterns: np.ndarray, num: int, solver: Solver = "svd",
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``num`` smallest eigenpairs of L v = lambda D v in O(N K^2) (see the module docstring).

    Returns eigenvalues (num,) ascending and eigenvectors (N, num), D-normalised
    (v^T D v = 1), each with a deterministic sign. Eigenvalues beyond rank(A) are 1 and their
    eigenvectors are left as zero columns (they never enter the clustering: k <= #{lambda < rho}
    or k = m <= rank for any useful input).
    """
    a = check_patterns(patterns)
    n, dim = a.shape
    if not 1 <= num <= n:
        raise ValueError(f"need 1 <= num <= N = {n} eigenpairs, got {num}")
    d = degrees(a)
    inv_sqrt_d = 1.0 / np.sqrt(d)
    b = a * inv_sqrt_d[:, None]                        # B = D^{-1/2} A, (N, K)
    rank = min(n, dim)
    take = min(num, rank)
    if solver == "svd":
        u, s, _ = np.linalg.svd(b, full_matrices=False)    # s descending
        u, s = u[:, :take], s[:take]
    elif solver == "lanczos":
        if take >= n:  # ARPACK needs take < N; tiny problems go to the dense path
            return spectral_embedding(patterns, num, "svd", seed)
        op = scipy.sparse.linalg.LinearOperator((n, n), matvec=lambda x: b @ (b.T @ x), dtype=np.float64)
        v0 = np.random.default_rng(seed).uniform(0.5, 1.5, n)
        s2, u = scipy.sparse.linalg.eigsh(op, k=take, which="LA", v0=v0, tol=1e-10)
        order = np.argsort(-s2)
        s, u = np.sqrt(np.clip(s2[order], 0.0, None)), u[:, order]
    else:
        raise ValueError(f"unknown solver {solver!r}")
    eigenvalues = np.ones(num)
    eigenvalues[:take] = np.clip(1.0 - s ** 2, 0.0, 1.0)
    vectors = np.zeros((n, num))
    vectors[:, :take] = _fix_signs(u * inv_sqrt_d[:, None])     # v_i = D^{-1/2} u_i
    return eigenvalues, vectors


def choose_k(eigenvalues: np.ndarray, rho: float, min_clusters: int, max_clusters: int) -> int:
    """Algorithm 3, line 5: the number of the M smallest eigenvalues below ``rho``, at least m."""
    below = int((np.asarray(eigenvalues)[:max_clusters] < rho).sum())
    return int(min(max(below, min_clusters), max_clusters))


def cluster_means(patterns: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """a_C = (1 / |C|) sum_{a in C} a for C = 0..k-1, (k, K) (section 3.3(iii)); empty clusters: 0."""
    a = np.asarray(patterns, dtype=np.float64)
    sums = np.zeros((k, a.shape[1]))
    np.add.at(sums, labels, a)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return sums / np.maximum(counts, 1.0)[:, None]


def _kmeans(embedding: np.ndarray, k: int, config: SpectralConfig) -> np.ndarray:
    if k == 1:
        return np.zeros(len(embedding), dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=config.kmeans_init, random_state=config.seed)
    return km.fit_predict(embedding).astype(np.int64)


def _finish(patterns: np.ndarray, eigenvalues: np.ndarray, vectors: np.ndarray,
            config: SpectralConfig) -> SpectralResult:
    k = choose_k(eigenvalues, config.rho, config.min_clusters, config.max_clusters)
    if len(patterns) < k:
        raise ValueError(f"{len(patterns)} patterns cannot form {k} clusters")
    embedding = vectors[:, :k]
    labels = _kmeans(embedding, k, config)
    return SpectralResult(eigenvalues=eigenvalues, k=k, labels=labels, embedding=embedding,
                          means=cluster_means(patterns, labels, k),
                          sizes=np.bincount(labels, minlength=k))


def spectral_clustering(patterns: np.ndarray, config: SpectralConfig | None = None) -> SpectralResult:
    """Algorithm 3 in linear time: eigenpairs from :func:`spectral_embedding`, k by
    :func:`choose_k`, seeded k-means on the rows of U. ``patterns`` (N, K) as in
    :func:`check_patterns`."""
    config = config or SpectralConfig()
    a = check_patterns(patterns)
    if len(a) < config.max_clusters:
        raise ValueError(f"need at least max_clusters = {config.max_clusters} patterns, got {len(a)}")
    eigenvalues, vectors = spectral_embedding(a, config.max_clusters, config.solver, config.seed)
    return _finish(a, eigenvalues, vectors, config)


def reference_spectral_embedding(patterns: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic reference: W = A A^T, D, L = D - W explicitly and ``scipy.linalg.eigh(L, D)``.

    Same outputs and conventions as :func:`spectral_embedding` (D-normalised, sign-fixed
    eigenvectors); O(N^2) memory and O(N^3) time, for tests on small N.
    """
    a = check_patterns(patterns)
    w = a @ a.T
    d = np.diag(w.sum(axis=1))
    lam, vec = scipy.linalg.eigh(d - w, d, subset_by_index=[0, num - 1])
    return np.clip(lam, 0.0, 1.0), _fix_signs(vec)


def reference_spectral_clustering(patterns: np.ndarray, config: SpectralConfig | None = None) -> SpectralResult:
    """Algorithm 3 with the explicit N x N matrices (:func:`reference_spectral_embedding`)."""
    config = config or SpectralConfig()
    a = check_patterns(patterns)
    eigenvalues, vectors = reference_spectral_embedding(a, config.max_clusters)
    return _finish(a, eigenvalues, vectors, config)
