"""DTC's estimate of the number of new classes (thesislib.eval.class_number): constrained k-means, the selection
rule, recovery on separated blobs, determinism, input checks; the shared ACC on rectangular tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

import thesislib.eval.class_number as CN
from thesislib.eval.class_number import (
    constrained_kmeans,
    count_clusters,
    estimate_num_classes,
    select_candidate,
    split_anchor_probe,
)
from thesislib.eval.clustering import cluster_accuracy


def blobs(n_classes: int, per: int, first: int, seed: int, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` blobs in 12-d, class c centred at 20 e_c (pairwise 28 apart), sd ``spread``."""
    rng = np.random.default_rng(seed)
    eye = 20.0 * np.eye(12)
    x = np.concatenate([eye[first + c] + spread * rng.standard_normal((per, 12)) for c in range(n_classes)])
    return x, np.repeat(np.arange(first, first + n_classes), per)


def test_rectangular_acc_counts_unmatched_clusters_and_classes_as_errors():
    # 4 clusters, 2 classes: cluster 0 -> class 0 (2 right), cluster 2 -> class 1 (2 right): 4 / 6
    assert cluster_accuracy([0, 0, 1, 2, 2, 3], [0, 0, 0, 1, 1, 1]) == pytest.approx(4 / 6)
    # 2 clusters, 3 classes: one cluster per class at most: 2 / 4
    assert cluster_accuracy([0, 0, 0, 1], [0, 1, 2, 2]) == pytest.approx(2 / 4)


def test_select_candidate_hand_computed():
    assert select_candidate([0.5, 1.0, 1.0, 0.8], [0.2, 0.9, 0.3, 0.1]) == (2, 1, 2)   # ceil(3 / 2) = 2
    assert select_candidate([1.0, 0.2, 0.2, 0.2], [0.1, 0.1, 0.1, 0.5]) == (0, 3, 2)   # ceil(3 / 2) = 2
    assert select_candidate([0.9, 0.9], [0.4, 0.4]) == (1, 1, 1)                         # last of the ties
    with pytest.raises(ValueError, match="ACC values"):
        select_candidate([0.1], [0.1, 0.2])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_true_number_recovered_on_separated_blobs(seed):
    # 6 labelled classes (3 anchor, 3 probe; broad blobs, sd 1.5) and 4 unlabelled ones (tight, sd 0.3); candidates
    # 0..9 new clusters, well past the truth 4. Below c = 4 some probe blob shares a cluster; above it the k-means
    # spends its extra clusters splitting the broad probe blobs, so the probe ACC peaks at c = 4 (not a plateau),
    # as does the silhouette: both indices are 4, and the chosen clustering has 4 unlabelled clusters of 30 images.
    xl, yl = blobs(6, 30, 0, seed=1, spread=1.5)
    xu, _ = blobs(4, 30, 6, seed=2)
    est = estimate_num_classes(xu, xl, yl, range(10), anchor_fraction=0.5, seed=seed)
    assert est.k == 4
    assert (est.acc_index, est.cvi_index, est.chosen) == (4, 4, 4)
    assert est.probe_acc[4] == 1.0 and max(est.probe_acc[5:]) < 1.0 and est.unlabelled_sizes == (30, 30, 30, 30)
    assert len(est.anchor_classes) == 3 and sorted(est.anchor_classes + est.probe_classes) == list(range(6))
    d = est.as_dict()     # the saved run shows why K was chosen
    assert (d["chosen_candidate"], d["acc_index"], d["cvi_index"], d["chosen_index"]) == (4, 4, 4, 4)
    assert d["unlabelled_sizes"] == [30, 30, 30, 30]


