"""Compactness, separability and their ratio (Sec. III-D, Eqs. 18-20) and their empirical use (Sec. V).

Definitions (for class c with Gaussian ``N(mu_c, sigma_c^2)``):

* compactness ``1 / sigma_c``;
* separability ``d_c`` (Eq. 19): the mean symmetrised KL divergence (Eq. 18) to the other Gaussians;
* separability-sigma ratio ``r_c = d_c / sigma_c`` (Eq. 20).

The paper uses them in two ways (study note 002, sections 2.9 and 7.7), both implemented here:

1. **Learned** (Sec. III-D): the G-softmax parameters ``(mu_c, sigma_c)`` of every class, Eq. 19
   over all pairs of classes (:func:`learned_measures`).
2. **Empirical** (Sec. V, every figure): fit a Gaussian ``P`` to the class's positive logits and
   a Gaussian ``N`` to its negative ("imposter") logits, then compactness ``1 / sigma_P``,
   separability ``1/2 [KL(P||N) + KL(N||P)]`` (Eq. 19 with two distributions) and ratio
   ``separability / sigma_P``. Single-label (:func:`empirical_measures`): for the images of class
   c, ``P`` is fitted to their true-class logits ``x_c`` and ``N`` to their pooled logits ``x_j``,
   ``j != c``. Multi-label (:func:`empirical_measures_multilabel`; the paper leaves the sets
   unspecified, this is the note's recommended choice): ``P`` is fitted to ``x_c^+`` over the
   images with ``y_c = 1`` and ``N`` to ``x_c^+`` over the images with ``y_c = 0``, i.e. the two
   populations the class-c score must separate.

``1 / sigma`` changes with the scale of the logits, and G-softmax also shrinks that scale, so the
empirical measures come with the scale-free gap ``(mu_P - mu_N) / sigma_P``. Gaussians are fitted
by maximum likelihood (population std, ddof=0) unless ``unbiased=True``. A class without positive
or negative samples gets NaN; one with a single positive sample gets ``sigma = 0`` (compactness inf).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


def gaussian_kl(mu_i: Tensor, sigma_i: Tensor, mu_j: Tensor, sigma_j: Tensor) -> Tensor:
    """``KL(N_i || N_j) = log(sigma_j / sigma_i) + (sigma_i^2 + (mu_i - mu_j)^2) / (2 sigma_j^2) - 1/2`` (Eq. 18).

    All arguments broadcast against each other; sigmas must be positive.
    """
    return (torch.log(sigma_j / sigma_i) + (sigma_i**2 + (mu_i - mu_j) ** 2) / (2 * sigma_j**2) - 0.5)


def symmetric_kl(mu_i: Tensor, sigma_i: Tensor, mu_j: Tensor, sigma_j: Tensor) -> Tensor:
    """``1/2 [KL(N_i || N_j) + KL(N_j || N_i)]``, broadcasting as :func:`gaussian_kl`."""
    return 0.5 * (gaussian_kl(mu_i, sigma_i, mu_j, sigma_j) + gaussian_kl(mu_j, sigma_j, mu_i, sigma_i))


def separability(mu: Tensor, sigma: Tensor) -> Tensor:
    """``d_i = 1/(2(m-1)) sum_{j != i} [KL(N_i||N_j) + KL(N_j||N_i)]`` (Eq. 19). (m,), (m,) -> (m,), m >= 2."""
    m = mu.shape[-1]
    if m < 2:
        raise ValueError("separability needs at least two Gaussians")
    kl = gaussian_kl(mu[:, None], sigma[:, None], mu[None, :], sigma[None, :])     # (m, m), [i, j] = KL(i||j)
    sym = (kl + kl.T).fill_diagonal_(0.0)
    return sym.sum(-1) / (2 * (m - 1))


def compactness(sigma: Tensor) -> Tensor:
    """``1 / sigma`` (Sec. III-D), elementwise."""
    return 1.0 / sigma


def separability_sigma_ratio(sep: Tensor, sigma: Tensor) -> Tensor:
    """``r = separability x compactness = d / sigma`` (Eq. 20), elementwise."""
    return sep / sigma


@dataclass(frozen=True)
class LearnedMeasures:
    """Measures of the learned Gaussians, each (m,)."""

    compactness: Tensor
    separability: Tensor
    ratio: Tensor


def learned_measures(mu: Tensor, sigma: Tensor) -> LearnedMeasures:
    """Compactness, Eq. 19 separability over all class pairs, and Eq. 20 ratio from ``mu``, ``sigma`` (m,).

    For a multi-label head pass the positive Gaussians ``(mu[0::2], sigma[0::2])`` (see ``losses``).
    """
    mu, sigma = mu.detach(), sigma.detach()
    sep = separability(mu, sigma)
    return LearnedMeasures(compactness(sigma), sep, separability_sigma_ratio(sep, sigma))


@dataclass(frozen=True)
class EmpiricalMeasures:
    """Per-class empirical Gaussians and measures, every field (m,).

    ``n_pos``/``n_neg`` count the scalars each Gaussian was fitted to; ``gap`` is the scale-free
    ``(mu_pos - mu_neg) / sigma_pos``.
    """

    mu_pos: Tensor
    sigma_pos: Tensor
    mu_neg: Tensor
    sigma_neg: Tensor
    n_pos: Tensor
    n_neg: Tensor
    compactness: Tensor
    separability: Tensor
    ratio: Tensor
    gap: Tensor

    def summary(self) -> dict[str, float]:
        """Class averages (NaN classes ignored) of compactness, separability, ratio, gap, sigma_pos."""
        keys = ("compactness", "separability", "ratio", "gap", "sigma_pos")
        return {k: float(torch.nanmean(getattr(self, k).double())) for k in keys}

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON."""
        return {f.name: getattr(self, f.name).double().tolist() for f in fields(self)}


