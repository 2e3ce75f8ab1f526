"""Clustering metrics on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from thesislib.eval.clustering import best_matching, cluster_accuracy, cluster_scores, contingency


def test_acc_is_invariant_to_cluster_renaming():
    y = [0, 0, 1, 1, 2, 2]
    assert cluster_accuracy([2, 2, 0, 0, 1, 1], y) == 1.0
    assert best_matching([2, 2, 0, 0, 1, 1], y) == {2: 0, 0: 1, 1: 2}


def test_acc_hand_computed_with_a_conflict():
    # clusters: {0: classes 0,0,1}, {1: classes 1,1,0}: best matching 0->0, 1->1 gives 4 of 6
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0]) == pytest.approx(4 / 6)


def test_acc_matching_is_one_to_one():
    # everything in one cluster: only one class can be matched (a many-to-one map would give 1.0)
    assert cluster_accuracy([0, 0, 0, 0], [0, 0, 1, 1]) == 0.5
    # more clusters than classes: the extra cluster's samples are errors
    assert cluster_accuracy([0, 1, 2, 2], [0, 0, 1, 1]) == 0.75


def test_contingency_counts():
    t = contingency(torch.tensor([0, 1, 1]), torch.tensor([1, 1, 0]))
    np.testing.assert_array_equal(t, [[0, 1], [1, 1]])


def test_nmi_ari_hand_computed():
    s = cluster_scores([1, 1, 0, 0], [0, 0, 1, 1])
    assert (s.acc, s.nmi, s.ari) == (1.0, pytest.approx(1.0), pytest.approx(1.0))
    # y = [0,0,1,1], c = [0,1,0,1]: independent -> NMI 0; ARI: index 0, expected 2/6*2/6... = -0.5
    s = cluster_scores([0, 1, 0, 1], [0, 0, 1, 1])
    assert s.nmi == pytest.approx(0.0, abs=1e-12)
    # pairs: 6; same-class pairs 2, same-cluster pairs 2, both 0: ARI = (0 - 2*2/6) / ((2+2)/2 - 2*2/6) = -0.5
    assert s.ari == pytest.approx(-0.5)
    assert not math.isnan(s.acc)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        cluster_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="non-negative"):
        cluster_accuracy([-1, 0], [0, 0])
    with pytest.raises(ValueError, match="1-D"):
        cluster_accuracy(np.zeros((2, 2), dtype=int), [0, 0])


def test_kmeans_baseline_finds_separated_blobs():
    from thesislib.eval.clustering import kmeans_cluster_scores

    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, 0.0], [9.1, 0.1]])
    s = kmeans_cluster_scores(x, [2, 2, 0, 0, 1, 1], k=3, seed=0)
    assert (s.acc, s.ari) == (1.0, pytest.approx(1.0))
