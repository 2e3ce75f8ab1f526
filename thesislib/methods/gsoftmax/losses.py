"""G-softmax losses: single-label cross-entropy (Eq. 13) and the multi-label losses (Eqs. 14-16).

Multi-label head layout
-----------------------
A multi-label G-softmax head has two logits per class, ``x_i^+`` ("class i present") and ``x_i^-``
("class i absent"), so ``2m`` outputs in all. They are interleaved: ``logits_2m.view(B, m, 2)``
gives ``[..., 0] = x^+`` and ``[..., 1] = x^-`` (output ``2i`` is ``x_i^+``, ``2i + 1`` is
``x_i^-``), which is also the order of the ``mu``/``sigma`` entries of a
``GaussianLogitTransform(2m)`` applied to the flat logits.

Which multi-label loss (study note 002, section 7.3)
----------------------------------------------------
Eq. 15 (the paper's "softmax" baseline) and Eq. 16 (its G-softmax version) disagree on what
``x^-`` means: Eq. 15 trains ``sigma(x^-)`` towards 1 on negatives, Eq. 16 trains
``1 - sigma(z^-)`` towards 1 on negatives. Read literally, both are also degenerate: each sigmoid
only ever sees one target value, so a network that outputs ``x^+ -> +inf`` (and ``x^- -> +inf``
under Eq. 15, ``-inf`` under Eq. 16) for every image drives the loss to zero without
discriminating anything. The authors' released code runs neither: it applies a 2-way softmax to
``(z_i^+, z_i^-)`` for every class, i.e. ``p_i = sigmoid(z_i^+ - z_i^-)``, with the binary
cross-entropy of ``p_i`` summed over classes and averaged over the batch; with ``lam = 0`` this is
the "softmax" baseline of Tables III and IV. That reading (``reading="pairwise"``) is the default
because it is what produced the paper's numbers and it is a proper loss. ``reading="eq16"`` (and
``"eq15"`` for the printed baseline) are the literal equations, for ablation only; their score is
``sigmoid(z_i^+)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.methods.gsoftmax.transform import GaussianLogitTransform

Reduction = Literal["mean", "sum", "none"]
MultiLabelReading = Literal["pairwise", "eq16", "eq15"]
MULTILABEL_READINGS: tuple[str, ...] = ("pairwise", "eq16", "eq15")


def _apply(logits: Tensor, transform: GaussianLogitTransform | None) -> Tensor:
    return logits if transform is None else transform(logits)


def gsoftmax_cross_entropy(logits: Tensor, target: Tensor, transform: GaussianLogitTransform | None,
                           reduction: Reduction = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Single-label G-softmax loss ``-sum_i y_i log softmax(x + lam Phi(x; mu, sigma))_i`` (Eq. 13).

    Args:
        logits: ``x`` (B, m), the output of the final fully-connected layer.
        target: class indices (B,) or class probabilities (B, m).
        transform: the G-softmax term; ``None`` (or ``lam = 0``) is plain softmax cross-entropy.
        reduction: ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for (B,).
    Returns:
        scalar, or (B,) with ``reduction="none"``.
    """
    return F.cross_entropy(_apply(logits, transform), target, reduction=reduction,
                           label_smoothing=label_smoothing)


def gsoftmax_predict(logits: Tensor, transform: GaussianLogitTransform | None) -> Tensor:
    """Top-1 class (B,). Taken on ``z``, not ``x``: mu and sigma differ per class, so the argmaxes can differ."""
    return _apply(logits, transform).argmax(dim=-1)