def _from_moments(mu_pos: Tensor, var_pos: Tensor, n_pos: Tensor, mu_neg: Tensor, var_neg: Tensor,
                  n_neg: Tensor) -> EmpiricalMeasures:
    sigma_pos, sigma_neg = var_pos.sqrt(), var_neg.sqrt()
    sep = symmetric_kl(mu_pos, sigma_pos, mu_neg, sigma_neg)
    return EmpiricalMeasures(mu_pos, sigma_pos, mu_neg, sigma_neg, n_pos, n_neg, compactness(sigma_pos), sep,
                             separability_sigma_ratio(sep, sigma_pos), (mu_pos - mu_neg) / sigma_pos)


def _variance(sum_sq_dev: Tensor, count: Tensor, unbiased: bool) -> Tensor:
    denom = count - 1 if unbiased else count
    return sum_sq_dev / denom.to(sum_sq_dev.dtype)


def empirical_measures(logits: Tensor, labels: Tensor, num_classes: int | None = None,
                       unbiased: bool = False) -> EmpiricalMeasures:
    """Single-label empirical measures per class (Sec. V, Figs. 5-7).

    Args:
        logits: pre-G-softmax logits ``x`` (N, m).
        labels: true classes (N,).
        num_classes: m (defaults to ``logits.shape[1]``).
    For class c, ``P`` is fitted to ``x[n, c]`` and ``N`` to ``x[n, j], j != c`` over the images
    ``n`` with ``labels[n] == c``. Computed in float64, two-pass, without loops over classes.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, m) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    m = num_classes or logits.shape[1]
    if logits.shape[1] != m:
        raise ValueError(f"logits have {logits.shape[1]} columns, expected {m}")
    x = logits.detach().double()
    labels = labels.long()
    is_true = torch.nn.functional.one_hot(labels, m).to(x.dtype)              # (N, m)
    true = (x * is_true).sum(1)                                                # (N,) x[n, labels[n]]
    imposter = 1.0 - is_true
    n_pos = torch.zeros(m, dtype=x.dtype, device=x.device).index_add_(0, labels, torch.ones_like(true))
    n_neg = n_pos * (m - 1)
    mu_pos = torch.zeros_like(n_pos).index_add_(0, labels, true) / n_pos
    mu_neg = torch.zeros_like(n_pos).index_add_(0, labels, (x * imposter).sum(1)) / n_neg
    dev_pos = (true - mu_pos[labels]) ** 2
    dev_neg = (((x - mu_neg[labels][:, None]) ** 2) * imposter).sum(1)
    var_pos = _variance(torch.zeros_like(n_pos).index_add_(0, labels, dev_pos), n_pos, unbiased)
    var_neg = _variance(torch.zeros_like(n_pos).index_add_(0, labels, dev_neg), n_neg, unbiased)
    return _from_moments(mu_pos, var_pos, n_pos, mu_neg, var_neg, n_neg)


def empirical_measures_multilabel(pos_logits: Tensor, targets: Tensor, unbiased: bool = False) -> EmpiricalMeasures:
    """Multi-label empirical measures per class (Figs. 4 and 8).

    Args:
        pos_logits: the positive logits ``x^+`` (N, m) (``split_pos_neg(logits_2m)[0]``; the plain
            logits for a one-logit-per-class head).
        targets: (N, m) in {0, 1}.
    For class c, ``P`` is fitted to ``x_c^+`` over images with ``y_c = 1``, ``N`` to ``x_c^+`` over
    images with ``y_c = 0`` (module docstring). Float64, vectorised over classes.
    """
    if pos_logits.ndim != 2 or targets.shape != pos_logits.shape:
        raise ValueError(f"expected logits and targets of the same shape (N, m), got "
                         f"{tuple(pos_logits.shape)} and {tuple(targets.shape)}")
    x = pos_logits.detach().double()
    pos = (targets > 0.5).to(x.dtype)
    neg = 1.0 - pos
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    mu_pos = (x * pos).sum(0) / n_pos
    mu_neg = (x * neg).sum(0) / n_neg
    var_pos = _variance((((x - mu_pos) ** 2) * pos).sum(0), n_pos, unbiased)
    var_neg = _variance((((x - mu_neg) ** 2) * neg).sum(0), n_neg, unbiased)
    return _from_moments(mu_pos, var_pos, n_pos, mu_neg, var_neg, n_neg)
