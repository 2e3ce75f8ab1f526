"""Single-label classification metrics on tensors (any device, no host sync except summaries).

Conventions: ``logits`` (N, C) scores (any monotone transform of them gives the same
results); ``preds`` and ``targets`` int64 (N,) class indices. Ties in ``logits`` are broken
as ``torch.argmax``/``torch.topk`` break them. Functions return 0-dim or (C,) tensors on the
input's device; only :func:`classification_summary` returns Python floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _as_preds(logits_or_preds: torch.Tensor) -> torch.Tensor:
    if logits_or_preds.ndim == 2:
        return logits_or_preds.argmax(dim=1)
    if logits_or_preds.ndim == 1:
        if torch.is_floating_point(logits_or_preds):
            raise TypeError("1-D input must be integer class predictions, got floating point")
        return logits_or_preds
    raise ValueError(f"expected logits (N, C) or predictions (N,), got shape "
                     f"{tuple(logits_or_preds.shape)}")


def _check_targets(n: int, targets: torch.Tensor) -> None:
    if targets.ndim != 1 or targets.shape[0] != n:
        raise ValueError(f"targets must have shape ({n},), got {tuple(targets.shape)}")


def accuracy(logits_or_preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of correct top-1 predictions, a 0-dim float tensor in [0, 1].

    ``logits_or_preds``: logits (N, C) (argmax taken) or integer predictions (N,).
    """
    preds = _as_preds(logits_or_preds)
    _check_targets(preds.shape[0], targets)
    return (preds == targets).float().mean()


def top1_error(logits_or_preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Top-1 error = 1 - accuracy, a 0-dim float tensor in [0, 1] (x100 for the papers' %)."""
    return 1.0 - accuracy(logits_or_preds, targets)


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor,
                  ks: Sequence[int] = (1, 5)) -> dict[int, torch.Tensor]:
    """Top-k accuracy for each k: ``{k: 0-dim tensor}``; a sample counts when its target is
    among the k highest logits. One ``topk`` call for the largest k."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {tuple(logits.shape)}")
    _check_targets(logits.shape[0], targets)
    kmax = max(ks)
    if kmax > logits.shape[1] or min(ks) < 1:
        raise ValueError(f"ks must be in 1..{logits.shape[1]}, got {tuple(ks)}")
    top = logits.topk(kmax, dim=1).indices                       # (N, kmax)
    hit = (top == targets[:, None]).cumsum(dim=1).clamp_(max=1)  # hit[:, k-1]: target in top k
    return {k: hit[:, k - 1].float().mean() for k in ks}


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int,
                     validate: bool = True) -> torch.Tensor:
    """Counts (C, C) int64: entry [t, p] = number of samples of true class t predicted as p.

    One ``bincount`` of ``t * C + p`` on the input's device. ``validate`` checks that every
    index is in 0..C-1 (one host sync; out-of-range values would otherwise land in wrong cells).
    """
    preds = _as_preds(preds)
    _check_targets(preds.shape[0], targets)
    if validate and preds.numel():
        lo = torch.minimum(preds.min(), targets.min())
        hi = torch.maximum(preds.max(), targets.max())
        if bool(lo < 0) or bool(hi >= num_classes):
            raise ValueError(f"class indices must be in 0..{num_classes - 1}, got "
                             f"{int(lo)}..{int(hi)}")
    flat = targets.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Recall of each class, float (C,): correct / number of samples of that class.

    A class with no samples in ``targets`` gets NaN (use ``nanmean`` for the mean per-class
    accuracy, which then averages over the classes present).
    """
    cm = confusion_matrix(preds, targets, num_classes).double()
    support = cm.sum(dim=1)
    return (cm.diagonal() / support).float()  # 0/0 = NaN for absent classes


def classification_summary(logits: torch.Tensor, targets: torch.Tensor,
                           ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Python floats for logs and tables: ``top{k}_acc`` for each k (capped at C),
    ``top1_error_pct`` (in %), ``mean_per_class_acc`` (over classes present)."""
    num_classes = logits.shape[1]
    ks = sorted({min(k, num_classes) for k in ks} | {1})
    topk = topk_accuracy(logits, targets, ks)
    out = {f"top{k}_acc": float(v) for k, v in topk.items()}
    out["top1_error_pct"] = 100.0 * (1.0 - out["top1_acc"])
    out["mean_per_class_acc"] = float(per_class_accuracy(logits, targets, num_classes).nanmean())
    return out