def test_probe_acc_plateau_biases_the_estimate_upward():
    # DTC's rule on tight probe blobs (sd 0.3, as tight as the unlabelled ones): extra clusters mostly split
    # unlabelled blobs, so the probe ACC keeps returning to its maximum 1 past the truth (c = 4); its last
    # maximiser (7) lies past the silhouette's peak (4) and the half-way candidate splits one unlabelled class:
    # estimate 5 for a truth of 4 (module docstring). Were the range to stop at 4, it would end at the truth.
    xl, yl = blobs(6, 30, 0, seed=1)
    xu, _ = blobs(4, 30, 6, seed=2)
    est = estimate_num_classes(xu, xl, yl, range(8), anchor_fraction=0.5, seed=0)
    assert (est.acc_index, est.cvi_index, est.chosen) == (7, 4, 6) and est.probe_acc[4] == est.probe_acc[7] == 1.0
    assert est.k == 5 and est.unlabelled_sizes[:3] == (30, 30, 30) and sum(est.unlabelled_sizes) == 120
    assert estimate_num_classes(xu, xl, yl, range(5), anchor_fraction=0.5, seed=0).k == 4


def test_silhouette_is_over_the_probe_and_unlabelled_rows_only():
    xl, yl = blobs(4, 15, 0, seed=5, spread=2.0)
    xu, _ = blobs(3, 15, 4, seed=6, spread=2.0)
    est = estimate_num_classes(xu, xl, yl, [1, 2, 3], anchor_fraction=0.5, seed=4)
    is_probe = np.isin(yl, est.probe_classes)
    free = np.concatenate([xl[is_probe], xu])
    for i, c in enumerate(est.candidates):
        run = constrained_kmeans(free, xl[~is_probe], yl[~is_probe], 4 + c, seed=4)
        assert est.silhouette[i] == pytest.approx(silhouette_score(free, run.free.numpy()))


def test_count_clusters_counts_strictly_above_the_ratio():
    sizes_100_1_1 = [0] * 100 + [1, 2]
    assert count_clusters(sizes_100_1_1, 0.01) == ((100, 1, 1), 1)      # 1 / 100 is not above 0.01
    assert count_clusters(sizes_100_1_1, 0.0099) == ((100, 1, 1), 3)
    assert count_clusters(torch.tensor([3, 3, 0, 5, 5, 5]), 0.34) == ((3, 2, 1), 2)  # empty 1, 2, 4 dropped
    with pytest.raises(ValueError, match="count_clusters"):
        count_clusters([], 0.1)


def test_anchor_rows_never_leave_their_class_cluster():
    # One anchor class whose rows sit in two far groups (x = -10 and x = +10), free rows near both groups, k = 2:
    # unconstrained 2-means would split the anchor rows by group; constrained, all of them stay in cluster 0.
    rng = np.random.default_rng(0)
    anchor = np.concatenate([[-10.0, 0.0] + 0.1 * rng.standard_normal((5, 2)),
                             [10.0, 0.0] + 0.1 * rng.standard_normal((5, 2))])
    free = np.concatenate([[-10.0, 5.0] + 0.1 * rng.standard_normal((20, 2)),
                           [10.0, 5.0] + 0.1 * rng.standard_normal((20, 2))])
    run = constrained_kmeans(free, anchor, [7] * 10, k=2, seed=0)
    assert run.anchor_classes == (7,)
    # the anchor cluster's centre is the mean of all ten anchor rows (and its free rows), not of one group: the
    # anchors were not split; every centre is the mean of the rows (anchor + free) it holds
    rows = torch.cat([torch.as_tensor(anchor), torch.as_tensor(free)])
    assign = torch.cat([run.anchor, run.free])
    for c in range(2):
        assert torch.allclose(run.centers[c], rows[assign == c].mean(0))


def test_anchor_classes_keep_their_own_clusters_among_many():
    xa, ya = blobs(3, 10, 0, seed=3)
    xf, _ = blobs(3, 10, 3, seed=4)
    run = constrained_kmeans(xf, xa, ya + 5, k=6, seed=1)              # labels 5, 6, 7 -> clusters 0, 1, 2
    assert run.anchor.tolist() == np.repeat([0, 1, 2], 10).tolist() and run.anchor_classes == (5, 6, 7)
    assert set(run.free.tolist()) == {3, 4, 5}                         # the free blobs take the other three


