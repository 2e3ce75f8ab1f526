"""Area under the ROC curve of a binary score, computed from ranks (Mann-Whitney U).

AUC = P(s_pos > s_neg) + ½ P(s_pos = s_neg) over all (positive, negative) pairs: 0.5 for a score that
carries no information whatever the class prior, 1 for a perfect ranking. Unlike accuracy at a fixed
threshold it does not reward answering the majority class, so it is the chance-free measure of a
localisation head trained on an unbalanced target.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["binary_auc"]


def binary_auc(scores: Tensor, labels: Tensor) -> Tensor:
    """AUC (0-d float64 tensor) of ``scores`` (any shape) against ``labels`` (same shape, {0, 1} or bool).

    U = Σ_{positives} rank − n₊(n₊ + 1)/2 with average ranks for ties; AUC = U / (n₊ n₋).
    Raises ``ValueError`` when one class is absent (the AUC is undefined).
    """
    s = scores.detach().reshape(-1).double()
    y = labels.detach().reshape(-1).bool()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {tuple(scores.shape)} vs {tuple(labels.shape)}")
    n_pos = int(y.sum())
    n_neg = y.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("binary_auc needs both classes among the labels")
    values, inverse, counts = torch.unique(s, return_inverse=True, return_counts=True)
    upper = counts.cumsum(0).double()
    average_rank = upper - (counts.double() - 1.0) / 2.0  # 1-based mean rank of each distinct value
    ranks = average_rank[inverse]
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)
