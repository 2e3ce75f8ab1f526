"""DMOL and categorical likelihoods: normalisation, hand cases, edge bins, coupling, samplers vs pmf, MAP."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from thesislib.nn.pixelcnn import (
    categorical_log_prob,
    categorical_sample,
    dmol_log_prob,
    dmol_params_count,
    dmol_sample,
    to_index,
    to_unit,
)
from thesislib.nn.pixelcnn.likelihood import coupled_means


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def joint_pmf(out, channels, n_mix, bins):
    """p over all bins**C values at one pixel, enumerated; out (1, P, 1, 1) -> (bins**C,), values."""
    values = to_unit(torch.arange(bins), bins)
    combos = list(itertools.product(range(bins), repeat=channels))
    x = torch.stack([values[list(c)] for c in combos]).view(len(combos), channels, 1, 1)
    lp = dmol_log_prob(x, out.expand(len(combos), -1, -1, -1), channels, n_mix, bins)
    return lp.exp().flatten(), combos


def test_params_count():
    assert dmol_params_count(3, 10) == 100
    assert dmol_params_count(2, 10) == 60
    assert dmol_params_count(1, 5) == 15
    with pytest.raises(ValueError, match="channels"):
        dmol_params_count(4, 10)


@pytest.mark.parametrize("channels,bins", [(1, 4), (2, 4), (3, 3), (1, 256)])
def test_sums_to_one_over_all_bins(channels, bins):
    torch.manual_seed(channels)
    out = torch.randn(1, dmol_params_count(channels, 3), 1, 1) * 2
    pmf, _ = joint_pmf(out, channels, 3, bins)
    assert abs(pmf.sum().item() - 1.0) < 1e-5


def test_extreme_parameters_stay_normalised_and_finite():
    for mean, log_scale in [(5.0, -7.0), (-5.0, -7.0), (0.0, -7.0), (0.3, 4.0), (1 - 1 / 255, -7.0)]:
        out = torch.tensor([0.0, mean, log_scale]).view(1, 3, 1, 1)
        pmf, _ = joint_pmf(out, 1, 1, 256)
        assert torch.isfinite(pmf.log()).sum() > 0 and abs(pmf.sum().item() - 1) < 1e-4


def test_single_logistic_hand_case_and_edge_bins():
    mu, s = 0.1, 0.2
    out = torch.tensor([0.7, mu, math.log(s)]).view(1, 3, 1, 1)
    d = 1 / 255
    for k, expected in [
        (130, sig((to_unit(torch.tensor(130), 256).item() + d - mu) / s)
         - sig((to_unit(torch.tensor(130), 256).item() - d - mu) / s)),
        (0, sig((-1 + d - mu) / s)),
        (255, 1 - sig((1 - d - mu) / s)),
    ]:
        x = to_unit(torch.tensor(k), 256).view(1, 1, 1, 1)
        got = dmol_log_prob(x, out, 1, 1, 256).exp().item()
        assert got == pytest.approx(expected, rel=1e-5)


def test_coupling_hand_case_and_only_on_earlier_channels():
    # C = 2 (chroma), one component: mu_b = mu'_b + tanh(c) x_a
    out = torch.tensor([0.0, 0.2, -0.3, math.log(0.1), math.log(0.3), math.atanh(0.5)]).view(1, 6, 1, 1)
    x = torch.tensor([0.6, -0.2]).view(1, 2, 1, 1)
    got = dmol_log_prob(x, out, 2, 1, 4).item()
    d = 1 / 3
    pa = sig((0.6 + d - 0.2) / 0.1) - sig((0.6 - d - 0.2) / 0.1)
    mb = -0.3 + 0.5 * 0.6
    pb = sig((-0.2 + d - mb) / 0.3) - sig((-0.2 - d - mb) / 0.3)
    # x values are not bin centres of 4 bins here on purpose: the formula is the one of the docstring
    assert got == pytest.approx(math.log(pa * pb), rel=1e-5)
    means = torch.randn(1, 3, 4, 2, 2)
    coeffs = torch.randn(1, 3, 4, 2, 2)
    xs = torch.randn(1, 3, 2, 2, requires_grad=True)
    mu = coupled_means(means, coeffs, xs)
    for c in range(3):
        (g,) = torch.autograd.grad(mu[:, c].sum(), xs, retain_graph=True)
        assert (g[:, c:] == 0).all() and (c == 0 or (g[:, :c] != 0).all())


def chi_square(counts, probs):
    n = counts.sum()
    expected = probs * n
    keep = expected > 5
    return (((counts - expected) ** 2 / expected)[keep]).sum().item(), int(keep.sum()) - 1


@pytest.mark.parametrize("variance_reduction", [0.0, 0.5])
def test_dmol_sampler_matches_pmf(variance_reduction):
    torch.manual_seed(3)
    channels, n_mix, bins, n = 2, 2, 4, 40000
    out = torch.randn(1, dmol_params_count(channels, n_mix), 1, 1)
    out[:, n_mix + channels * n_mix: n_mix + 2 * channels * n_mix] = -0.5          # log-scales
    target = out.clone()
    target[:, n_mix + channels * n_mix: n_mix + 2 * channels * n_mix] -= variance_reduction
    pmf, combos = joint_pmf(target, channels, n_mix, bins)
    x = dmol_sample(out.expand(n, -1, -1, -1), channels, n_mix, torch.Generator().manual_seed(0),
                    variance_reduction=variance_reduction, bins=bins)
    idx = to_index(x, bins)[:, :, 0, 0]
    flat = idx[:, 0] * bins + idx[:, 1]
    counts = torch.bincount(flat, minlength=bins ** channels).double()
    stat, dof = chi_square(counts, pmf.double())
    assert stat < 37.7 and dof >= 8                     # chi-square 99.9% quantile at 15 dof is 37.7
    assert torch.equal(x, to_unit(to_index(x, bins), bins))   # samples lie on the bin centres


def test_map_is_the_mode():
    torch.manual_seed(5)
    for _ in range(20):
        out = torch.randn(1, 3, 1, 1) * torch.tensor([1.0, 1.0, 1.5]).view(1, 3, 1, 1)
        pmf, _ = joint_pmf(out, 1, 1, 8)
        x = dmol_sample(out, 1, 1, torch.Generator().manual_seed(0), map=True, bins=8)
        assert to_index(x, 8).item() == pmf.argmax().item()
    # two channels, one dominant component: channel b is the mode given the MAP a
    out = torch.tensor([50.0, 0.0, 0.5, -0.9, -0.6, 0.0, -1.0, -1.0, -1.0, -1.0, math.atanh(0.8), 0.0])
    out = out.view(1, 12, 1, 1)
    x = dmol_sample(out, 2, 2, torch.Generator().manual_seed(0), map=True, bins=8)
    pmf, combos = joint_pmf(out, 2, 2, 8)
    a = to_index(x[:, 0], 8).item()
    cond = torch.tensor([p if c[0] == a else 0.0 for p, c in zip(pmf.tolist(), combos, strict=True)])
    assert a == torch.tensor([sum(p for p, c in zip(pmf.tolist(), combos, strict=True) if c[0] == k)
                              for k in range(8)]).argmax().item()
    assert combos[cond.argmax().item()][1] == to_index(x[:, 1], 8).item()


def test_categorical_log_prob_sample_and_map():
    torch.manual_seed(0)
    logits = torch.randn(1, 16, 1, 1) * 1.5
    probs = logits.softmax(1).flatten()
    x = to_unit(torch.tensor(7), 16).view(1, 1, 1, 1)
    assert categorical_log_prob(x, logits).item() == pytest.approx(probs[7].log().item(), rel=1e-6)
    s = categorical_sample(logits.expand(30000, -1, -1, -1), torch.Generator().manual_seed(1))
    counts = torch.bincount(to_index(s, 16).flatten(), minlength=16).double()
    stat, dof = chi_square(counts, probs.double())
    assert stat < 37.7 and dof >= 10
    assert to_index(categorical_sample(logits, map=True), 16).item() == probs.argmax().item()
    with pytest.raises(ValueError, match="x must have shape"):
        categorical_log_prob(torch.zeros(1, 2, 1, 1), logits)