def test_probe_acc_is_the_shared_hungarian_acc(monkeypatch):
    calls: list[float] = []

    def spy(clusters, classes):
        calls.append(cluster_accuracy(clusters, classes))
        return calls[-1]

    monkeypatch.setattr(CN, "cluster_accuracy", spy)
    xl, yl = blobs(4, 15, 0, seed=5)
    xu, _ = blobs(2, 15, 4, seed=6)
    est = estimate_num_classes(xu, xl, yl, range(4), anchor_fraction=0.5, seed=0)
    assert est.probe_acc == tuple(calls) and len(calls) == 4


def test_deterministic_for_a_seed():
    xl, yl = blobs(5, 12, 0, seed=7, spread=3.0)        # overlapping: the restarts matter
    xu, _ = blobs(3, 12, 5, seed=8, spread=3.0)
    a = estimate_num_classes(xu, xl, yl, range(6), seed=11)
    b = estimate_num_classes(torch.as_tensor(xu), torch.as_tensor(xl), torch.as_tensor(yl), range(6), seed=11)
    assert a == b
    r1 = constrained_kmeans(xu, xl, yl, 8, seed=3)
    r2 = constrained_kmeans(xu, xl, yl, 8, seed=3)
    assert torch.equal(r1.free, r2.free) and r1.inertia == r2.inertia


def test_weighted_draw_is_numpys_choice_without_the_host_copy():
    w = np.random.default_rng(0).random(500) ** 4        # skewed weights
    w[::7] = 0.0                                         # rows already centres
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    ours = [CN.weighted_draw(torch.as_tensor(w), a) for _ in range(300)]
    assert ours == [int(b.choice(500, p=w / w.sum())) for _ in range(300)]
    assert not any(i % 7 == 0 for i in ours)             # zero weight: never drawn


def test_split_anchor_probe():
    anchors, probes = split_anchor_probe([3, 1, 2, 0], 0.7, seed=0)
    assert len(anchors) == 3 and len(probes) == 1 and sorted(anchors + probes) == [0, 1, 2, 3]
    assert split_anchor_probe([0, 1], 0.99, seed=0)[1] != []            # at least one probe class
    with pytest.raises(ValueError, match="at least 2 labelled classes"):
        split_anchor_probe([0], 0.5, seed=0)
    with pytest.raises(ValueError, match="anchor_fraction"):
        split_anchor_probe([0, 1], 1.0, seed=0)


def test_bad_input_is_rejected():
    xl, yl = blobs(4, 5, 0, seed=0)
    xu, _ = blobs(2, 5, 4, seed=0)
    with pytest.raises(ValueError, match="labels .* differ"):
        estimate_num_classes(xu, xl, yl[:-1], range(3))
    with pytest.raises(ValueError, match="dimensions"):
        estimate_num_classes(xu[:, :5], xl, yl, range(3))
    with pytest.raises(ValueError, match="candidates"):
        estimate_num_classes(xu, xl, yl, [2, 1])
    with pytest.raises(ValueError, match="candidates"):
        estimate_num_classes(xu, xl, yl, [-1, 0])
    with pytest.raises(ValueError, match="exceed"):
        estimate_num_classes(xu, xl, yl, range(40))
    with pytest.raises(ValueError, match="non-finite"):
        estimate_num_classes(np.full_like(xu, np.nan), xl, yl, range(3))
    with pytest.raises(ValueError, match="min_size"):
        estimate_num_classes(xu, xl, yl, range(3), min_size=1.0)
    with pytest.raises(ValueError, match="integer class"):
        estimate_num_classes(xu, xl, yl.astype(float), range(3))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        estimate_num_classes(xu[:, 0], xl, yl, range(3))
    with pytest.raises(ValueError, match="must exceed the 4 anchor classes"):
        constrained_kmeans(xu, xl, yl, k=4)
    with pytest.raises(ValueError, match="one label per anchor row"):
        constrained_kmeans(xu, xl, yl[:3], k=6)
