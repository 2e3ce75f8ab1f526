"""Compactness, separability and ratio (Eqs. 18-20), learned and empirical."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm

from thesislib.methods.gsoftmax import (
    compactness,
    empirical_measures,
    empirical_measures_multilabel,
    gaussian_kl,
    learned_measures,
    separability,
    separability_sigma_ratio,
    symmetric_kl,
)

DT = torch.float64


def t(*values):
    return torch.tensor(values, dtype=DT)


def test_kl_of_identical_gaussians_is_zero_and_kl_is_nonnegative():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(50, generator=gen, dtype=DT) * 3
    s = torch.rand(50, generator=gen, dtype=DT) * 4 + 0.05
    assert torch.equal(gaussian_kl(mu, s, mu, s), torch.zeros_like(mu))
    kl = gaussian_kl(mu[:, None], s[:, None], mu[None], s[None])
    assert (kl >= -1e-15).all()


@pytest.mark.parametrize("mu_i,s_i,mu_j,s_j", [(0.0, 1.0, 1.0, 1.0), (0.3, 0.5, -1.2, 2.0), (2.0, 3.0, 0.0, 0.7)])
def test_eq18_matches_numerical_integration(mu_i, s_i, mu_j, s_j):
    def integrand(x):
        return norm.pdf(x, mu_i, s_i) * (norm.logpdf(x, mu_i, s_i) - norm.logpdf(x, mu_j, s_j))

    numeric, _ = integrate.quad(integrand, mu_i - 40 * s_i, mu_i + 40 * s_i, limit=200)
    closed = gaussian_kl(t(mu_i), t(s_i), t(mu_j), t(s_j)).item()
    assert math.isclose(closed, numeric, rel_tol=1e-8, abs_tol=1e-12)


def test_separability_hand_computed_three_classes():
    # equal sigma = 1: KL(i||j) = KL(j||i) = (mu_i - mu_j)^2 / 2, so d_i = sum_j (mu_i - mu_j)^2 / (2 (m - 1))
    d = separability(t(0.0, 1.0, 3.0), t(1.0, 1.0, 1.0))
    assert torch.allclose(d, t((1 + 9) / 4, (1 + 4) / 4, (9 + 4) / 4), atol=1e-15)   # 2.5, 1.25, 3.25


def test_separability_hand_computed_unequal_sigma():
    # N(0, 1) vs N(0, 4): KL = log 2 + 1/8 - 1/2 and -log 2 + 2 - 1/2, sum 1.125, d = 1.125 / 2
    d = separability(t(0.0, 0.0), t(1.0, 2.0))
    assert torch.allclose(d, t(0.5625, 0.5625), atol=1e-15)
    assert torch.allclose(symmetric_kl(t(0.0), t(1.0), t(0.0), t(2.0)), t(0.5625), atol=1e-15)


def test_separability_matches_pairwise_loop():
    gen = torch.Generator().manual_seed(1)
    mu = torch.randn(7, generator=gen, dtype=DT)
    s = torch.rand(7, generator=gen, dtype=DT) + 0.2
    ref = [sum(gaussian_kl(mu[i], s[i], mu[j], s[j]) + gaussian_kl(mu[j], s[j], mu[i], s[i])
               for j in range(7) if j != i) / 12 for i in range(7)]
    assert torch.allclose(separability(mu, s), torch.stack(ref), atol=1e-13)
    with pytest.raises(ValueError):
        separability(t(0.0), t(1.0))


def test_learned_measures():
    mu, s = t(0.0, 1.0, 3.0), t(0.5, 1.0, 2.0)
    m = learned_measures(mu, s)
    assert torch.allclose(m.compactness, t(2.0, 1.0, 0.5))
    assert torch.allclose(m.separability, separability(mu, s))
    assert torch.allclose(m.ratio, m.separability / s)
    assert torch.allclose(separability_sigma_ratio(m.separability, s), m.separability * compactness(s))


def _single_label_sample(n_per_class: int, seed: int):
    """Images of class c: true logit ~ N(a_c, b_c), every imposter logit ~ N(u_c, v_c)."""
    rng = np.random.default_rng(seed)
    m = 4
    a, b = np.array([5.0, 3.0, 8.0, 4.0]), np.array([1.0, 0.5, 2.0, 1.5])
    u, v = np.array([-1.0, 0.0, -2.0, -0.5]), np.array([1.0, 2.0, 0.7, 1.2])
    labels = np.repeat(np.arange(m), n_per_class)
    rng.shuffle(labels)
    x = rng.normal(u[labels][:, None], v[labels][:, None], size=(labels.size, m))
    x[np.arange(labels.size), labels] = rng.normal(a[labels], b[labels])
    return torch.from_numpy(x), torch.from_numpy(labels), (a, b, u, v)


def test_empirical_single_label_recovers_known_gaussians():
    x, labels, (a, b, u, v) = _single_label_sample(4000, seed=2)
    e = empirical_measures(x.float(), labels)
    assert torch.allclose(e.mu_pos, torch.from_numpy(a), atol=0.1)
    assert torch.allclose(e.sigma_pos, torch.from_numpy(b), rtol=0.04)
    assert torch.allclose(e.mu_neg, torch.from_numpy(u), atol=0.1)
    assert torch.allclose(e.sigma_neg, torch.from_numpy(v), rtol=0.04)
    assert torch.equal(e.n_pos, torch.full((4,), 4000.0, dtype=DT))
    assert torch.equal(e.n_neg, torch.full((4,), 12000.0, dtype=DT))
    true_sep = symmetric_kl(*(torch.from_numpy(arr) for arr in (a, b, u, v)))
    assert torch.allclose(e.separability, true_sep, rtol=0.1)
    assert torch.allclose(e.compactness, torch.from_numpy(1 / b), rtol=0.04)
    assert torch.allclose(e.ratio, true_sep / torch.from_numpy(b), rtol=0.15)
    assert torch.allclose(e.gap, torch.from_numpy((a - u) / b), rtol=0.05)
    summary = e.summary()
    assert set(summary) == {"compactness", "separability", "ratio", "gap", "sigma_pos"}
    assert math.isclose(summary["compactness"], float(e.compactness.mean()))


def test_empirical_single_label_matches_reference_loop():
    x, labels, _ = _single_label_sample(30, seed=3)
    e = empirical_measures(x, labels, unbiased=True)
    for c in range(4):
        rows = x[labels == c]
        pos = rows[:, c]
        neg = torch.cat([rows[:, j] for j in range(4) if j != c])
        assert math.isclose(e.mu_pos[c].item(), pos.mean().item(), rel_tol=1e-12)
        assert math.isclose(e.sigma_pos[c].item(), pos.std().item(), rel_tol=1e-12)
        assert math.isclose(e.mu_neg[c].item(), neg.mean().item(), rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(e.sigma_neg[c].item(), neg.std().item(), rel_tol=1e-12)
        sep = 0.5 * (gaussian_kl(pos.mean(), pos.std(), neg.mean(), neg.std())
                     + gaussian_kl(neg.mean(), neg.std(), pos.mean(), pos.std()))
        assert math.isclose(e.separability[c].item(), sep.item(), rel_tol=1e-10)
    biased = empirical_measures(x, labels)
    n = biased.n_pos
    assert torch.allclose(e.sigma_pos, biased.sigma_pos * torch.sqrt(n / (n - 1)))


def test_empirical_single_label_absent_class_is_nan():
    x = torch.randn(6, 3, dtype=DT)
    e = empirical_measures(x, torch.tensor([0, 0, 1, 1, 0, 1]))
    assert torch.isnan(e.mu_pos[2]) and torch.isnan(e.separability[2])
    assert torch.isfinite(e.separability[:2]).all()
    assert math.isfinite(e.summary()["separability"])


def test_empirical_multilabel_recovers_known_gaussians_and_loop():
    rng = np.random.default_rng(4)
    n, m = 20000, 3
    y = (rng.random((n, m)) < np.array([0.2, 0.5, 0.7])).astype(np.float64)
    a, b = np.array([3.0, 2.0, 1.0]), np.array([0.5, 1.0, 1.5])
    u, v = np.array([-2.0, -1.0, 0.0]), np.array([1.0, 0.8, 0.6])
    x = np.where(y > 0, rng.normal(a, b, (n, m)), rng.normal(u, v, (n, m)))
    e = empirical_measures_multilabel(torch.from_numpy(x), torch.from_numpy(y))
    assert torch.allclose(e.mu_pos, torch.from_numpy(a), atol=0.05)
    assert torch.allclose(e.sigma_pos, torch.from_numpy(b), rtol=0.04)
    assert torch.allclose(e.mu_neg, torch.from_numpy(u), atol=0.05)
    assert torch.allclose(e.sigma_neg, torch.from_numpy(v), rtol=0.04)
    assert torch.equal(e.n_pos, torch.from_numpy(y.sum(0)))
    true_sep = symmetric_kl(*(torch.from_numpy(arr) for arr in (a, b, u, v)))
    assert torch.allclose(e.separability, true_sep, rtol=0.1)
    for c in range(m):
        pos, neg = x[y[:, c] > 0, c], x[y[:, c] == 0, c]
        assert math.isclose(e.sigma_pos[c].item(), pos.std(), rel_tol=1e-10)
        assert math.isclose(e.mu_neg[c].item(), neg.mean(), rel_tol=1e-10)
    with pytest.raises(ValueError):
        empirical_measures_multilabel(torch.zeros(3, 2), torch.zeros(3, 3))
