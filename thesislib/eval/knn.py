"""Nearest-neighbour evaluation of frozen features: kNN classification and retrieval.

Features are compared by cosine similarity (Jenni Fig. 3.8 retrieves conv5 neighbours by cosine):
rows of ``x`` (N, D) are L2-normalised and s(i, j) = <x_i, x_j>. Ties in similarity keep the
lower gallery index (a stable descending sort).

* :func:`knn_predict`: majority vote (or similarity-weighted vote) of the k most similar training
  items; vote ties go to the smallest class index.
* :func:`retrieve`: indices (Q, k) of the k most similar gallery items per query;
  ``exclude_self`` removes the query itself when query and gallery are the same set
  (leave-one-out).
* :func:`precision_at_k`: fraction of retrieved items that share the query's label.

Everything is vectorised and chunked over queries (``chunk`` rows at a time), so memory is
O(chunk x N) and no host-device sync happens inside the loop.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Vote = Literal["majority", "weighted"]


def _similarity_topk(query: torch.Tensor, gallery: torch.Tensor, k: int, exclude_self: bool,
                     chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"features must be (Q, D) and (N, D), got {tuple(query.shape)} and {tuple(gallery.shape)}")
    n = gallery.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    if exclude_self and query.shape[0] != gallery.shape[0]:
        raise ValueError("exclude_self needs query and gallery to be the same set")
    q = F.normalize(query.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    sims, idx = [], []
    for start in range(0, q.shape[0], chunk):
        s = q[start:start + chunk] @ g.T                                       # (c, N)
        if exclude_self:
            rows = torch.arange(s.shape[0], device=s.device)
            s[rows, rows + start] = float("-inf")
        order = torch.sort(s, dim=1, descending=True, stable=True)
        sims.append(order.values[:, :k])
        idx.append(order.indices[:, :k])
    return torch.cat(sims), torch.cat(idx)


def retrieve(query: torch.Tensor, gallery: torch.Tensor, k: int, exclude_self: bool = False,
             chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most cosine-similar gallery rows per query: ``(similarities (Q, k), indices (Q, k))``, best first."""
    return _similarity_topk(query, gallery, k, exclude_self, chunk)


def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, k: int = 5,
                num_classes: int | None = None, vote: Vote = "majority", exclude_self: bool = False,
                chunk: int = 1024) -> torch.Tensor:
    """Predicted labels (M,) int64 of ``test_x`` (M, D) by its k nearest ``train_x`` (N, D) rows (cosine).

    ``vote="majority"``: each neighbour adds 1 to its class; ``"weighted"``: it adds its cosine
    similarity. The class with the largest total wins (ties: smallest class index).
    ``exclude_self=True`` with ``test_x is train_x`` gives leave-one-out predictions.
    """
    if vote not in ("majority", "weighted"):
        raise ValueError(f"vote must be 'majority' or 'weighted', got {vote!r}")
    if train_y.shape != (train_x.shape[0],):
        raise ValueError("train_y must be (N,) matching train_x")
    c = int(num_classes) if num_classes is not None else int(train_y.max()) + 1
    sims, idx = _similarity_topk(test_x, train_x, k, exclude_self, chunk)
    labels = train_y.to(idx.device)[idx]                                       # (M, k)
    weights = sims if vote == "weighted" else torch.ones_like(sims)
    scores = torch.zeros(idx.shape[0], c, device=idx.device, dtype=torch.float64)
    scores.scatter_add_(1, labels, weights.double())
    return scores.argmax(dim=1)


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 k: int = 5, vote: Vote = "majority", exclude_self: bool = False) -> float:
    """Fraction of ``test_y`` predicted correctly by :func:`knn_predict`."""
    pred = knn_predict(train_x, train_y, test_x, k=k, vote=vote, exclude_self=exclude_self,
                       num_classes=int(max(int(train_y.max()), int(test_y.max()))) + 1)
    return float((pred == test_y.to(pred.device)).double().mean())


def precision_at_k(query_y: torch.Tensor, gallery_y: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Per query (Q,) float64: the share of its retrieved ``indices`` (Q, k) whose label equals its own."""
    same = gallery_y.to(indices.device)[indices] == query_y.to(indices.device)[:, None]
    return same.double().mean(dim=1)
