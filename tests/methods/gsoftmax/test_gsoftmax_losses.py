"""G-softmax losses on hand-computed cases (Eqs. 13-16) and their lam = 0 reductions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from thesislib.methods.gsoftmax import (
    GaussianLogitTransform,
    gsoftmax_cross_entropy,
    gsoftmax_multilabel_loss,
    multilabel_scores,
    multilabel_soft_margin_loss,
    split_pos_neg,
)

# log(1 + e^a), for hand-computed values
sp = lambda a: math.log1p(math.exp(a))  # noqa: E731


def test_single_label_hand_computed():
    t = GaussianLogitTransform(2, lam=1.0, mu_init=[1.0, 0.0], sigma_init=1.0)
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # Phi = [1/2, 1/2] -> z = [1.5, 0.5]; -log p_0 = log(1 + e^-1), -log p_1 = log(1 + e^1)
    per = gsoftmax_cross_entropy(x, torch.tensor([0, 1]), t, reduction="none")
    assert torch.allclose(per, torch.tensor([sp(-1.0), sp(1.0)]), atol=1e-6)
    assert torch.allclose(gsoftmax_cross_entropy(x, torch.tensor([0, 1]), t), per.mean())
    # equal logits at the means: z = [0.5, 0.5] -> log 2
    t0 = GaussianLogitTransform(2, lam=1.0)
    assert math.isclose(gsoftmax_cross_entropy(torch.zeros(1, 2), torch.tensor([1]), t0).item(), math.log(2),
                        rel_tol=1e-6)


def test_single_label_none_transform_is_cross_entropy():
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    y = torch.arange(5)
    assert torch.equal(gsoftmax_cross_entropy(x, y, None), F.cross_entropy(x, y))


def test_split_pos_neg_layout():
    logits = torch.arange(8.0).reshape(1, 8)
    pos, neg = split_pos_neg(logits)
    assert torch.equal(pos, torch.tensor([[0.0, 2.0, 4.0, 6.0]]))
    assert torch.equal(neg, torch.tensor([[1.0, 3.0, 5.0, 7.0]]))
    with pytest.raises(ValueError, match="even"):
        split_pos_neg(torch.zeros(2, 5))


LOGITS = torch.tensor([[2.0, 0.0, 0.5, 1.0]])   # class 1: (x+, x-) = (2, 0); class 2: (0.5, 1)
TARGETS = torch.tensor([[1.0, 0.0]])


@pytest.mark.parametrize("reading,expected", [
    ("pairwise", sp(-2.0) + sp(-0.5)),     # -log s(2 - 0) - log(1 - s(0.5 - 1))
    ("eq16", sp(-2.0) + sp(1.0)),          # -log s(2) - log(1 - s(1))
    ("eq15", sp(-2.0) + sp(-1.0)),         # -log s(2) - log s(1)
])
def test_multilabel_hand_computed_without_transform(reading, expected):
    loss = gsoftmax_multilabel_loss(LOGITS, TARGETS, None, reading=reading)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


@pytest.mark.parametrize("reading,expected", [
    # z = [2 + Phi(2), 0 + Phi(0), 0.5 + Phi(0.5), 1 + Phi(1)] = [2.97725, 0.5, 1.19146, 1.84134]
    ("pairwise", 0.5007294891401035),
    ("eq16", 2.0382386467150653),
    ("eq15", 0.19689390064652212),
])
def test_multilabel_hand_computed_with_transform(reading, expected):
    t = GaussianLogitTransform(4, lam=1.0)
    loss = gsoftmax_multilabel_loss(LOGITS, TARGETS, t, reading=reading)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_multilabel_reductions_and_lam_zero():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 10, generator=gen) * 3
    targets = (torch.rand(6, 5, generator=gen) < 0.4).float()
    per = gsoftmax_multilabel_loss(logits, targets, reduction="none")
    assert per.shape == (6, 5)
    assert torch.allclose(gsoftmax_multilabel_loss(logits, targets), per.sum(1).mean())  # sum classes, mean batch
    assert torch.allclose(gsoftmax_multilabel_loss(logits, targets, reduction="sum"), per.sum())
    t0 = GaussianLogitTransform(10, lam=0.0, mu_init=0.3, sigma_init=2.0)
    for reading in ("pairwise", "eq16", "eq15"):
        assert torch.equal(gsoftmax_multilabel_loss(logits, targets, t0, reading),
                           gsoftmax_multilabel_loss(logits, targets, None, reading))
    # the lam = 0 pairwise loss is the per-class 2-way softmax cross-entropy (the paper's "softmax" rows)
    pairs = logits.view(6, 5, 2)
    ce = -torch.log_softmax(pairs, -1)
    two_way = targets * ce[..., 0] + (1 - targets) * ce[..., 1]
    assert torch.allclose(per, two_way, atol=1e-6)
    with pytest.raises(ValueError, match="reading"):
        gsoftmax_multilabel_loss(logits, targets, reading="eq14")
    with pytest.raises(ValueError, match="targets must have shape"):
        gsoftmax_multilabel_loss(logits, targets[:, :4])


def test_multilabel_scores():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 6, generator=gen)
    t = GaussianLogitTransform(6, lam=1.0, mu_init=torch.randn(6, generator=gen))
    p = multilabel_scores(logits, t)
    z = t(logits).view(4, 3, 2)
    assert p.shape == (4, 3)
    assert torch.allclose(p, torch.softmax(z, -1)[..., 0], atol=1e-6)            # 2-way softmax per class
    assert torch.allclose(multilabel_scores(logits, t, "eq16"), torch.sigmoid(z[..., 0]))
    assert ((p >= 0) & (p <= 1)).all()
    # the pairwise loss is the binary cross-entropy of these scores
    y = (torch.rand(4, 3, generator=gen) < 0.5).float()
    assert torch.allclose(gsoftmax_multilabel_loss(logits, y, t, reduction="none"),
                          F.binary_cross_entropy(p, y, reduction="none"), atol=1e-5)


def test_literal_readings_are_degenerate_and_pairwise_is_not():
    """A constant network (x+ = 30, x- = -30 everywhere) zeroes Eq. 16 whatever the labels; not the pairwise loss."""
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    const = torch.tensor([30.0, -30.0]).repeat(2, 3)
    assert gsoftmax_multilabel_loss(const, targets, reading="eq16") < 1e-10
    assert gsoftmax_multilabel_loss(torch.full((2, 6), 30.0), targets, reading="eq15") < 1e-10
    assert gsoftmax_multilabel_loss(const, targets, reading="pairwise") > 50


def test_msml_eq14():
    logits = torch.tensor([[2.0, -1.0]])
    y = torch.tensor([[1.0, 0.0]])
    assert math.isclose(multilabel_soft_margin_loss(logits, y).item(), sp(-2.0) + sp(-1.0), rel_tol=1e-6)
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 4, generator=gen)
    y = (torch.rand(5, 4, generator=gen) < 0.5).float()
    # torch's version averages over classes; Eq. 14 sums them
    assert torch.allclose(multilabel_soft_margin_loss(logits, y), 4 * F.multilabel_soft_margin_loss(logits, y))
