"""Pairwise BCE, consistency and ramp-up (Rebuffi ch. 6 eqs. 3-5, ch. 7 eqs. 4-8) on hand-computed cases."""

import math

import pytest
import torch

from thesislib.selfsup import consistency_mse, pair_probabilities, pairwise_bce, sigmoid_rampup


def test_pair_probability_is_inner_product():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    torch.testing.assert_close(pair_probabilities(p), torch.tensor([[1.0, 0.5], [0.5, 0.5]]))


def test_pairwise_bce_hand_computed_mean_over_all_ordered_pairs():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    eps = 1e-7
    # P = [[1, .5], [.5, .5]]: -log(1+eps), -log(1-.5+eps), -log(1-.5+eps), -log(.5+eps); mean over 4 pairs
    expected = -(math.log(1 + eps) + 3 * math.log(0.5 + eps)) / 4
    assert float(pairwise_bce(p, p, s)) == pytest.approx(expected, rel=1e-6)


def test_pairwise_bce_soft_target_and_shapes():
    p = torch.softmax(torch.randn(5, 3), 1)
    q = torch.softmax(torch.randn(4, 3), 1)
    t = torch.rand(5, 4)
    P = p @ q.T
    ref = -(t * torch.log(P + 1e-7) + (1 - t) * torch.log(1 - P + 1e-7)).mean()
    torch.testing.assert_close(pairwise_bce(p, q, t), ref)
    with pytest.raises(ValueError, match="does not match"):
        pairwise_bce(p, q, torch.rand(5, 5))


def test_consistency_is_mean_squared_difference():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    assert float(consistency_mse(p, q)) == pytest.approx((0.25 + 0.25) / 4)   # 1/(KN) sum ||.||^2


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-5 * 0.25))
    assert sigmoid_rampup(10, 10) == 1.0 and sigmoid_rampup(50, 10) == 1.0
    assert sigmoid_rampup(3, 0) == 1.0


def test_pairwise_bce_weighted_equals_the_mean_over_the_selected_pairs():
    p = torch.softmax(torch.randn(6, 3), 1)
    q = torch.softmax(torch.randn(6, 3), 1)
    t = (torch.rand(6, 6) > 0.5).float()
    keep = torch.tensor([True, False, True, True, False, True])
    w = (keep[:, None] & keep[None, :]).float()
    torch.testing.assert_close(pairwise_bce(p, q, t, weight=w), pairwise_bce(p[keep], q[keep], t[keep][:, keep]))
