"""Closed-form gradients (Eqs. 5-12): autograd agrees with the corrected forms, not with the printed ones."""

from __future__ import annotations

import pytest
import torch

from thesislib.methods.gsoftmax import (
    GaussianLogitTransform,
    Phi,
    autograd_gradients,
    corrected_gradients,
    gsoftmax_cross_entropy,
    paper_gradients,
    paper_phi_partials,
)

DT = torch.float64


def _case(seed: int, batch: int = 6, m: int = 5):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, m, generator=gen, dtype=DT) * 2
    mu = torch.randn(m, generator=gen, dtype=DT) * 0.5
    sigma = torch.rand(m, generator=gen, dtype=DT) * 1.5 + 0.3
    y = torch.randint(0, m, (batch,), generator=gen)
    return x, y, mu, sigma


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_autograd_matches_corrected_closed_form(lam, reduction):
    x, y, mu, sigma = _case(0)
    auto = autograd_gradients(x, y, mu, sigma, lam, reduction)
    corr = corrected_gradients(x, y, mu, sigma, lam, reduction)
    for a, c in ((auto.x, corr.x), (auto.mu, corr.mu), (auto.sigma, corr.sigma)):
        assert a.shape == c.shape
        assert torch.allclose(a, c, atol=1e-13, rtol=1e-11)


def test_corrected_form_with_soft_and_unnormalised_targets():
    x, _, mu, sigma = _case(1)
    y = torch.rand(x.shape, generator=torch.Generator().manual_seed(5), dtype=DT) * 2  # sum_j y_j != 1
    auto = autograd_gradients(x, y, mu, sigma, 1.0)
    corr = corrected_gradients(x, y, mu, sigma, 1.0)
    assert torch.allclose(auto.x, corr.x, atol=1e-13)
    assert torch.allclose(auto.mu, corr.mu, atol=1e-13)
    assert torch.allclose(auto.sigma, corr.sigma, atol=1e-13)


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_printed_gradients_disagree_with_autograd(lam):
    x, y, mu, sigma = _case(2)
    auto = autograd_gradients(x, y, mu, sigma, lam)
    paper = paper_gradients(x, y, mu, sigma, lam)
    assert (auto.x - paper.x).abs().max() > 0.1
    assert (auto.mu - paper.mu).abs().max() > 1e-2
    assert (auto.sigma - paper.sigma).abs().max() > 1e-2
    # ... and they are exactly the corrected forms with z_i in place of p_i
    z = x + lam * Phi(x, mu, sigma)
    onehot = torch.nn.functional.one_hot(y, x.shape[1]).to(DT)
    assert torch.allclose(paper.x * x.shape[0], (z - onehot) * (1 + lam * torch.exp(-((x - mu) / sigma) ** 2 / 2)
                                                                / (sigma * (2 * torch.pi) ** 0.5)), atol=1e-12)


def test_lam_zero_gradient_is_softmax_minus_target_not_printed_form():
    x, y, mu, sigma = _case(3, batch=1)
    corr = corrected_gradients(x, y, mu, sigma, 0.0, "sum")
    onehot = torch.nn.functional.one_hot(y, x.shape[1]).to(DT)
    assert torch.allclose(corr.x, torch.softmax(x, -1) - onehot, atol=1e-15)
    assert torch.equal(corr.mu, torch.zeros_like(mu)) and torch.equal(corr.sigma, torch.zeros_like(sigma))
    assert torch.allclose(paper_gradients(x, y, mu, sigma, 0.0, "sum").x, x - onehot)   # printed: x - y


def test_printed_phi_partials_eqs_7_8_11_are_correct():
    x, _, mu, sigma = _case(4)
    xs, mus, sigmas = (t.clone().requires_grad_(True) for t in (x, mu, sigma))
    gx, gmu, gsigma = torch.autograd.grad(Phi(xs, mus, sigmas).sum(), (xs, mus, sigmas))
    d_mu, d_sigma, d_x = paper_phi_partials(x, mu, sigma)
    assert torch.allclose(d_x, gx, atol=1e-14)
    assert torch.allclose(d_mu.sum(0), gmu, atol=1e-13)
    assert torch.allclose(d_sigma.sum(0), gsigma, atol=1e-13)


@pytest.mark.parametrize("mode", ["exp", "softplus", "raw"])
def test_module_parameter_gradients_follow_the_chain_rule(mode):
    x, y, mu, sigma = _case(5)
    t = GaussianLogitTransform(x.shape[1], lam=1.0, mu_init=mu, sigma_init=sigma, sigma_param=mode).to(DT)
    gsoftmax_cross_entropy(x, y, t).backward()
    corr = corrected_gradients(x, y, t.mu.detach(), t.sigma.detach(), 1.0)
    dsigma_draw = {"exp": t.sigma.detach(), "softplus": torch.sigmoid(t.raw_scale.detach()),
                   "raw": torch.ones_like(sigma)}[mode]
    assert torch.allclose(t.loc.grad, corr.mu, atol=1e-13)
    assert torch.allclose(t.raw_scale.grad, corr.sigma * dsigma_draw, atol=1e-13)
