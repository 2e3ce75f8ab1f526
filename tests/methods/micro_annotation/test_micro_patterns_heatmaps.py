"""Pattern sets A^y (step i), cluster heatmaps (Eq. 3.1) and the suppression of step (iv)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from thesislib.methods.micro_annotation.heatmaps import (
    cluster_heatmaps,
    nearest_cluster,
    object_regions,
    suppress_scores,
)
from thesislib.methods.micro_annotation.model import cam_small_gap
from thesislib.methods.micro_annotation.patterns import (
    extract_patterns,
    forward_maps,
    normalize_patterns,
    region_centres_in_boxes,
    region_fraction,
)
from thesislib.nn import CAMClassifier

CPU = torch.device("cpu")


def _hand_model() -> CAMClassifier:
    """Identity trunk on 2-channel "feature images"; class 0 scores channel 0, class 1 channel 1."""
    model = CAMClassifier(nn.Identity(), feat_channels=2, num_classes=2)
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(2))
        model.fc.bias.zero_()
    return model


def _features() -> torch.Tensor:
    f = torch.zeros(2, 2, 2, 3)
    f[0, 0] = torch.tensor([[10.0, 1.0, 3.0], [0.0, 5.0, 1.5]])
    f[0, 1] = torch.tensor([[0.0, 4.0, 0.0], [0.0, 5.0, 2.0]])
    f[1, 0] = torch.tensor([[2.0, 2.0, 2.0], [2.0, 2.0, 8.0]])
    f[1, 1] = 1.0
    return f


def test_patterns_are_the_normalised_features_of_d_y_by_hand():
    model, f = _hand_model(), _features()
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    found = extract_patterns(model, [(f, labels)], CPU)
    # class 0, image 0: scores [[10,1,3],[0,5,1.5]] > 2 -> cells 0, 2, 4; image 1: [[2,2,2],[2,2,8]] > 1.6 -> all 6
    p0 = found[0]
    assert p0.grid == (2, 3)
    assert p0.image.tolist() == [0, 0, 0] + [1] * 6 and p0.cell.tolist() == [0, 2, 4, 0, 1, 2, 3, 4, 5]
    expected = torch.nn.functional.normalize(f.permute(0, 2, 3, 1).reshape(2, 6, 2), dim=2)
    assert np.allclose(p0.vectors[:3], expected[0, [0, 2, 4]].numpy())
    assert np.allclose(np.linalg.norm(p0.vectors, axis=1), 1.0)
    # class 1 only from image 1 (image 0 is not labelled 1): all scores 1 -> all 6 cells
    assert found[1].image.tolist() == [1] * 6
    assert set(extract_patterns(model, [(f, labels)], CPU, classes=[1])) == {1}
    assert model.training  # the mode is restored


def test_zero_feature_regions_are_left_out_and_index_labels_work():
    model = _hand_model()
    f = torch.zeros(1, 2, 1, 3)
    f[0, 0] = torch.tensor([[4.0, 0.0, 3.0]])
    f[0, 1] = torch.tensor([[0.0, 0.0, 1.0]])
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    # class 1 scores [0, 0, -1]: max 0 -> D keeps the maximal cells 0 and 1, but cell 1 is all zero
    found = extract_patterns(model, [(f, torch.tensor([1]))], CPU)
    assert found[1].cell.tolist() == [0]
    assert 0 not in found


def test_forward_maps_layers_and_the_gap_identity():
    torch.manual_seed(0)
    model = cam_small_gap(3, width=4, extra=8).eval()
    x = torch.rand(2, 3, 16, 16)
    logits, cams, trunk = forward_maps(model, x, "trunk")
    _, _, feats = forward_maps(model, x, "features")
    assert trunk.shape == (2, 8, 8, 8) and feats.shape == (2, 8, 8, 8) and cams.shape == (2, 3, 8, 8)
    assert torch.allclose(cams.mean(dim=(2, 3)) + model.fc.bias, logits, atol=1e-5)
    assert torch.allclose(trunk, model.trunk_features(x)) and torch.allclose(feats, model.features(x))
    with pytest.raises(ValueError, match="layer"):
        forward_maps(model, x, "conv9")
    with pytest.raises(ValueError, match="non-negative"):
        normalize_patterns(-torch.ones(1, 2, 1, 1))


def test_heatmap_is_the_mean_similarity_to_the_cluster_eq_3_1():
    rng = np.random.default_rng(0)
    members = rng.uniform(0, 1, (5, 4))
    members /= np.linalg.norm(members, axis=1, keepdims=True)
    phi = torch.nn.functional.normalize(torch.rand(2, 4, 3, 3), dim=1)
    mean = torch.tensor(members.mean(axis=0), dtype=torch.float32)
    h = cluster_heatmaps(phi, mean[None])
    explicit = sum(torch.einsum("bkhw,k->bhw", phi, torch.tensor(a, dtype=torch.float32)) for a in members) / 5
    assert h.shape == (2, 1, 3, 3) and torch.allclose(h[:, 0], explicit, atol=1e-6)


def test_argmax_not_min_and_zero_patterns_match_nothing():
    heat = torch.tensor([[[[0.9, 0.0]], [[0.2, 0.0]], [[0.5, 0.0]]]])   # (1, 3 clusters, 1, 2)
    assert nearest_cluster(heat).tolist() == [[[0, -1]]]
    keep = object_regions(heat, torch.tensor([False, True, True]))
    assert keep.tolist() == [[[False, True]]]


def test_suppression_sets_distractor_regions_to_minus_infinity():
    phi = torch.zeros(1, 2, 1, 3)
    phi[0, 0, 0, 0] = 1.0                      # like cluster 0 (water)
    phi[0, 1, 0, 1] = 1.0                      # like cluster 1 (boat)
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scores = torch.tensor([[[5.0, 2.0, 1.0]]])
    out = suppress_scores(scores, phi, means, torch.tensor([False, True]))
    assert out.tolist() == [[[-float("inf"), 2.0, 1.0]]]
    assert torch.equal(suppress_scores(scores, phi, means, torch.tensor([True, True])), scores)
    with pytest.raises(ValueError, match="one flag per cluster"):
        suppress_scores(scores, phi, means, torch.tensor([True]))


def test_region_ground_truth_helpers():
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :2, :1] = True
    assert region_fraction(masks, (2, 2)).tolist() == [[[0.5, 0.0], [0.0, 0.0]]]
    inside = region_centres_in_boxes([np.array([[0, 0, 3, 2]]), np.zeros((0, 4))], (4, 4), (2, 2))
    # region centres at (1, 1), (3, 1), (1, 3), (3, 3) in (x, y); box x in [0, 3), y in [0, 2)
    assert inside.tolist() == [[[True, False], [False, False]], [[False, False], [False, False]]]
