"""SEC's loss terms (thesis Eqs. 2.2-2.5) against hand-computed values, limits and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from thesislib.crf import DenseCRFParams, dense_crf
from thesislib.methods.sec.losses import (
    NO_CUE,
    constrain_loss,
    constrain_targets,
    cue_onehot,
    decay_for_mass,
    downscale_image,
    expansion_decays,
    expansion_loss,
    gwrp,
    sec_probabilities,
    seeding_loss,
    training_crf_scale,
)


def _probs(values):
    """(B, K, h, w) from nested lists given as [B][h*w][K] rows of probabilities."""
    t = torch.tensor(values, dtype=torch.float64)  # (B, n, K)
    b, n, k = t.shape
    return t.permute(0, 2, 1).reshape(b, k, 1, n)


# --------------------------------------------------------------------------------------------
def test_probability_floor_matches_the_released_formula():
    logits = torch.tensor([[[[10.0]], [[0.0]], [[-10.0]]]])
    plain = sec_probabilities(logits, floor=0.0)
    assert torch.allclose(plain, torch.softmax(logits, 1))
    floored = sec_probabilities(logits, floor=1e-4)
    expected = (torch.softmax(logits, 1) + 1e-4) / (1 + 3e-4)
    assert torch.allclose(floored, expected)
    assert floored.min() > 1e-4 / (1 + 3e-4) - 1e-9
    assert torch.allclose(floored.sum(1), torch.ones(1, 1, 1))


def test_cue_onehot_from_a_label_map():
    cues = torch.tensor([[[0, NO_CUE, 2]]])
    onehot = cue_onehot(cues, 3)
    assert onehot.shape == (1, 3, 1, 3) and onehot.dtype == torch.bool
    assert onehot[0, :, 0, 0].tolist() == [True, False, False]
    assert not onehot[0, :, 0, 1].any()
    assert onehot[0, :, 0, 2].tolist() == [False, False, True]
    assert torch.equal(cue_onehot(onehot, 3), onehot)
    with pytest.raises(ValueError):
        cue_onehot(torch.zeros(1, 2, 1, 3), 3)


# --------------------------------------------------------------------------------------------
# Eq. 2.2
def test_seeding_loss_hand_computed():
    # image 0: 3 locations, bg seed at u0 (p=0.5), class-2 seed at u2 (p=0.25); image 1: one class-1 seed (p=0.8)
    probs = _probs([[[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.25, 0.5, 0.25]],
                    [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]]])
    cues = torch.tensor([[[0, NO_CUE, 2]], [[1, NO_CUE, NO_CUE]]])
    img0 = -(math.log(0.5) + math.log(0.25)) / 2
    img1 = -math.log(0.8)
    got = seeding_loss(probs, cues)
    assert got.item() == pytest.approx((img0 + img1) / 2, rel=1e-12)
    batch = seeding_loss(probs, cues, normalization="batch")
    assert batch.item() == pytest.approx(-(math.log(0.5) + math.log(0.25) + math.log(0.8)) / 3, rel=1e-12)
    fg_only = seeding_loss(probs, cues, include_background=False)
    assert fg_only.item() == pytest.approx((-math.log(0.25) + img1) / 2, rel=1e-12)


def test_seeding_loss_image_without_seeds_contributes_zero():
    probs = _probs([[[0.5, 0.5], [0.5, 0.5]], [[0.9, 0.1], [0.1, 0.9]]])
    cues = torch.tensor([[[NO_CUE, NO_CUE]], [[0, 1]]])
    got = seeding_loss(probs, cues)
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(-math.log(0.9) / 2, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Eq. 2.3
def test_gwrp_hand_computed():
    scores = torch.tensor([[[0.1, 0.9, 0.5]]])
    # sorted 0.9, 0.5, 0.1 with weights 1, 0.5, 0.25 over Z = 1.75
    assert gwrp(scores, 0.5).item() == pytest.approx((0.9 + 0.25 + 0.025) / 1.75)


def test_gwrp_limits_are_gmp_and_gap():
    torch.manual_seed(0)
    scores = torch.rand(3, 4, 7, 5)
    assert torch.equal(gwrp(scores, 0.0), scores.flatten(2).amax(-1))  # 0^0 = 1, exactly the max
    assert torch.allclose(gwrp(scores, 1.0), scores.flatten(2).mean(-1))
    mid = gwrp(scores, 0.9)
    assert (mid <= scores.flatten(2).amax(-1) + 1e-7).all() and (mid >= scores.flatten(2).mean(-1) - 1e-7).all()


def test_gwrp_is_invariant_to_location_order_and_takes_per_class_decays():
    torch.manual_seed(1)
    scores = torch.rand(2, 3, 16)
    perm = torch.randperm(16)
    assert torch.allclose(gwrp(scores, 0.8), gwrp(scores[..., perm], 0.8))
    decays = torch.tensor([0.0, 0.5, 1.0])
    got = gwrp(scores, decays)
    for c, d in enumerate(decays.tolist()):
        assert torch.allclose(got[:, c], gwrp(scores[:, c:c + 1], d)[:, 0])
    with pytest.raises(ValueError):
        gwrp(scores, 1.5)
    assert torch.equal(gwrp(scores, torch.tensor(0.0)), scores.amax(-1))     # Eq. 2.3 itself, no shortcut
    assert torch.allclose(gwrp(scores, torch.tensor(1.0)), scores.mean(-1))


def test_gwrp_gradient_goes_to_the_ranked_locations():
    scores = torch.tensor([[[0.1, 0.9, 0.5]]], requires_grad=True)
    gwrp(scores, 0.5).sum().backward()
    assert torch.allclose(scores.grad, torch.tensor([[[0.25, 1.0, 0.5]]]) / 1.75)


# --------------------------------------------------------------------------------------------
def test_decay_rule_reproduces_the_thesis_values():
    d_plus, d_bg = expansion_decays(41 * 41)
    assert round(d_plus, 3) == 0.996 and round(d_bg, 3) == 0.999   # thesis section 2.4.1
    assert d_plus == pytest.approx(0.99589, abs=1e-5) and d_bg == pytest.approx(0.99893, abs=1e-5)
    for n, p in ((1681, 0.1), (256, 0.3), (1024, 0.05)):
        d = decay_for_mass(n, p)
        assert (1 - d ** (p * n)) / (1 - d ** n) == pytest.approx(0.5, abs=1e-9)
    assert decay_for_mass(256, 0.1) < decay_for_mass(256, 0.3) < 1.0
    assert decay_for_mass(256, 0.1) < decay_for_mass(1681, 0.1)  # fewer locations: faster decay
    with pytest.raises(ValueError):
        decay_for_mass(256, 0.5)


# --------------------------------------------------------------------------------------------
# Eq. 2.4
def test_expansion_loss_hand_computed():
    # K = 3 (bg, c1, c2), two locations; c1 present, c2 absent
    probs = _probs([[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]]])
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    g1 = (0.7 + 0.5 * 0.1) / 1.5            # d+ = 0.5
    g2 = 0.3                               # d- = 0: max
    gbg = (0.2 + 0.6) / 2                  # d_bg = 1: mean
    expected = -math.log(g1) - math.log(1 - g2) - math.log(gbg)
    got = expansion_loss(probs, labels, d_plus=0.5, d_minus=0.0, d_bg=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_expansion_loss_averages_over_classes_and_images():
    probs = _probs([[[0.2, 0.5, 0.2, 0.1]], [[0.4, 0.1, 0.1, 0.4]]])
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    img0 = -(math.log(0.5) + math.log(0.2)) / 2 - math.log(0.9) - math.log(0.2)
    img1 = -(math.log(0.9) + math.log(0.9) + math.log(0.6)) / 3 - math.log(0.4)  # no class present: term 0
    got = expansion_loss(probs, labels, 0.5, 0.0, 0.5)
    assert got.item() == pytest.approx((img0 + img1) / 2, rel=1e-12)
    every = expansion_loss(probs, torch.ones(2, 3, dtype=torch.float64), 0.5, 0.0, 0.5)  # no absent class
    assert torch.isfinite(every)


def test_expansion_loss_is_finite_without_the_floor():
    logits = torch.tensor([[[[50.0]], [[-50.0]]]])
    probs = sec_probabilities(logits, floor=0.0)
    assert torch.isfinite(expansion_loss(probs, torch.tensor([[0.0]]), 0.9, 0.0, 0.9))


# --------------------------------------------------------------------------------------------
# Eq. 2.5
def test_constrain_loss_is_the_mean_kl():
    probs = _probs([[[0.5, 0.5], [0.9, 0.1]]])
    q = _probs([[[0.8, 0.2], [0.9, 0.1]]])
    kl0 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert constrain_loss(probs, q).item() == pytest.approx(kl0 / 2, rel=1e-12)
    assert constrain_loss(probs, probs).item() == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError):
        constrain_loss(probs, q[:, :, :, :1])


def _scene(seed=0, b=2, k=3, h=6, w=7):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(b, k, h, w, generator=g, dtype=torch.float64)
    image = torch.zeros(b, 3, h, w, dtype=torch.float64)
    image[:, :, :, w // 2:] = 200.0                      # two flat regions with an edge
    image += torch.randint(0, 5, image.shape, generator=g).double()
    return logits, image


def test_constrain_targets_equal_f_without_pairwise_terms_and_for_a_uniform_f():
    logits, image = _scene()
    probs = sec_probabilities(logits, 0.0)
    no_pairwise = DenseCRFParams(bilateral_weight=0.0, gaussian_weight=0.0)
    q = constrain_targets(logits, probs, image, no_pairwise, method="exact", unary="log_probs", q_floor=0.0)
    assert torch.allclose(q, probs, atol=1e-12)
    assert constrain_loss(probs, q).item() == pytest.approx(0.0, abs=1e-12)
    uniform = torch.zeros_like(logits)  # f = 1/K: every label receives the same message, f is a fixed point
    pu = sec_probabilities(uniform, 0.0)
    qu = constrain_targets(uniform, pu, image, DenseCRFParams.sec_train(), method="exact", q_floor=0.0)
    assert torch.allclose(qu, pu, atol=1e-12)


def test_a_confident_prediction_is_not_a_fixed_point():
    """The CRF sharpens a confident f (the message favours its own label), so the loss is > 0 even
    when the network already agrees with the image: Q is a moving target, never f itself."""
    k, h, w = 3, 5, 6
    logits = torch.full((1, k, h, w), -2.0, dtype=torch.float64)
    logits[:, 1] = 2.0
    image = torch.full((1, 3, h, w), 120.0, dtype=torch.float64)
    probs = sec_probabilities(logits, 0.0)
    q = constrain_targets(logits, probs, image, DenseCRFParams.sec_train(), method="exact", q_floor=0.0)
    assert (q.argmax(1) == 1).all() and (q[:, 1] > probs[:, 1]).all()
    assert constrain_loss(probs, q).item() > 1e-3


def test_crf_follows_the_image_edge():
    logits, image = _scene(seed=3, b=1, k=2, h=8, w=8)
    logits = torch.zeros_like(logits)
    logits[:, 0, :, :4] = 1.0   # weak evidence: label 0 left, label 1 right...
    logits[:, 1, :, 4:] = 1.0
    logits[:, 1, 2:6, 3] = 1.6  # ...except one column left of the edge that leans wrongly to label 1
    probs = sec_probabilities(logits, 0.0)
    q = constrain_targets(logits, probs, image, DenseCRFParams.sec_train().scaled(1.0), method="exact", q_floor=0.0)
    assert (probs.argmax(1)[0, 2:6, 3] == 1).all()
    assert (q.argmax(1)[0, :, :4] == 0).all() and (q.argmax(1)[0, :, 4:] == 1).all()


def test_logit_and_log_prob_unaries_agree_without_the_floor():
    logits, image = _scene(seed=2)
    probs = sec_probabilities(logits, 0.0)
    params = DenseCRFParams.sec_train()
    a = constrain_targets(logits, probs, image, params, method="exact", unary="logits", q_floor=0.0)
    b = constrain_targets(logits, probs, image, params, method="exact", unary="log_probs", q_floor=0.0)
    assert torch.allclose(a, b, atol=1e-10)
    floored = constrain_targets(logits, probs, image, params, method="exact", q_floor=1e-2)
    assert floored.min() >= 1e-2 / (1 + 3e-2) - 1e-12
    assert torch.allclose(floored.sum(1), torch.ones_like(floored[:, 0]))


def test_q_is_a_constant_by_default():
    """With the default stop-gradient the constrain gradient w.r.t. the logits is (f - Q) / n,
    the gradient of a cross-entropy towards a fixed target."""
    logits, image = _scene(seed=4)
    logits.requires_grad_(True)
    probs = sec_probabilities(logits, 0.0)
    q = constrain_targets(logits, probs, image, DenseCRFParams.sec_train(), method="permutohedral", q_floor=0.0)
    assert not q.requires_grad
    constrain_loss(probs, q).backward()
    n = logits.shape[0] * logits.shape[2] * logits.shape[3]
    assert torch.allclose(logits.grad, (probs - q).detach() / n, atol=1e-12)


def test_unrolled_gradient_flows_through_the_mean_field_iterations():
    logits, image = _scene(seed=5, b=1, k=3, h=4, w=5)
    params = DenseCRFParams.sec_train(iterations=3)

    def loss(x):
        p = sec_probabilities(x, 0.0)
        return constrain_loss(p, constrain_targets(x, p, image, params, method="auto", grad="unrolled", q_floor=0.0))

    x = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (x,), eps=1e-6, atol=1e-6)
    loss(x).backward()
    stop = logits.clone().requires_grad_(True)
    p = sec_probabilities(stop, 0.0)
    constrain_loss(p, constrain_targets(stop, p, image, params, method="exact", q_floor=0.0)).backward()
    assert not torch.allclose(x.grad, stop.grad, atol=1e-6)
    with pytest.raises(ValueError):
        constrain_targets(logits, p, image, params, grad="both")


def test_downscale_rounds_and_scale_rule():
    image = torch.linspace(0, 255, 3 * 9 * 9).reshape(1, 3, 9, 9)
    small = downscale_image(image, (3, 3))
    assert small.shape == (1, 3, 3, 3) and torch.equal(small, small.round())
    assert small[0, :, 0, 0].tolist() == image[0, :, 0, 0].round().tolist()  # corners aligned
    assert training_crf_scale(32, 16) == 2.0 and training_crf_scale(492, 41) == 12.0
    q = dense_crf(torch.zeros(1, 2, 3, 3), small, DenseCRFParams.sec_train())  # usable by the CRF
    assert q.shape == (1, 2, 3, 3)
