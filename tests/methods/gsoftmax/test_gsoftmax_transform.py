"""GaussianLogitTransform (Eqs. 3-4): values, parametrisations, lam = 0 == softmax, parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm

from thesislib.methods.gsoftmax import (
    GaussianLogitTransform,
    Phi,
    gsoftmax_cross_entropy,
    gsoftmax_param_groups,
    gsoftmax_predict,
    phi,
)


def test_phi_helpers_match_scipy_and_eq4_literal():
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)
    mu, sigma = 0.3, 1.7
    assert torch.allclose(Phi(x, mu, sigma), torch.from_numpy(norm.cdf(x.numpy(), mu, sigma)), atol=1e-14)
    assert torch.allclose(phi(x, mu, sigma), torch.from_numpy(norm.pdf(x.numpy(), mu, sigma)), atol=1e-14)
    # Eq. 4 as printed: 1/2 erf(-sqrt2 (mu - x) / (2 sigma)) + 1/2, also for a negative raw sigma
    for s in (sigma, -sigma):
        literal = 0.5 * torch.erf(-math.sqrt(2) * (mu - x) / (2 * s)) + 0.5
        assert torch.allclose(Phi(x, mu, s), literal, atol=1e-15)


def test_phi_is_derivative_of_Phi():
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    mu, sigma = torch.tensor(0.4, dtype=torch.float64), torch.tensor(-0.8, dtype=torch.float64)  # raw sign too
    (grad,) = torch.autograd.grad(Phi(x, mu, sigma).sum(), x)
    assert torch.allclose(grad, phi(x.detach(), mu, sigma), atol=1e-14)


def test_forward_hand_computed():
    t = GaussianLogitTransform(3, lam=2.0, mu_init=[0.0, 1.0, 0.0], sigma_init=[1.0, 1.0, 0.5])
    x = torch.tensor([[0.0, 1.0, 1.0]])
    # Phi = [1/2, 1/2, Phi_std(2) = 0.97724987]
    expected = torch.tensor([[0.0 + 2 * 0.5, 1.0 + 2 * 0.5, 1.0 + 2 * 0.9772498680518208]])
    assert torch.allclose(t(x), expected, atol=1e-6)
    assert torch.allclose(t.distribution_term(x), torch.tensor([[0.5, 0.5, 0.9772498680518208]]), atol=1e-6)


@pytest.mark.parametrize("mode", ["exp", "softplus", "raw"])
def test_sigma_parametrisations_round_trip(mode):
    init = torch.tensor([0.5, 1.0, 5.0, 1e-3])
    t = GaussianLogitTransform(4, sigma_init=init, mu_init=[-0.1, 0.0, 0.1, 2.0], sigma_param=mode)
    assert torch.allclose(t.sigma, init, rtol=1e-5)
    assert torch.allclose(t.mu, torch.tensor([-0.1, 0.0, 0.1, 2.0]))
    t.set_gaussians(0.25, [2.0, 3.0, 0.1, 7.0])
    assert torch.allclose(t.sigma, torch.tensor([2.0, 3.0, 0.1, 7.0]), rtol=1e-5)
    assert torch.allclose(t.mu, torch.full((4,), 0.25))


def test_sigma_constraints():
    with pytest.raises(ValueError, match="sigma must be > 0"):
        GaussianLogitTransform(2, sigma_init=-1.0, sigma_param="exp")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        GaussianLogitTransform(2, sigma_init=0.0, sigma_param="softplus")
    raw = GaussianLogitTransform(2, sigma_init=-1.0, sigma_param="raw")      # paper-literal: allowed
    assert torch.equal(raw.sigma, torch.tensor([-1.0, -1.0]))
    with pytest.raises(ValueError, match="sigma_param"):
        GaussianLogitTransform(2, sigma_param="log")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        GaussianLogitTransform(3, mu_init=[0.0, 1.0])
    # positivity holds whatever the free parameter becomes
    t = GaussianLogitTransform(2, sigma_param="softplus")
    with torch.no_grad():
        t.raw_scale.fill_(-30.0)
    assert (t.sigma > 0).all()


def test_shape_check():
    t = GaussianLogitTransform(5)
    with pytest.raises(ValueError, match="last dimension 5"):
        t(torch.zeros(2, 4))


@pytest.mark.parametrize("target_kind", ["index", "soft"])
def test_lam_zero_is_bitwise_softmax_cross_entropy(target_kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 10, generator=gen) * 4
    if target_kind == "index":
        y = torch.randint(0, 10, (16,), generator=gen)
    else:
        y = torch.softmax(torch.randn(16, 10, generator=gen), -1)
    t = GaussianLogitTransform(10, lam=0.0, mu_init=torch.randn(10, generator=gen),
                               sigma_init=torch.rand(10, generator=gen) + 0.1)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    loss_g = gsoftmax_cross_entropy(xa, y, t)
    loss_s = F.cross_entropy(xb, y)
    assert torch.equal(loss_g, loss_s)
    loss_g.backward()
    loss_s.backward()
    assert torch.equal(xa.grad, xb.grad)
    assert torch.equal(t(x), x)
    assert torch.equal(gsoftmax_predict(x, t), x.argmax(-1))


def test_lam_positive_changes_loss_and_prediction_uses_z():
    t = GaussianLogitTransform(2, lam=1.0, mu_init=[5.0, 0.9], sigma_init=[1.0, 0.1])
    x = torch.tensor([[1.0, 0.9]])
    # z = [1 + Phi(-4) ~ 1.00003, 0.9 + 0.5 = 1.4]: the argmax flips from class 0 to class 1
    assert gsoftmax_predict(x, None).item() == 0
    assert gsoftmax_predict(x, t).item() == 1
    y = torch.tensor([0])
    assert not torch.isclose(gsoftmax_cross_entropy(x, y, t), F.cross_entropy(x, y))


def test_gradients_reach_mu_and_sigma_and_freeze():
    t = GaussianLogitTransform(4, lam=1.0)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    gsoftmax_cross_entropy(x, torch.arange(8) % 4, t).backward()
    assert t.loc.grad is not None and t.loc.grad.abs().sum() > 0
    assert t.raw_scale.grad is not None and t.raw_scale.grad.abs().sum() > 0
    frozen = GaussianLogitTransform(4, learn=False)
    assert not frozen.learn and not any(p.requires_grad for p in frozen.parameters())
    assert "loc" in frozen.state_dict() and "lam" in frozen.state_dict()


def test_init_from_logits():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(500, 3, generator=gen) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([0.0, -1.0, 3.0])
    t = GaussianLogitTransform(3, sigma_param="softplus")
    t.init_from_logits(logits)
    assert torch.allclose(t.mu, logits.mean(0), atol=1e-5)
    assert torch.allclose(t.sigma, logits.std(0, unbiased=False), rtol=1e-5)


def test_param_groups_exclude_gaussians_from_weight_decay():
    torch.manual_seed(0)
    t = GaussianLogitTransform(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), t)
    groups = gsoftmax_param_groups(model, weight_decay=0.1, gaussian_lr=0.5)
    assert len(groups) == 2
    assert groups[0]["weight_decay"] == 0.1 and len(groups[0]["params"]) == 2
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["lr"] == 0.5
    assert {id(p) for p in groups[1]["params"]} == {id(t.loc), id(t.raw_scale)}
    # a step whose loss gradient is zero: decay moves the Linear weights, never mu/sigma
    opt = torch.optim.SGD(groups, lr=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    (0.0 * model(torch.randn(2, 4)).sum()).backward()
    opt.step()
    after = list(model.parameters())
    assert not torch.equal(before[0], after[0])                    # Linear weight decayed
    assert torch.equal(before[2], after[2]) and torch.equal(before[3], after[3])  # loc, raw_scale
    # several modules, shared parameters counted once, frozen transform left out
    frozen = GaussianLogitTransform(3, learn=False)
    groups = gsoftmax_param_groups([model, t, frozen], weight_decay=1e-4)
    assert sum(len(g["params"]) for g in groups) == 4


def test_bf16_autocast_cpu_output_is_float32():
    t = GaussianLogitTransform(6, lam=1.0)
    lin = torch.nn.Linear(4, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = t(lin(torch.randn(3, 4)))
        loss = gsoftmax_cross_entropy(lin(torch.randn(3, 4)), torch.tensor([0, 1, 2]), t)
    assert z.dtype == torch.float32 and torch.isfinite(z).all() and torch.isfinite(loss)
