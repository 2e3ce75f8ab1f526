"""Clustering metrics (Rebuffi thesis ch. 6 eq. 6, ch. 7 eq. 9): accuracy under the best one-to-one
matching of clusters to classes, NMI and ARI.

``ACC = max_{g in Sym(L)} (1/N) sum_i 1{y_i = g(c_i)}``: the best matching is found by the Hungarian
algorithm (:func:`scipy.optimize.linear_sum_assignment` on the cluster x class contingency table;
the released code's ``sklearn.utils.linear_assignment_`` no longer exists). With more clusters than
classes the unmatched clusters count as errors. NMI and ARI are scikit-learn's
(``normalized_mutual_info_score`` with its default arithmetic normalisation, as the AutoNovel code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

ArrayLike = np.ndarray | torch.Tensor | list[int]


def _labels(x: ArrayLike, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one label per sample (1-D), got shape {a.shape}")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0):
        raise ValueError(f"{name} must hold non-negative integer labels")
    return a.astype(np.int64)


def contingency(clusters: ArrayLike, classes: ArrayLike) -> np.ndarray:
    """``C[k, c]`` = number of samples in cluster ``k`` with class ``c`` (K x L, both from 0)."""
    k, y = _labels(clusters, "clusters"), _labels(classes, "classes")
    if len(k) != len(y):
        raise ValueError(f"clusters and classes differ in length ({len(k)} vs {len(y)})")
    table = np.zeros((int(k.max(initial=-1)) + 1, int(y.max(initial=-1)) + 1), dtype=np.int64)
    np.add.at(table, (k, y), 1)
    return table


def best_matching(clusters: ArrayLike, classes: ArrayLike) -> dict[int, int]:
    """The cluster -> class assignment maximising the matched count (Hungarian algorithm)."""
    table = contingency(clusters, classes)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def cluster_accuracy(clusters: ArrayLike, classes: ArrayLike) -> float:
    """ACC (ch. 6 eq. 6, ch. 7 eq. 9): the fraction of samples whose matched cluster is their class."""
    table = contingency(clusters, classes)
    if table.sum() == 0:
        raise ValueError("cluster_accuracy of no samples")
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


@dataclass(frozen=True)
class ClusterScores:
    acc: float
    nmi: float
    ari: float


def cluster_scores(clusters: ArrayLike, classes: ArrayLike) -> ClusterScores:
    """ACC, NMI and ARI of one clustering against the true classes."""
    k, y = _labels(clusters, "clusters"), _labels(classes, "classes")
    return ClusterScores(cluster_accuracy(k, y), float(normalized_mutual_info_score(y, k)),
                         float(adjusted_rand_score(y, k)))


def kmeans_cluster_scores(x: np.ndarray | torch.Tensor, classes: ArrayLike, k: int, seed: int = 0,
                          n_init: int = 10) -> ClusterScores:
    """The k-means baseline: scikit-learn's k-means (k-means++ seeding, ``n_init`` restarts) on the
    rows of x (N, ...) flattened, scored by ACC / NMI / ARI against ``classes``."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    rows = a.reshape(len(a), -1).astype(np.float64)
    assign = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(rows)
    return cluster_scores(assign, classes)


def silhouette(features: np.ndarray | torch.Tensor, clusters: ArrayLike, sample_size: int = 2000,
               seed: int = 0) -> float:
    """Mean silhouette (Rousseeuw 1987) of a clustering of the rows of ``features`` (N, D), Euclidean, no
    class labels involved: in [-1, 1], higher is better. Above ``sample_size`` rows it is estimated on a
    random subset of that size (scikit-learn's ``silhouette_score``, ``random_state=seed``). A clustering
    with fewer than 2 non-empty clusters (a collapse) scores -1, the worst value."""
    k = _labels(clusters, "clusters")
    a = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    rows = a.reshape(len(a), -1).astype(np.float64)
    if len(rows) != len(k):
        raise ValueError(f"silhouette: {len(rows)} feature rows for {len(k)} cluster labels")
    if len(np.unique(k)) < 2 or len(np.unique(k)) >= len(k):
        return -1.0
    size = sample_size if len(k) > sample_size else None
    return float(silhouette_score(rows, k, sample_size=size, random_state=seed))


def size_balance(clusters: ArrayLike, k: int) -> float:
    """Normalised entropy of the cluster sizes over the ``k`` known clusters: H(n_c / N) / log k, in [0, 1];
    1 for K equal clusters, lower as clusters merge or empty (0 for one cluster). No labels involved."""
    c = _labels(clusters, "clusters")
    if k < 2:
        raise ValueError(f"size_balance: k must be >= 2, got {k}")
    if c.size and c.max() >= k:
        raise ValueError(f"size_balance: cluster index {int(c.max())} is not below k = {k}")
    p = np.bincount(c, minlength=k) / max(len(c), 1)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(k))


def balanced_silhouette(features: np.ndarray | torch.Tensor, clusters: ArrayLike, k: int,
                        sample_size: int = 2000, seed: int = 0) -> float:
    """A label-free selection score for a clustering into ``k`` known clusters: the silhouette rescaled to
    [0, 1], (s + 1) / 2, times :func:`size_balance`. The silhouette alone prefers merging well-separated
    groups (4 blobs merged into 2 score higher than the true 4-way split); the balance factor penalises a
    clustering that uses fewer than ``k`` clusters or very unequal ones. In [0, 1], higher is better."""
    return (silhouette(features, clusters, sample_size, seed) + 1.0) / 2.0 * size_balance(clusters, k)
