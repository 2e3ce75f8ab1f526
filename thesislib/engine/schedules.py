"""Learning-rate schedules as per-step multiplicative factors, for ``LambdaLR``.

Each schedule is a small frozen dataclass ``f`` with ``f(step) -> float``, where ``step``
counts the optimiser steps taken so far (0 before the first). With
``torch.optim.lr_scheduler.LambdaLR(optimizer, f)`` stepped once per optimiser step the
learning rate is ``lr(step) = lr0 * f(step)``, ``lr0`` being the optimiser's initial LR.
Durations are in steps; :func:`epochs_to_steps` converts epoch counts, and
``build_schedule(name, steps_per_epoch=n, ...)`` reads every duration in epochs.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from thesislib.config import ConfigError, from_mapping, unknown_keys_message


def epochs_to_steps(epochs: int | Sequence[int], steps_per_epoch: int) -> int | tuple[int, ...]:
    """Epoch milestone(s) → step milestone(s): epoch ``e`` starts at step ``e * steps_per_epoch``."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if isinstance(epochs, int):
        return epochs * steps_per_epoch
    return tuple(int(e) * steps_per_epoch for e in epochs)


def _check_gamma(gamma: float, name: str) -> None:
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"{name}: gamma multiplies the LR and must be in (0, 1] "
                         f"(use gamma=0.1 to divide by 10), got {gamma}")


def _check_positive(value: int, name: str) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


