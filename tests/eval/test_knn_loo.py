"""Leave-one-out kNN accuracy against k (Jenni Fig. 4.6) on hand-computed points."""

import math

import pytest
import torch

from thesislib.eval.knn import knn_accuracy, loo_knn_accuracy, standardize_columns


def _circle(degrees: list[float]) -> torch.Tensor:
    return torch.tensor([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees])


def test_loo_accuracy_against_k_by_hand():
    # unit vectors at 0, 10, 30, 90, 100, 180 degrees: cosine order = angular distance
    x = _circle([0, 10, 30, 90, 100, 180])
    y = torch.tensor([0, 0, 1, 1, 1, 0])
    acc = loo_knn_accuracy(x, y, [1, 2, 3], standardize=False)
    # k=1: 30° -> 10° (class 0, wrong), 180° -> 100° (class 1, wrong), the other four right
    # k=2: 0° and 10° see one neighbour of each class, the tie goes to class 0 (right): again 4 of 6
    # k=3: only 90° and 100° (neighbours 100/90°, 30°, 10°: class 1) are right
    assert acc == pytest.approx({1: 4 / 6, 2: 4 / 6, 3: 2 / 6})


def test_loo_excludes_the_query_and_matches_knn_accuracy():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    acc = loo_knn_accuracy(x, y, [1, 4, 7], standardize=False)
    for k in (1, 4, 7):
        assert acc[k] == knn_accuracy(x, y, x, y, k=k, exclude_self=True)
    # every row its own exact duplicate, same label: the 1-NN leaves the query out but finds its twin
    twin = torch.cat([x, x])
    assert loo_knn_accuracy(twin, torch.cat([y, y]), [1], standardize=False)[1] == 1.0


def test_standardisation_changes_the_neighbours_by_hand():
    # the first column's scale (±10) hides the label (the second column's sign) from the raw cosine
    x = torch.tensor([[10.0, 1], [10, -1], [-10, 1], [-10, -1], [0, 1], [0, -1]])
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    # raw: (10, 1)'s nearest is (10, -1) (cos 99/101), wrong for the four outer rows; (0, ±1) are right
    assert loo_knn_accuracy(x, y, [1], standardize=False)[1] == pytest.approx(2 / 6)
    # standardised, column 0 is ±1.2247 or 0: (1.22, 1) is nearest (0, 1) (cos 0.63 > 0.2): all right
    assert loo_knn_accuracy(x, y, [1])[1] == 1.0
    z = standardize_columns(torch.tensor([[1.0, 10], [3, 10], [5, 10]]))
    assert torch.allclose(z, torch.tensor([[-1.5 ** 0.5, 0.0], [0, 0], [1.5 ** 0.5, 0]]))


def test_loo_rejects_bad_input():
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="k must be in 1..4"):
        loo_knn_accuracy(x, y, [5])
    with pytest.raises(ValueError, match="labels must be"):
        loo_knn_accuracy(x, y[:4], [1])
    with pytest.raises(ValueError, match="ks is empty"):
        loo_knn_accuracy(x, y, [])
