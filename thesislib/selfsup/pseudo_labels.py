"""Pairwise pseudo-labels from a batch of features (Rebuffi thesis ch. 7 Table 1, ch. 6 §3).

Every function maps features f (N, D) to a symmetric 0/1 matrix A (N, N) (float), A_ij = 1 when i
and j are taken to be in the same cluster; the diagonal is 1.

* L2: ||f_i - f_j||² < τ;   cosine: cos(f_i, f_j) >= τ (the code's ``>=``);
* SNE: with p_{j|i} = softmax_j(-||f_i - f_j||² / T²) over j != i, A_ij = (p_{j|i} + p_{i|j}) / 2 > τ
  (the code sets the diagonal to 1);
* kNN (LSD-C's choice): A_ij = (j in kNN(i)) or (i in kNN(j)); as in the released code a row's
  neighbours are the samples with d_ij strictly below its k-th smallest squared distance (itself
  included, so k - 1 others barring ties);
* ranking statistics (AutoNovel, ch. 6): A_ij = 1 when the *sets* of indices of the k largest
  components of f_i and f_j are equal.

All are computed on detached features: the targets carry no gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _check(f: Tensor) -> Tensor:
    if f.dim() != 2:
        raise ValueError(f"pairwise pseudo-labels need features (N, D), got {tuple(f.shape)}")
    return f.detach().float()


def sq_distances(f: Tensor) -> Tensor:
    """||f_i - f_j||² (N, N), clamped at 0."""
    f = _check(f)
    sq = (f * f).sum(1)
    return (sq[:, None] + sq[None, :] - 2 * f @ f.T).clamp_min_(0)


def l2_adjacency(f: Tensor, tau: float) -> Tensor:
    """A_ij = 1{||f_i - f_j||² < τ} (the grid of the thesis: τ in [0, 2], on normalised features)."""
    a = (sq_distances(f) < tau).float()
    return a.fill_diagonal_(1.0)


def cosine_adjacency(f: Tensor, tau: float) -> Tensor:
    """A_ij = 1{f_iᵀf_j / (||f_i|| ||f_j||) >= τ}."""
    g = torch.nn.functional.normalize(_check(f), dim=1)
    return (g @ g.T >= tau).float().fill_diagonal_(1.0)


def sne_adjacency(f: Tensor, tau: float, temperature: float = 1.0) -> Tensor:
    """A_ij = 1{(p_{j|i} + p_{i|j}) / 2 > τ}, p_{j|i} = exp(-d_ij/T²) / Σ_{k != i} exp(-d_ik/T²)."""
    d = sq_distances(f) / (temperature ** 2)
    d.fill_diagonal_(float("inf"))
    p = torch.softmax(-d, dim=1)
    return ((p + p.T) / 2 > tau).float().fill_diagonal_(1.0)


def knn_adjacency(f: Tensor, k: int) -> Tensor:
    """A_ij = (j in kNN(i)) or (i in kNN(j)), kNN by the code's strict ``d < kth smallest d`` rule."""
    d = sq_distances(f)
    n = d.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"knn_adjacency: k must be in 1..{n} (the batch), got {k}")
    kth = d.kthvalue(k, dim=1).values
    near = d < kth[:, None]
    return (near | near.T).float().fill_diagonal_(1.0)


def rank_statistics(f: Tensor, k: int) -> Tensor:
    """A_ij = 1{top_k(f_i) = top_k(f_j)} as sets of indices (AutoNovel, ch. 6; k = 5 in the thesis)."""
    f = _check(f)
    if not 1 <= k <= f.shape[1]:
        raise ValueError(f"rank_statistics: k must be in 1..{f.shape[1]}, got {k}")
    top = torch.topk(f, k, dim=1).indices.sort(dim=1).values
    return (top[:, None, :] == top[None, :, :]).all(-1).float()


ADJACENCIES: dict[str, Callable[..., Tensor]] = {
    "knn": knn_adjacency, "cosine": cosine_adjacency, "l2": l2_adjacency, "sne": sne_adjacency,
    "rank": rank_statistics,
}


def adjacency(f: Tensor, kind: str, *, k: int = 20, tau: float = 0.9, temperature: float = 1.0) -> Tensor:
    """Dispatch to the adjacency ``kind`` (``knn`` uses k; ``cosine``/``l2`` τ; ``sne`` τ and T;
    ``rank`` k)."""
    if kind in ("knn", "rank"):
        return ADJACENCIES[kind](f, k)
    if kind in ("cosine", "l2"):
        return ADJACENCIES[kind](f, tau)
    if kind == "sne":
        return sne_adjacency(f, tau, temperature)
    raise ValueError(f"unknown adjacency {kind!r}; choose one of {', '.join(ADJACENCIES)}")


def undirected_edges(a: Tensor) -> int:
    """Number of undirected edges i < j of a symmetric adjacency (the count of ch. 7 Fig. 2)."""
    return int(torch.triu(a, diagonal=1).sum().item())
