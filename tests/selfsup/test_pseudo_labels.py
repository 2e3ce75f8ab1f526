"""Pairwise pseudo-labels (Rebuffi ch. 7 Table 1, ch. 6 ranking statistics) on hand-computed cases."""

import math

import pytest
import torch

from thesislib.selfsup import (
    adjacency,
    cosine_adjacency,
    knn_adjacency,
    l2_adjacency,
    rank_statistics,
    sne_adjacency,
    undirected_edges,
)

LINE = torch.tensor([[0.0], [1.0], [3.0], [7.0]])


def test_knn_strict_kth_rule_or_symmetrised():
    # squared distances from 0: [0, 1, 9, 49]; k=3 -> kth = 9, strict: {0, 1}
    # row 1: [1, 0, 4, 36], kth 4 -> {0, 1}; row 2: [9, 4, 0, 16], kth 9 -> {1, 2}; row 3: [49, 36, 16, 0],
    # kth 36 -> {2, 3}. OR-symmetrised: edges 0-1, 1-2 (from row 2 only), 2-3 (from row 3 only)
    a = knn_adjacency(LINE, 3)
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.float)
    torch.testing.assert_close(a, expected)
    assert torch.equal(a, a.T)


def test_l2_cosine_thresholds():
    torch.testing.assert_close(l2_adjacency(LINE, 4.5).sum(), torch.tensor(4.0 + 2 + 2))   # pairs 0-1, 1-2
    f = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    a = cosine_adjacency(f, 0.9)
    assert a[0, 1] == 1 and a[0, 2] == 0 and torch.all(a.diag() == 1)


def test_sne_hand_computed():
    f = torch.tensor([[0.0], [1.0], [3.0]])
    # p_{j|i} = softmax_j(-d_ij) over j != i, T = 1
    d = torch.tensor([[0, 1, 9], [1, 0, 4], [9, 4, 0]], dtype=torch.float)
    e = torch.exp(-d) * (1 - torch.eye(3))
    p = e / e.sum(1, keepdim=True)
    c = (p + p.T) / 2
    tau = float(c[1, 2]) - 1e-6     # keeps 0-1 and 1-2, drops 0-2
    a = sne_adjacency(f, tau, 1.0)
    assert a[0, 1] == 1 and a[1, 2] == 1 and a[0, 2] == 0
    assert c[0, 2] < tau and math.isclose(float(c[0, 1]), 0.5 * (p[0, 1] + p[1, 0]), rel_tol=1e-6)


def test_rank_statistics_compares_top_k_sets():
    f = torch.tensor([[5.0, 4.0, 0.0, 1.0], [4.0, 5.0, 1.0, 0.0], [0.0, 5.0, 4.0, 1.0]])
    a = rank_statistics(f, 2)     # top-2 sets: {0,1}, {0,1}, {1,2}
    torch.testing.assert_close(a, torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]))


def test_dispatch_and_errors():
    torch.testing.assert_close(adjacency(LINE, "knn", k=3), knn_adjacency(LINE, 3))
    assert undirected_edges(knn_adjacency(LINE, 3)) == 3
    with pytest.raises(ValueError, match="unknown adjacency"):
        adjacency(LINE, "nope")
    with pytest.raises(ValueError, match="k must be"):
        knn_adjacency(LINE, 9)


def test_matched_l2_threshold_gives_knn_positive_rate():
    """Review R1 item 3: τ matched to kNN's k - 1 other positives per row on average."""
    from thesislib.selfsup import matched_l2_threshold
    g = torch.Generator().manual_seed(0)
    f = 5.0 * torch.randn(600, 16, generator=g)           # raw features: median squared distance ~ 800
    assert l2_adjacency(f[:128], 1.0).sum() == 128         # τ = 1 on raw features: the identity
    tau = matched_l2_threshold(f, 128, 10, generator=torch.Generator().manual_seed(1))
    rates = [(l2_adjacency(f[i:i + 128], tau).sum() - 128) / (128 * 127) for i in range(0, 512, 128)]
    assert abs(float(torch.stack(rates).mean()) - 9 / 127) < 0.02
    with pytest.raises(ValueError, match="k in"):
        matched_l2_threshold(f, 128, 200)
