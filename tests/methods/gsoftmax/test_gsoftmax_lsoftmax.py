"""L-softmax baseline: cos(m theta), psi continuity and monotonicity, m = 1 is the plain layer, annealing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from thesislib.methods.gsoftmax import BetaSchedule, LargeMarginLinear, cos_m_theta, psi
from thesislib.methods.gsoftmax.lsoftmax import margin_k

DT = torch.float64


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_chebyshev_expansion_is_cos_m_theta(m):
    theta = torch.linspace(0, math.pi, 181, dtype=DT)
    assert torch.allclose(cos_m_theta(torch.cos(theta), m), torch.cos(m * theta), atol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_psi_piecewise_definition_continuity_and_monotonicity(m):
    theta = torch.linspace(0, math.pi, 2001, dtype=DT)
    values = psi(torch.cos(theta), m)
    k = torch.clamp(torch.floor(theta * m / math.pi), max=m - 1)
    inner = ~torch.isclose(theta * m / math.pi, torch.round(theta * m / math.pi))   # away from the joins
    assert torch.equal(margin_k(torch.cos(theta), m)[inner], k[inner])
    assert torch.allclose(values, (-1) ** k * torch.cos(m * theta) - 2 * k, atol=1e-10)
    assert (values.diff() < 0).all()                                  # strictly decreasing on [0, pi]
    assert math.isclose(values[0].item(), 1.0, abs_tol=1e-12)
    assert math.isclose(values[-1].item(), 1.0 - 2 * m, abs_tol=1e-9)  # psi(pi) = 1 - 2m
    for j in range(1, m):                                             # continuous at theta = j pi / m
        left = psi(torch.cos(torch.tensor(j * math.pi / m - 1e-9, dtype=DT)), m)
        right = psi(torch.cos(torch.tensor(j * math.pi / m + 1e-9, dtype=DT)), m)
        assert abs(left.item() - right.item()) < 1e-6
    assert (values <= torch.cos(theta) + 1e-12).all()                 # the margin makes the target harder


def test_m1_gives_plain_linear_logits():
    torch.manual_seed(0)
    layer = LargeMarginLinear(8, 5, margin=1).train()
    x = torch.randn(16, 8)
    y = torch.randint(0, 5, (16,))
    plain = F.linear(x, layer.weight)
    assert torch.allclose(layer(x, y), plain, atol=1e-5)
    assert torch.allclose(layer(x, y, beta=0.0), plain, atol=1e-5)
    assert torch.equal(layer(x), plain)


def test_hand_computed_m2():
    layer = LargeMarginLinear(2, 2, margin=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0]])
    # class 0: theta = 45 deg, cos(2 theta) = 0, k = 0 -> margin logit 0 (plain logit 1); class 1 untouched (0)
    assert torch.allclose(layer(x, torch.tensor([0]), beta=0.0), torch.tensor([[0.0, 0.0]]), atol=1e-6)
    assert torch.allclose(layer(x, torch.tensor([0]), beta=1.0), torch.tensor([[0.5, 0.0]]), atol=1e-6)
    # class 1: theta = 90 deg, psi = -cos(pi) - 2 = -1, ||W_1|| ||x|| = 1
    assert torch.allclose(layer(x, torch.tensor([1]), beta=0.0), torch.tensor([[1.0, -1.0]]), atol=1e-6)


def test_beta_schedule_and_counter():
    sched = BetaSchedule(base=1000.0, gamma=2e-5, power=45.0, minimum=0.0)
    assert math.isclose(sched(1), 1000.0 * (1 + 2e-5) ** -45)
    assert sched(0) == 1000.0 and sched(10_000) < sched(1_000) < sched(1)
    assert BetaSchedule(minimum=5.0)(10**9) == 5.0
    assert torch.isclose(sched(torch.tensor(1000)), torch.tensor(sched(1000), dtype=DT))
    layer = LargeMarginLinear(4, 3)
    x, y = torch.randn(2, 4), torch.tensor([0, 2])
    layer.train()
    layer(x, y)
    layer(x, y)
    assert layer.step.item() == 2
    layer(x, y, beta=0.5)             # explicit beta: counter unchanged
    layer.eval()
    layer(x, y)                       # evaluation with targets: counter unchanged
    layer(x)
    assert layer.step.item() == 2
    assert math.isclose(layer.current_beta().item(), sched(2), rel_tol=1e-12)
    assert "step" in layer.state_dict()


def test_gradients_finite_and_autocast():
    torch.manual_seed(1)
    layer = LargeMarginLinear(6, 4, margin=4).train()
    x = torch.randn(32, 6, requires_grad=True)
    y = torch.randint(0, 4, (32,))
    loss = F.cross_entropy(layer(x, y, beta=0.0), y)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(x.grad).all()
    # a feature exactly aligned with its class weight (cos = 1) is handled
    aligned = layer.weight.detach()[:1].clone().requires_grad_(True)
    F.cross_entropy(layer(aligned, torch.tensor([0]), beta=0.0), torch.tensor([0])).backward()
    assert torch.isfinite(aligned.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.detach(), y)
    assert out.dtype == torch.float32
    with pytest.raises(ValueError):
        LargeMarginLinear(4, 3, margin=0)