class Schedule:
    """Base of the schedules: ``__call__(step)`` and conversion of durations from epochs."""

    _durations: ClassVar[tuple[str, ...]] = ()

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def per_epoch(self, steps_per_epoch: int) -> Schedule:
        """The same schedule with its durations, given in epochs, converted to steps."""
        changes = {name: epochs_to_steps(getattr(self, name), steps_per_epoch) for name in self._durations}
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Constant(Schedule):
    """``f(s) = 1``."""

    def __call__(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``f(s) = gamma ** floor(s / step_size)``. SEC: lr 1e-3, ``StepDecay(2000, 0.1)`` (÷10 every 2000 iters)."""

    step_size: int
    gamma: float = 0.1
    _durations: ClassVar[tuple[str, ...]] = ("step_size",)

    def __post_init__(self) -> None:
        _check_positive(self.step_size, "StepDecay.step_size")
        _check_gamma(self.gamma, "StepDecay")

    def __call__(self, step: int) -> float:
        return self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """``f(s) = gamma ** #{m in milestones : m <= s}``: the LR drops when step ``m`` is reached.

    WRN on CIFAR: ``MultiStep(epochs_to_steps((60, 120, 160), spe), 0.2)``, extended to 300
    epochs with milestones (60, 120, 160, 220, 260) (G-softmax note §7 item 14).
    """

    milestones: tuple[int, ...]
    gamma: float = 0.1
    _durations: ClassVar[tuple[str, ...]] = ("milestones",)

    def __post_init__(self) -> None:
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])) or any(m < 0 for m in self.milestones):
            raise ValueError(f"MultiStep.milestones must be non-negative and increasing, got {self.milestones}")
        _check_gamma(self.gamma, "MultiStep")

    def __call__(self, step: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, step)


@dataclass(frozen=True)
class Staircase(Schedule):
    """Explicit pieces ``((start_0=0, v_0), (start_1, v_1), ...)``: ``f(s) = v_k`` for ``start_k <= s < start_{k+1}``.

    DenseNet on CIFAR (G-softmax): 0.1 for epochs 1-149, 0.01 for 150-224, 0.001 after, i.e.
    with lr0 = 0.1 and durations in epochs ``Staircase(((0, 1.0), (149, 0.1), (224, 0.01)))``.
    """

    pieces: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        starts = [start for start, _ in self.pieces]
        if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"Staircase.pieces must start at step 0 with increasing starts, got {self.pieces}")

    def __call__(self, step: int) -> float:
        index = bisect.bisect_right([start for start, _ in self.pieces], step) - 1
        return float(self.pieces[max(index, 0)][1])

    def per_epoch(self, steps_per_epoch: int) -> Staircase:
        """The staircase with its piece starts, given in epochs, converted to steps."""
        return Staircase(tuple((start * steps_per_epoch, value) for start, value in self.pieces))


@dataclass(frozen=True)
class Poly(Schedule):
    """DeepLab's poly decay: ``f(s) = end + (1 - end) * (1 - min(s, T) / T) ** power``; 1 at s=0, ``end`` at s>=T."""

    total_steps: int
    power: float = 0.9
    end: float = 0.0
    _durations: ClassVar[tuple[str, ...]] = ("total_steps",)

    def __post_init__(self) -> None:
        _check_positive(self.total_steps, "Poly.total_steps")

    def __call__(self, step: int) -> float:
        remaining = 1.0 - min(step, self.total_steps) / self.total_steps
        return self.end + (1.0 - self.end) * remaining ** self.power


@dataclass(frozen=True)
class Cosine(Schedule):
    """Linear warmup from ``warmup_start`` to 1 over ``warmup_steps`` (W), then half a cosine from 1
    to ``end`` at ``total_steps`` (T):

    ``f(s) = end + (1 - end) * (1 + cos(pi * t)) / 2`` with ``t = (s - W) / (T - W)`` clipped to [0, 1].
    LCI (Jenni Ch. 4): 3e-4 decayed to 3e-7 by cosine annealing is ``Cosine(T, end=1e-3)``.
    """

    total_steps: int
    warmup_steps: int = 0
    end: float = 0.0
    warmup_start: float = 0.0
    _durations: ClassVar[tuple[str, ...]] = ("total_steps", "warmup_steps")

    def __post_init__(self) -> None:
        _check_positive(self.total_steps, "Cosine.total_steps")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"Cosine.warmup_steps must be in [0, total_steps), got {self.warmup_steps}")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
        t = min(step - self.warmup_steps, self.total_steps - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.end + (1.0 - self.end) * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass(frozen=True)
class Linear(Schedule):
    """``f(s) = start + (end - start) * min(s, T) / T``.

    Spotting artifacts (Jenni Ch. 3): 3e-4 decayed linearly to 3e-6 is ``Linear(T, end=0.01)``.
    """

    total_steps: int
    end: float = 0.0
    start: float = 1.0
    _durations: ClassVar[tuple[str, ...]] = ("total_steps",)

    def __post_init__(self) -> None:
        _check_positive(self.total_steps, "Linear.total_steps")

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * min(step, self.total_steps) / self.total_steps


@dataclass(frozen=True)
class Exponential(Schedule):
    """``f(s) = gamma ** floor(s / every)``.

    PixelCNN with auxiliary variables: ``Exponential(0.99999)`` (decay after each iteration);
    ×0.95 after every epoch: ``Exponential(0.95, every=steps_per_epoch)``.
    """

    gamma: float
    every: int = 1
    _durations: ClassVar[tuple[str, ...]] = ("every",)

    def __post_init__(self) -> None:
        _check_positive(self.every, "Exponential.every")
        _check_gamma(self.gamma, "Exponential")

    def __call__(self, step: int) -> float:
        return self.gamma ** (step // self.every)


@dataclass(frozen=True)
class Malleable(Schedule):
    """The piecewise log-linear "malleable" LR of G-softmax Eq. 17, as corrected in the study note (§7 item 5).

    ``pieces = ((L_1, a_1, b_1), (L_2, a_2, b_2), ...)``: piece ``k`` lasts ``L_k`` epochs and over
    them the exponent moves linearly from ``a_k`` (its first epoch) to ``b_k`` (its last):
    ``f = base ** (a_k + (b_k - a_k) * j / (L_k - 1))`` in epoch ``j = 0..L_k-1`` of the piece,
    constant within an epoch; after the last piece ``f = base ** b_last``. The paper's *WRN
    run is the default: 1000 epochs from 10^0 to 10^-8, then 100 epochs from 10^-8 to 10^-9.
    """

    pieces: tuple[tuple[int, float, float], ...] = ((1000, 0.0, -8.0), (100, -8.0, -9.0))
    base: float = 10.0
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        _check_positive(self.steps_per_epoch, "Malleable.steps_per_epoch")
        if not self.pieces:
            raise ValueError("Malleable.pieces must not be empty")
        for length, a, b in self.pieces:
            if length < 1 or (length == 1 and a != b):
                raise ValueError(f"Malleable piece {(length, a, b)}: a piece from a to b != a needs >= 2 epochs")
        if not self.base > 0:
            raise ValueError(f"Malleable.base must be positive, got {self.base}")

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        start = 0
        for length, a, b in self.pieces:
            if epoch < start + length:
                frac = (epoch - start) / (length - 1) if length > 1 else 0.0
                return self.base ** (a + (b - a) * frac)
            start += length
        return self.base ** self.pieces[-1][2]

    def per_epoch(self, steps_per_epoch: int) -> Malleable:
        """The schedule told how many steps an epoch has (its periods are in epochs)."""
        return dataclasses.replace(self, steps_per_epoch=steps_per_epoch)


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant, "step": StepDecay, "multistep": MultiStep, "staircase": Staircase, "poly": Poly,
    "cosine": Cosine, "linear": Linear, "exponential": Exponential, "malleable": Malleable,
}


def build_schedule(name: str, *, steps_per_epoch: int | None = None, **params: object) -> Schedule:
    """Build a schedule by name from keyword parameters (e.g. from a YAML config).

    Unknown names and unknown parameters raise :class:`~thesislib.config.ConfigError` naming
    them and listing the valid ones. With ``steps_per_epoch`` every duration parameter is
    read in epochs and converted to steps.
    """
    if name not in SCHEDULES:
        raise ConfigError(unknown_keys_message([name], SCHEDULES, "schedule"))
    schedule = from_mapping(SCHEDULES[name], params, what=f"{name} schedule parameter")
    return schedule.per_epoch(steps_per_epoch) if steps_per_epoch is not None else schedule


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` applying ``schedule`` to every parameter group (step it once per optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
