"""The pairwise clustering loss, the consistency term and the ramp-up (Rebuffi thesis ch. 6 eqs. 3-5,
ch. 7 eqs. 4-8).

With cluster posteriors p_i, q_j in the simplex, the probability that samples i and j fall in the
same cluster, assuming independence, is P(i = j) = Σ_k p_ik q_jk = p_iᵀq_j (ch. 7 eq. 4). The loss
is the binary cross-entropy of these probabilities against pairwise targets s_ij in [0, 1]
(eq. 5, soft targets for composed images, eq. 6), **averaged over all B² ordered pairs, i = j
included**, as both released codes do (``PairEnum`` + ``BCE``, eps 1e-7).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from thesislib.engine.distributed import all_gather_rows, all_gather_with_grad, get_world_size, is_distributed
from thesislib.selfsup.precision import full_precision
from thesislib.selfsup.pseudo_labels import rank_statistics

EPS = 1e-7


def pair_probabilities(p: Tensor, q: Tensor | None = None) -> Tensor:
    """P[i, j] = p_iᵀ q_j (ch. 7 eq. 4): p (B, K), q (B', K) probabilities -> (B, B'), float32 with
    autocast off (a bf16 product would round probabilities near 0 and 1 that the BCE's logs magnify)."""
    q = p if q is None else q
    if p.dim() != 2 or q.dim() != 2 or p.shape[1] != q.shape[1]:
        raise ValueError(f"pair_probabilities needs (B, K) and (B', K), got {tuple(p.shape)}, {tuple(q.shape)}")
    with full_precision(p):
        return p.float() @ q.float().T


def pairwise_bce(p: Tensor, q: Tensor, target: Tensor, eps: float = EPS, weight: Tensor | None = None) -> Tensor:
    """Ch. 6 eq. 3 / ch. 7 eqs. 5-6: mean over the B x B' pairs of
    ``-[s_ij log(p_iᵀq_j + eps) + (1 - s_ij) log(1 - p_iᵀq_j + eps)]``.

    p (B, K), q (B', K) probabilities (rows of the clean view, columns of the augmented/composed
    view), target s (B, B') in [0, 1]. With ``weight`` w (B, B') the mean is Σ w l / Σ w (e.g. the
    pairs of a batch's unlabelled samples, without boolean indexing, so no device sync). A scalar."""
    prob = pair_probabilities(p, q)
    if target.shape != prob.shape:
        raise ValueError(f"pairwise_bce: target {tuple(target.shape)} does not match the pairs {tuple(prob.shape)}")
    target = target.to(prob.dtype)
    with full_precision(prob):
        loss = -(target * torch.log(prob + eps) + (1 - target) * torch.log(1 - prob + eps))
    if weight is None:
        return loss.mean()
    weight = weight.to(loss.dtype)
    return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


def ranking_bce(features: Tensor, p: Tensor, q: Tensor, k: int,
                rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """AutoNovel's L_BCE (ch. 6 eq. 3) over the ordered pairs of the **global** batch: targets
    s_ij = 1{top_k(Φ(x_i)) = top_k(Φ(x_j))} (:func:`~thesislib.selfsup.rank_statistics` of the detached
    ``features`` (b, D)), probabilities p_iᵀq_j of ``p``, ``q`` (b, K), pairs weighted by
    rows_i · rows_j when ``rows`` (b,) in {0, 1} is given (e.g. the unlabelled images of a mixed batch).
    Returns (bce, the pairs' positive rate).

    Inside a process group of W > 1 ranks (DDP under torchrun) every rank's b rows are gathered first, as
    the released code's ``nn.DataParallel`` gathers its GPUs' outputs before ``PairEnum``: the features and
    ``rows`` plainly (they carry no gradient), ``p`` and ``q`` with
    :func:`~thesislib.engine.distributed.all_gather_with_grad`, so the BCE is the one-process BCE of the
    W·b concatenated rows (in rank order) on every rank and DDP's gradient average is its gradient. The row
    count b must agree over ranks (equal DistributedSampler shards). One process: no gather, the same
    operations as the loss without this path."""
    if is_distributed() and get_world_size() > 1:
        features = all_gather_rows(features.detach())
        p, q = all_gather_with_grad(p), all_gather_with_grad(q)
        rows = None if rows is None else all_gather_rows(rows.detach())
    s = rank_statistics(features.detach(), k)
    pairs = None if rows is None else rows[:, None] * rows[None, :]
    bce = pairwise_bce(p, q, s, weight=pairs)
    if pairs is None:
        return bce, s.mean()
    return bce, (s * pairs).sum() / pairs.sum().clamp_min(1.0)


def consistency_mse(p: Tensor, q: Tensor) -> Tensor:
    """L_cons = (1 / (K N)) Σ_i ||p_i - q_i||² (ch. 7 eq. 8; ch. 6 eq. 4 per head): the mean squared
    difference of two views' probabilities, (N, K) each (``F.mse_loss`` with mean reduction)."""
    if p.shape != q.shape:
        raise ValueError(f"consistency_mse: shapes differ, {tuple(p.shape)} vs {tuple(q.shape)}")
    return ((p - q) ** 2).mean()


def sigmoid_rampup(t: float, length: float) -> float:
    """exp(-5 (1 - t/T)²) for t in [0, T], 1 after (ch. 6 eq. 5, ch. 7 eq. 8; the weight is λ times this).

    ``t`` is the epoch in the released code (clipped at T); ``length`` = 0 means no ramp (1.0)."""
    if length <= 0:
        return 1.0
    phase = 1.0 - min(max(float(t), 0.0), float(length)) / float(length)
    return math.exp(-5.0 * phase * phase)


class EpochClock:
    """The epoch a ramp-up reads inside an engine step: ``clock()`` is ``clock.trainer.epoch`` (0-based)
    once the :class:`~thesislib.engine.Trainer` is attached (0 before). The step function is built
    before the trainer, so the trainer is attached afterwards (``clock.trainer = trainer``)."""

    def __init__(self) -> None:
        self.trainer: Any = None

    def __call__(self) -> int:
        return int(self.trainer.epoch) if self.trainer is not None else 0
