"""LR schedules against hand-computed values; the factory rejects unknown names and keys."""

from __future__ import annotations

import math

import pytest
import torch

from thesislib.config import ConfigError
from thesislib.engine import (
    Constant,
    Cosine,
    Exponential,
    Linear,
    Malleable,
    MultiStep,
    Poly,
    Staircase,
    StepDecay,
    build_schedule,
    epochs_to_steps,
    make_scheduler,
)


def test_step_decay_sec_schedule() -> None:
    f = StepDecay(2000, 0.1)  # SEC: 1e-3, /10 every 2000 iterations
    assert [f(s) for s in (0, 1999, 2000, 3999, 4000, 7999)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.001])


def test_multistep_wrn_boundaries() -> None:
    spe = 10
    f = MultiStep(epochs_to_steps((60, 120, 160, 220, 260), spe), 0.2)
    assert f.milestones == (600, 1200, 1600, 2200, 2600)
    got = [f(s) for s in (0, 599, 600, 1199, 1200, 1599, 1600, 2599, 2600, 2999)]
    assert got == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04, 0.008, 0.0016, 0.00032, 0.00032])
    assert 0.1 * f(2999) == pytest.approx(3.2e-5)  # the note's final LR for the 300-epoch run


def test_multistep_through_lambda_lr() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler(opt, MultiStep((2, 4), 0.5))
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_staircase_pieces_in_epochs() -> None:
    f = build_schedule("staircase", pieces=[[0, 1.0], [149, 0.1], [224, 0.01]], steps_per_epoch=2)
    assert f.pieces == ((0, 1.0), (298, 0.1), (448, 0.01))
    assert [f(s) for s in (0, 297, 298, 447, 448, 10**6)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    with pytest.raises(ValueError, match="start at step 0"):
        Staircase(((5, 1.0),))


def test_poly_endpoints() -> None:
    f = Poly(100, power=0.9)
    assert f(0) == 1.0 and f(100) == 0.0 and f(150) == 0.0
    assert f(50) == pytest.approx(0.5 ** 0.9)
    assert Poly(100, end=0.01)(100) == pytest.approx(0.01)


def test_cosine_with_warmup() -> None:
    f = Cosine(110, warmup_steps=10)
    assert [f(s) for s in (0, 5, 10, 60, 110, 200)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0], abs=1e-12)
    assert Cosine(100, end=1e-3)(100) == pytest.approx(1e-3)
    assert Cosine(100)(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_linear_exponential_constant() -> None:
    f = Linear(100, end=0.01)
    assert [f(0), f(50), f(100), f(1000)] == pytest.approx([1, 0.505, 0.01, 0.01])
    assert Exponential(0.99999)(3) == pytest.approx(0.99999 ** 3)
    assert [Exponential(0.95, every=10)(s) for s in (9, 10, 25)] == pytest.approx([1, 0.95, 0.95 ** 2])
    assert Constant()(12345) == 1.0


def test_malleable_endpoints_are_base_powers() -> None:
    f = Malleable()  # G-softmax *WRN: (1000 epochs, 0 -> -8), (100 epochs, -8 -> -9), base 10
    assert f(0) == 1.0
    assert f(999) == pytest.approx(1e-8, rel=1e-12)  # last epoch of piece 1: base**b_1
    assert f(1000) == pytest.approx(1e-8, rel=1e-12)  # first epoch of piece 2: base**a_2
    assert f(1099) == pytest.approx(1e-9, rel=1e-12)  # last epoch of piece 2: base**b_2
    assert f(5000) == pytest.approx(1e-9, rel=1e-12)
    assert f(1033) == pytest.approx(10 ** (-8 - 33 / 99))  # log-linear inside a piece
    g = Malleable(pieces=((5, 0.0, -2.0),), base=math.e, steps_per_epoch=3)
    assert [g(s) for s in (0, 2, 3, 12, 14)] == pytest.approx([1, 1, math.exp(-0.5), math.exp(-2), math.exp(-2)])
    # with lr0 = 0.1 the boundaries are lr0 * base**a_k / base**b_k
    h = build_schedule("malleable", pieces=[[3, -1, -2], [2, -2, -4]], steps_per_epoch=4)
    assert [0.1 * h(s) for s in (0, 11, 12, 19)] == pytest.approx([1e-2, 1e-3, 1e-3, 1e-5])


def test_build_schedule_rejects_unknown_names_and_keys() -> None:
    with pytest.raises(ConfigError, match="'cosinus'.*cosine.*multistep"):
        build_schedule("cosinus", total_steps=10)
    with pytest.raises(ConfigError, match="'total'.*total_steps"):
        build_schedule("poly", total=10)
    f = build_schedule("multistep", milestones=["60", 120], gamma=0.2, steps_per_epoch=10)
    assert f == MultiStep((600, 1200), 0.2)


def test_gamma_must_multiply() -> None:
    with pytest.raises(ValueError, match="gamma=0.1 to divide by 10"):
        StepDecay(2000, 10.0)
    with pytest.raises(ValueError, match="increasing"):
        MultiStep((120, 60))
