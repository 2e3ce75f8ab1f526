"""Verdicts that carry their uncertainty: paired differences over replicates, with an interval.

A smoke-scale claim such as "SEC beats seed-only training" rests on a handful of replicates,
one per seed, each running both variants on the same data. :func:`paired_verdict` takes the
per-seed metric of each variant, forms the paired differences ``d_i = a_i - b_i`` and a
Student-t confidence interval for their mean,

    mean(d) +- t_{(1+c)/2, n-1} * sd(d) / sqrt(n),

and labels the comparison ``higher`` (interval above 0), ``lower`` (below 0) or
``no clear difference`` (contains 0). A claim states the label it expects; it *holds* when the
computed label matches. A claim may also expect ``not lower`` (a thesis result that is "preserved or
improved"): it holds when the label is ``higher`` or ``no clear difference``. Neither ``no clear
difference`` nor ``not lower`` is an equivalence test: holding means *not shown* different (lower),
not shown equal. With fewer than two replicates there is no interval and no claim holds.

Every chapter writes its verdicts into ``metrics.json`` under ``"verdicts"``
(:func:`verdicts_dict`); ``thesislib seeds`` reruns a chapter at other base seeds and counts at
how many each claim held (:mod:`thesislib.replication.seeds`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import stats

Expectation = Literal["higher", "lower", "no clear difference", "not lower"]
LABELS = ("higher", "lower", "no clear difference", "too few replicates")
#: what a claim may expect: a label, or ``not lower`` (``higher`` or ``no clear difference``)
EXPECTATIONS = ("higher", "lower", "no clear difference", "not lower")


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict. ``mean``/``low``/``high``: the mean paired difference and its interval
    (``None`` with fewer than two replicates); ``n``: replicates; ``holds``: label == expected."""

    id: str
    claim: str
    expected: str
    label: str
    holds: bool
    n: int
    mean: float | None
    low: float | None
    high: float | None
    confidence: float

    def interval_text(self, fmt: str = "+.2f") -> str:
        """``+1.23 [+0.40, +2.05]`` (or ``+1.23`` alone with one replicate)."""
        if self.mean is None:
            return "–"
        if self.low is None or self.high is None:
            return format(self.mean, fmt)
        return f"{format(self.mean, fmt)} [{format(self.low, fmt)}, {format(self.high, fmt)}]"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_verdict(id: str, claim: str, a: Sequence[float], b: Sequence[float] | float = 0.0,  # noqa: A002
                   expected: Expectation = "higher", confidence: float = 0.95) -> Verdict:
    """The verdict on ``a`` versus ``b`` paired by replicate (``b`` a number: one-sample test).

    ``a[i]`` and ``b[i]`` come from the same seed. Raises ``ValueError`` when the lengths differ
    or ``expected`` is not a label."""
    if expected not in EXPECTATIONS:
        raise ValueError(f"expected must be one of {EXPECTATIONS}, got {expected!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    a = [float(x) for x in a]
    b = [float(b)] * len(a) if isinstance(b, (int, float)) else [float(x) for x in b]
    if len(a) != len(b):
        raise ValueError(f"{id}: {len(a)} values against {len(b)}; the replicates must pair up")
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    if n == 0:
        return Verdict(id, claim, expected, "too few replicates", False, 0, None, None, None, confidence)
    mean = sum(diffs) / n
    if n < 2:
        return Verdict(id, claim, expected, "too few replicates", False, n, mean, None, None, confidence)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    label = "higher" if low > 0 else "lower" if high < 0 else "no clear difference"
    holds = label != "lower" if expected == "not lower" else label == expected
    return Verdict(id, claim, expected, label, holds, n, mean, low, high, confidence)


def verdicts_dict(verdicts: Iterable[Verdict]) -> dict[str, dict[str, Any]]:
    """``{id: verdict fields}`` for ``metrics.json``; duplicate ids are an error."""
    out: dict[str, dict[str, Any]] = {}
    for verdict in verdicts:
        if verdict.id in out:
            raise ValueError(f"two verdicts share the id {verdict.id!r}")
        out[verdict.id] = verdict.as_dict()
    return out


def verdict_rows(verdicts: Iterable[Verdict], fmt: str = "+.2f") -> list[list[Any]]:
    """Rows ``claim | mean difference [interval] | n | verdict | expected | holds`` for a table
    (headers: :data:`VERDICT_HEADERS`)."""
    return [[v.claim, v.interval_text(fmt), v.n, v.label, v.expected, "yes" if v.holds else "no"]
            for v in verdicts]


VERDICT_HEADERS = ("claim", "mean difference [interval]", "n", "verdict", "expected", "holds")
