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
* :func:`standardize_columns`, :func:`loo_knn_accuracy`: leave-one-out kNN accuracy of a labelled set against k
  (Jenni Fig. 4.6: features standardised, cosine, each item classified by the (k+1)-NN of the whole set
  less itself), one neighbour search for every k.

Everything is vectorised and chunked over queries (``chunk`` rows at a time), so memory is
O(chunk x N) and no host-device sync happens inside the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    return _vote(sims, train_y.to(idx.device)[idx], c, vote)


def _vote(sims: torch.Tensor, labels: torch.Tensor, num_classes: int, vote: Vote) -> torch.Tensor:
    """Winning class (M,) of the neighbours' ``labels`` (M, k) with similarities ``sims`` (M, k) (ties: the
    smallest class index, ``argmax``'s first maximum)."""
    weights = sims if vote == "weighted" else torch.ones_like(sims)
    scores = torch.zeros(labels.shape[0], num_classes, device=labels.device, dtype=torch.float64)
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


def standardize_columns(x: torch.Tensor) -> torch.Tensor:
    """Every column of ``x`` (N, D) shifted to mean 0 and scaled to standard deviation 1 over the N rows (float32;
    constant columns, std <= 1e-8, are only centred)."""
    if x.ndim != 2:
        raise ValueError(f"standardize_columns: features must be (N, D), got {tuple(x.shape)}")
    xd = x.double()
    std = xd.std(dim=0, unbiased=False)
    return ((xd - xd.mean(dim=0)) / torch.where(std > 1e-8, std, torch.ones_like(std))).float()


def loo_knn_accuracy(x: torch.Tensor, y: torch.Tensor, ks: Sequence[int], vote: Vote = "majority",
                     standardize: bool = True, chunk: int = 1024) -> dict[int, float]:
    """Leave-one-out kNN accuracy ``{k: accuracy}`` of the labelled set ``x`` (N, D), ``y`` (N,) for every k in
    ``ks`` (Jenni Fig. 4.6's protocol).

    Each row is classified by the vote (:func:`knn_predict`'s rules) of its k most cosine-similar *other* rows of
    the set: the thesis's "(k+1)-NN over the whole set, the nearest (the query itself) dropped". Here the query's
    own index is masked rather than the first neighbour dropped, which is the same whenever a row is its own
    nearest neighbour and stays leave-one-out when the set holds exact duplicates. ``standardize``: columns
    z-scored over the set first (:func:`standardize_columns`; the thesis standardises its conv5 features). One
    neighbour search at max(ks) serves every k.
    """
    if y.shape != (x.shape[0],):
        raise ValueError(f"loo_knn_accuracy: labels must be (N,) = ({x.shape[0]},), got {tuple(y.shape)}")
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("loo_knn_accuracy: ks is empty")
    if vote not in ("majority", "weighted"):
        raise ValueError(f"vote must be 'majority' or 'weighted', got {vote!r}")
    feats = standardize_columns(x) if standardize else x
    sims, idx = _similarity_topk(feats, feats, max(ks), True, chunk)           # (N, max k), best first
    labels = y.to(idx.device)[idx]
    truth = y.to(idx.device)
    c = int(y.max()) + 1
    return {k: float((_vote(sims[:, :k], labels[:, :k], c, vote) == truth).double().mean()) for k in ks}
