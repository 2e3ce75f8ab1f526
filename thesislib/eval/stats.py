"""Significance tests used by G-softmax §V (Tables V and VI), two-sided, via SciPy.

* :func:`paired_ttest`: paired-sample t-test, e.g. per-class APs of softmax vs a G-softmax
  variant (80 classes on COCO, 81 on NUS-WIDE); t = mean(d) / (sd(d) / sqrt(n)), d = a - b,
  sd with n - 1 degrees of freedom, p from Student's t with n - 1 d.o.f.
* :func:`pearson`: Pearson correlation rho and the p-value of H0 rho = 0 from
  t = rho sqrt((n - 2) / (1 - rho^2)) with n - 2 d.o.f. Table VI's p-values are reproduced with
  n = 5 (the five G-softmax variants; e.g. rho = 0.9472 -> p = 0.0144).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = Sequence[float] | np.ndarray | torch.Tensor


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector(a, "a"), _vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(x)} and {len(y)}")
    if len(x) < minimum:
        raise ValueError(f"need at least {minimum} pairs, got {len(x)}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("inputs contain NaN (e.g. AP of a class without positives): drop them first")
    return x, y


def paired_ttest(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Two-sided paired t-test of mean(a - b) = 0: returns (t, p). Needs n >= 2 pairs."""
    from scipy import stats

    x, y = _pair(a, b, 2)
    result = stats.ttest_rel(x, y)
    return float(result.statistic), float(result.pvalue)


def pearson(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Pearson correlation with its two-sided p-value: returns (rho, p). Needs n >= 3."""
    from scipy import stats

    u, v = _pair(x, y, 3)
    result = stats.pearsonr(u, v)
    return float(result.statistic), float(result.pvalue)


def pearson_pvalue(rho: float, n: int) -> float:
    """Two-sided p-value of a sample correlation ``rho`` from ``n`` pairs (H0: rho = 0).

    Lets a reader check a reported (rho, p) pair: ``pearson_pvalue(0.9472, 5)`` = 0.0144.
    """
    from scipy import stats

    if n < 3:
        raise ValueError("need n >= 3")
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [-1, 1], got {rho}")
    if abs(rho) == 1.0:
        return 0.0
    t = abs(rho) * math.sqrt((n - 2) / (1.0 - rho * rho))
    return float(2.0 * stats.t.sf(t, n - 2))