def split_pos_neg(logits_2m: Tensor) -> tuple[Tensor, Tensor]:
    """Interleaved (B, 2m) -> ``(x^+, x^-)``, each (B, m) (layout in the module docstring)."""
    if logits_2m.shape[-1] % 2:
        raise ValueError(f"a two-logits-per-class head needs an even last dimension, got {tuple(logits_2m.shape)}")
    pairs = logits_2m.unflatten(-1, (logits_2m.shape[-1] // 2, 2))
    return pairs[..., 0], pairs[..., 1]


def _check_reading(reading: str) -> None:
    if reading not in MULTILABEL_READINGS:
        raise ValueError(f"reading must be one of {MULTILABEL_READINGS}, got {reading!r}")


def multilabel_scores(logits_2m: Tensor, transform: GaussianLogitTransform | None = None,
                      reading: MultiLabelReading = "pairwise") -> Tensor:
    """Per-class scores ``p`` (B, m) in [0, 1] from the (B, 2m) head, used for AP and the 0.5 threshold.

    ``"pairwise"``: ``p_i = exp(z_i^+) / (exp(z_i^+) + exp(z_i^-)) = sigmoid(z_i^+ - z_i^-)``;
    ``"eq16"``/``"eq15"``: ``p_i = sigmoid(z_i^+)``. ``z = transform(logits_2m)`` (``x`` if None).
    """
    _check_reading(reading)
    z_pos, z_neg = split_pos_neg(_apply(logits_2m, transform))
    if reading == "pairwise":
        return torch.sigmoid(z_pos - z_neg)
    return torch.sigmoid(z_pos)


def _reduce_classes(per_class: Tensor, reduction: Reduction) -> Tensor:
    """(B, m) per-class losses -> sum over classes, then mean/sum over the batch; ``"none"`` keeps (B, m)."""
    if reduction == "none":
        return per_class
    per_sample = per_class.sum(-1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def gsoftmax_multilabel_loss(logits_2m: Tensor, targets: Tensor,
                             transform: GaussianLogitTransform | None = None,
                             reading: MultiLabelReading = "pairwise",
                             reduction: Reduction = "mean") -> Tensor:
    """Multi-label G-softmax loss on a two-logits-per-class head (Eqs. 15-16; reading in the module doc).

    Args:
        logits_2m: (B, 2m) interleaved ``(x_i^+, x_i^-)``.
        targets: (B, m) in {0, 1}.
        transform: ``GaussianLogitTransform(2m)`` or ``None`` (``lam = 0``, the "softmax" baseline).
        reading: ``"pairwise"`` (default; per-class 2-way softmax, what the released code runs):
            ``-[y log sigmoid(z^+ - z^-) + (1 - y) log sigmoid(z^- - z^+)]``;
            ``"eq16"`` (Eq. 16 as printed): ``-[y log sigmoid(z^+) + (1 - y) log(1 - sigmoid(z^-))]``;
            ``"eq15"`` (Eq. 15 as printed, with z): ``-[y log sigmoid(z^+) + (1 - y) log sigmoid(z^-)]``.
        reduction: ``"mean"`` = sum over classes, mean over the batch (the code's); ``"sum"``;
            ``"none"`` returns the (B, m) per-class terms.
    """
    _check_reading(reading)
    z_pos, z_neg = split_pos_neg(_apply(logits_2m, transform))
    if targets.shape != z_pos.shape:
        raise ValueError(f"targets must have shape {tuple(z_pos.shape)}, got {tuple(targets.shape)}")
    y = targets.to(z_pos.dtype)
    if reading == "pairwise":
        per_class = F.binary_cross_entropy_with_logits(z_pos - z_neg, y, reduction="none")
    else:
        pos_term = -y * F.logsigmoid(z_pos)
        neg_logit = -z_neg if reading == "eq16" else z_neg      # log(1 - sigmoid(a)) = logsigmoid(-a)
        per_class = pos_term - (1 - y) * F.logsigmoid(neg_logit)
    return _reduce_classes(per_class, reduction)


def multilabel_soft_margin_loss(logits: Tensor, targets: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Eq. 14 (MSML): ``-sum_i [y_i log sigmoid(x_i) + (1 - y_i) log(1 - sigmoid(x_i))]`` on a (B, m) head.

    Summed over classes and averaged over the batch (``torch``'s ``multilabel_soft_margin_loss``
    averages over classes instead, i.e. is this divided by m). Not used in the paper's experiments.
    """
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
    per_class = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return _reduce_classes(per_class, reduction)
