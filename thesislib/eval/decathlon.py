"""The Visual Decathlon score S (Rebuffi Ch. 3 eq. 1) and the tables' parameter account ("#par").

S = sum_d alpha_d · max(0, E_d^max - E_d)^gamma_d,  alpha_d = 1000 · (E_d^max)^(-gamma_d),

with E_d the top-1 test error of domain d (a fraction), gamma_d = 2 and E_d^max = 2 x the error of
the fully fine-tuned baseline (Ch. 3 §5.1), so a perfect domain scores 1000 and the fine-tuning
baseline 250 per domain (2500 over ten). S is only comparable between rows that share one E^max:
Ch. 4 keeps Ch. 3's fixed E^max, so its better-augmented fine-tuning scores 3096 there (seed line
905), and a row scored with another run's E^max is a different number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn


def e_max_from_baseline(baseline_errors: Mapping[str, float], factor: float = 2.0) -> dict[str, float]:
    """E_d^max = ``factor`` x the baseline's error per domain (errors as fractions in [0, 1]).

    A domain the baseline classifies perfectly would give E^max = 0 and no score at all; that is a
    ValueError naming the domain (use more test data or another baseline)."""
    out = {}
    for d, e in baseline_errors.items():
        if not 0.0 <= e <= 1.0:
            raise ValueError(f"{d}: an error is a fraction in [0, 1], got {e}")
        if e == 0.0:
            raise ValueError(f"{d}: the baseline's error is 0, so E^max = 0 and S is undefined for that domain")
        out[d] = factor * float(e)
    return out


def decathlon_scores(errors: Mapping[str, float], e_max: Mapping[str, float], gamma: float = 2.0
                     ) -> dict[str, float]:
    """Per-domain terms alpha_d · max(0, E^max_d - E_d)^gamma (each in [0, 1000]) of eq. 1.

    ``errors`` and ``e_max`` map domain names to fractions; every domain of ``errors`` needs an
    E^max (a KeyError names the missing ones)."""
    missing = [d for d in errors if d not in e_max]
    if missing:
        raise KeyError(f"no E^max for domain(s) {missing}")
    out = {}
    for d, e in errors.items():
        m = float(e_max[d])
        if m <= 0:
            raise ValueError(f"{d}: E^max must be positive, got {m}")
        out[d] = 1000.0 * m ** (-gamma) * max(0.0, m - float(e)) ** gamma
    return out


def decathlon_score(errors: Mapping[str, float], e_max: Mapping[str, float], gamma: float = 2.0) -> float:
    """S of eq. 1: the sum of :func:`decathlon_scores` over the domains of ``errors``."""
    return float(sum(decathlon_scores(errors, e_max, gamma).values()))


def count_parameters(params: Sequence[nn.Parameter] | nn.Module) -> int:
    """Number of scalar parameters (a module's, or of a list of parameters, each counted once)."""
    ps = params.parameters() if isinstance(params, nn.Module) else params
    seen: dict[int, int] = {}
    for p in ps:
        seen[id(p)] = p.numel()
    return sum(seen.values())


@dataclass(frozen=True)
class ParameterAccount:
    """The parameters a method needs for a source domain plus T target domains.

    ``source``: the pre-trained network (with its adapters, if any); ``trainable``: what each
    target domain trains and must store (a fine-tuned or scratch domain stores a whole network);
    ``base``: one plain network, the unit of the tables' "#par" column."""

    method: str
    source: int
    trainable: tuple[int, ...]
    base: int

    @property
    def total(self) -> int:
        """source + sum of the per-domain trainable parameters."""
        return self.source + sum(self.trainable)

    @property
    def relative(self) -> float:
        """total / base: the tables' "#par" (10x for fine-tuning on 10 domains, ~2x for adapters)."""
        return self.total / self.base

    def row(self) -> list[object]:
        """``method | trainable per domain (mean) | total | #par`` for a table."""
        mean = sum(self.trainable) / max(1, len(self.trainable))
        return [self.method, int(round(mean)), self.total, f"{self.relative:.2f}x"]


ACCOUNT_HEADERS = ["method", "trainable / domain", "total (source + domains)", "#par"]
