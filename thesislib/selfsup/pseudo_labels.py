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

All are computed on detached features in float32 with autocast off (under the engine's bf16
autocast, ``||a||² + ||b||² - 2ab`` would cancel and a bf16 top-k would tie): the targets carry no
gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from thesislib.selfsup.precision import full_precision


def _check(f: Tensor) -> Tensor:
    if f.dim() != 2:
        raise ValueError(f"pairwise pseudo-labels need features (N, D), got {tuple(f.shape)}")
    return f.detach().float()


def sq_distances(f: Tensor) -> Tensor:
    """||f_i - f_j||² (N, N), clamped at 0, in float32 with autocast off."""
    f = _check(f)
    with full_precision(f):
        sq = (f * f).sum(1)
        return (sq[:, None] + sq[None, :] - 2 * f @ f.T).clamp_min_(0)


def l2_adjacency(f: Tensor, tau: float) -> Tensor:
    """A_ij = 1{||f_i - f_j||² < τ} on the features as given (the thesis grid-searched τ in [0, 2]; the
    scale of ||f_i - f_j||² depends on the network, so see :func:`matched_l2_threshold`)."""
    a = (sq_distances(f) < tau).float()
    return a.fill_diagonal_(1.0)


def matched_l2_threshold(f: Tensor, batch_size: int, k: int, n_batches: int = 8,
                         generator: torch.Generator | None = None) -> float:
    """τ for :func:`l2_adjacency` giving, on batches of ``batch_size`` rows drawn from f (N, D), the
    positive rate of a kNN graph: the (k - 1) / (B - 1) quantile of the off-diagonal squared distances,
    so a row has k - 1 other positives on average, as a kNN row before symmetrisation (the equal-edge
    comparison of ch. 7 Fig. 2). ``n_batches`` batches drawn without replacement within a batch."""
    f = _check(f)
    n = f.shape[0]
    b = min(batch_size, n)
    if b < 2 or not 1 <= k <= b:
        raise ValueError(f"matched_l2_threshold: need a batch of >= 2 rows and k in 1..{b}, got B={b}, k={k}")
    off = ~torch.eye(b, dtype=torch.bool, device=f.device)
    d = torch.cat([sq_distances(f[torch.randperm(n, generator=generator)[:b].to(f.device)])[off]
                   for _ in range(n_batches)])
    return float(torch.quantile(d.cpu(), (k - 1) / (b - 1)))


def cosine_adjacency(f: Tensor, tau: float) -> Tensor:
    """A_ij = 1{f_iᵀf_j / (||f_i|| ||f_j||) >= τ}."""
    g = torch.nn.functional.normalize(_check(f), dim=1)
    with full_precision(g):
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
    with full_precision(f):
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
