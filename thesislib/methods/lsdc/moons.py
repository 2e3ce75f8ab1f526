"""Fig. 2 of thesis ch. 7, computed exactly: the L2, SNE and kNN connection graphs on two moons, each
with (as near as possible to) 650 undirected edges.

The thesis gives neither the number of points nor the noise; we use 200 points
(``sklearn.datasets.make_moons(200, noise=0.05)``), decided here. L2 and SNE keep the 650 pairs with
the smallest squared distance / the largest symmetric SNE similarity (the threshold τ that gives 650
edges); kNN edge counts move in steps, so k is the one whose graph has the edge count nearest 650
(ties: the smaller k); its count is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import make_moons
from torch import Tensor

from thesislib.selfsup.pseudo_labels import knn_adjacency, sq_distances, undirected_edges

N_EDGES = 650


@dataclass(frozen=True)
class MoonGraphs:
    """Points (N, 2), classes (N,), and per similarity the adjacency (N, N) and its parameter."""

    points: Tensor
    labels: Tensor
    graphs: dict[str, Tensor]
    settings: dict[str, str]


def top_pairs(score: Tensor, n_edges: int) -> tuple[Tensor, float]:
    """The adjacency of the ``n_edges`` pairs i < j with the largest ``score`` (symmetric (N, N)),
    and the threshold that selects them (the n-th largest score)."""
    n = score.shape[0]
    iu = torch.triu_indices(n, n, offset=1)
    vals = score[iu[0], iu[1]]
    top = torch.topk(vals, n_edges).indices
    a = torch.zeros_like(score)
    a[iu[0, top], iu[1, top]] = 1.0
    return a + a.T, float(vals[top].min())


def sne_similarity(x: Tensor, temperature: float) -> Tensor:
    """(p_{j|i} + p_{i|j}) / 2 with p_{j|i} = softmax_{j != i}(-||x_i - x_j||² / T²) (Table 1, eqs. 1-2)."""
    d = sq_distances(x) / temperature ** 2
    d.fill_diagonal_(float("inf"))
    p = torch.softmax(-d, 1)
    return (p + p.T) / 2


def moon_graphs(n_points: int = 200, noise: float = 0.05, seed: int = 0, n_edges: int = N_EDGES,
                temperature: float = 0.1) -> MoonGraphs:
    """The three graphs of Fig. 2 on one draw of two moons."""
    x, y = make_moons(n_points, noise=noise, random_state=seed)
    pts = torch.from_numpy(x.astype(np.float32))
    d = sq_distances(pts)
    graphs, settings = {}, {}
    graphs["L2"], tau = top_pairs(-d, n_edges)
    settings["L2"] = f"||x_i - x_j||² < {-tau:.4f}"
    graphs["SNE"], tau = top_pairs(sne_similarity(pts, temperature), n_edges)
    settings["SNE"] = f"T = {temperature}, τ = {tau:.4g}"
    best = min(range(1, n_points), key=lambda k: (abs(undirected_edges(knn_adjacency(pts, k)) - n_edges), k))
    graphs["kNN"] = knn_adjacency(pts, best).fill_diagonal_(0.0)
    settings["kNN"] = f"k = {best}"
    for g in ("L2", "SNE"):
        graphs[g].fill_diagonal_(0.0)
    return MoonGraphs(pts, torch.from_numpy(y), graphs, settings)


def degree_stats(a: Tensor) -> dict[str, float]:
    """Edges, isolated points and the spread of the degrees of an adjacency without self-loops."""
    deg = a.sum(1)
    return {"edges": float(undirected_edges(a)), "isolated": float((deg == 0).sum()),
            "min_degree": float(deg.min()), "max_degree": float(deg.max()), "degree_sd": float(deg.std())}
