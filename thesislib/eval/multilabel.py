"""Multi-label metrics of G-softmax §IV-B (Eqs. 21-22): per-class AP, mAP, C-/O- precision, recall, F1.

Conventions: ``scores`` (N, C) float, higher = more confident (probabilities or logits);
``targets`` (N, C), an entry > 0 is a positive, anything else a negative. A 1-D pair (N,)
is one class.

**Average precision.** Rank the N images by the class score, descending; ties keep the
input order (stable sort, as MATLAB's ``sort`` in the VOC devkit). With P(k) the precision
at rank k, rel(k) in {0, 1} and R the number of positives:

* ``kind="ranked"``, Eq. 21 (non-interpolated): AP = (1/R) sum_k P(k) rel(k);
* ``kind="voc"``, VOC2012 devkit / SRN ``AP_VOC`` (the numbers in Tables III-IV): area under
  the precision-recall curve after replacing precision by its monotone envelope
  P~(k) = max_{j >= k} P(j); since recall only moves at positives this equals
  (1/R) sum_k P~(k) rel(k);
* ``kind="voc07"``, the VOC2007 devkit's 11-point interpolated AP (``VOCevalcls`` of 2007, the
  metric of the VOC07 classification transfer tables, e.g. Jenni Table 3.3):
  AP = (1/11) sum_{t in {0, 0.1, ..., 1}} max_{k: recall(k) >= t} P(k) (0 when no rank reaches t).

A class with no positive (R = 0) has AP = NaN; :func:`mean_ap` averages the other classes.

**Thresholded counts** (Eq. 22), with prediction = (score >= threshold) (the official code
predicts a label when p+ >= p-, i.e. p >= 0.5): per class N^c correct, N^p predicted, N^g
ground truth. See :func:`multilabel_prf` for the definitions and the 0/0 cases.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

APKind = Literal["voc", "ranked", "voc07"]


def _pair(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if scores.shape != targets.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ")
    if scores.ndim == 1:
        return scores[:, None], targets[:, None], True
    if scores.ndim != 2:
        raise ValueError(f"expected (N, C) or (N,), got {tuple(scores.shape)}")
    return scores, targets, False


def average_precision(scores: torch.Tensor, targets: torch.Tensor,
                      kind: APKind = "voc") -> torch.Tensor:
    """Per-class AP, float64 (C,) (0-dim for 1-D input); NaN for classes without positives.

    ``kind="voc"``: VOC2012 interpolated AP (monotone precision envelope), the default and
    what the G-softmax tables report; ``kind="ranked"``: Eq. 21, mean precision at the ranks
    of the positives; ``kind="voc07"``: the VOC2007 11-point AP. Vectorised over classes: one
    sort of the (N, C) score matrix.
    """
    if kind not in ("voc", "ranked", "voc07"):
        raise ValueError(f"kind must be 'voc', 'ranked' or 'voc07', got {kind!r}")
    s, t, single = _pair(scores, targets)
    order = torch.sort(s, dim=0, descending=True, stable=True).indices       # (N, C)
    rel = (t > 0).gather(0, order).to(torch.float64)                           # rel(k)
    ranks = torch.arange(1, s.shape[0] + 1, device=s.device, dtype=torch.float64)[:, None]
    precision = rel.cumsum(dim=0) / ranks                                      # P(k)
    if kind == "voc07":
        recall = rel.cumsum(dim=0) / rel.sum(dim=0)                            # (N, C), NaN if R = 0
        levels = torch.linspace(0, 1, 11, dtype=torch.float64, device=s.device)
        reach = recall[None] >= levels[:, None, None] - 1e-12                  # (11, N, C)
        best = torch.where(reach, precision[None], torch.zeros((), dtype=torch.float64, device=s.device))
        ap = best.amax(dim=1).mean(dim=0)                                      # (C,)
        ap = torch.where(rel.sum(dim=0) > 0, ap, torch.full_like(ap, math.nan))
        return ap[0] if single else ap
    if kind == "voc":
        precision = precision.flip(0).cummax(dim=0).values.flip(0)            # P~(k)
    ap = (precision * rel).sum(dim=0) / rel.sum(dim=0)                         # 0/0 -> NaN
    return ap[0] if single else ap


def mean_ap(scores: torch.Tensor, targets: torch.Tensor, kind: APKind = "voc") -> torch.Tensor:
    """mAP, a 0-dim float64 tensor: mean of :func:`average_precision` over the classes that
    have at least one positive (NaN if none has)."""
    return average_precision(scores, targets, kind).nanmean()


def multilabel_counts(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class counts int64 (C,): (N^c correct positives, N^p predicted, N^g ground truth),
    with a label predicted where ``score >= threshold``."""
    s, t, _ = _pair(scores, targets)
    pred = s >= threshold
    gt = t > 0
    return (pred & gt).sum(dim=0), pred.sum(dim=0), gt.sum(dim=0)


def _ratio(num: float, den: float, zero_division: float) -> float:
    return num / den if den > 0 else zero_division


def _f1(p: float, r: float) -> float:
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def multilabel_prf(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5,
                   zero_division: float = 0.0) -> dict[str, float]:
    """The per-class (C-) and overall (O-) precision, recall and F1 of Eq. 22, as Python floats
    in [0, 1] (x100 for the tables).

    Per class i: P_i = N^c_i / N^p_i, R_i = N^c_i / N^g_i, F1_i = 2 P_i R_i / (P_i + R_i).

    * ``"C-P"`` = mean_i P_i, ``"C-R"`` = mean_i R_i;
    * ``"C-F1"`` = 2 C-P C-R / (C-P + C-R), Eq. 22 as printed (harmonic mean of C-P and C-R);
    * ``"C-F1 (mean per-class)"`` = mean_i F1_i: what the G-softmax and SRN rows of Tables III-IV
      actually report (reading note 002 §7 item 10); compare to those with this key;
    * ``"O-P"`` = sum N^c / sum N^p, ``"O-R"`` = sum N^c / sum N^g, ``"O-F1"`` their harmonic mean.

    0/0 cases, explicitly: a class with no prediction has P_i = ``zero_division`` and a class
    with no positive has R_i = ``zero_division`` (default 0, so such classes pull C-P / C-R
    down, as scikit-learn's default does); ``zero_division=float("nan")`` instead leaves them
    out of the class means. F1 is 0 when P + R = 0 and NaN when P or R is NaN. The O- ratios
    use ``zero_division`` when nothing is predicted / nothing is positive.
    """
    n_c, n_p, n_g = (c.tolist() for c in multilabel_counts(scores, targets, threshold))
    precision = [_ratio(c, p, zero_division) for c, p in zip(n_c, n_p)]
    recall = [_ratio(c, g, zero_division) for c, g in zip(n_c, n_g)]
    f1 = [_f1(p, r) for p, r in zip(precision, recall)]

    def nanmean(values: list[float]) -> float:
        kept = [v for v in values if not math.isnan(v)]
        return sum(kept) / len(kept) if kept else math.nan

    cp, cr = nanmean(precision), nanmean(recall)
    op = _ratio(sum(n_c), sum(n_p), zero_division)
    orr = _ratio(sum(n_c), sum(n_g), zero_division)
    return {
        "C-P": cp, "C-R": cr, "C-F1": _f1(cp, cr), "C-F1 (mean per-class)": nanmean(f1),
        "O-P": op, "O-R": orr, "O-F1": _f1(op, orr),
    }
