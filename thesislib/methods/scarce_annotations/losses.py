"""The objectives of Algorithm 1 (thesis ch. 5 §3) and of the Π-model / Mean Teacher baseline.

* Phase two: L_unlabelled = (1 - w)·L_pseudo + w·L_temp with w = 0.5 (thesis). L_pseudo is the
  cross-entropy to the phase-one pseudo-label y_i; L_temp the KL divergence KL(p_i^{t-1} || p_i^t) to
  the network's own prediction for x_i at the previous epoch. As in the released code the two are one
  cross-entropy against the soft target

      q_i = (1 - w)·onehot(y_i) + w·p_i^{t-1}                                    (:func:`temporal_target`)

  which equals (1 - w)·L_pseudo + w·L_temp plus w·H(p^{t-1}), a constant for the gradient;
  p^{t-1} is uniform in the first epoch of every cycle (:class:`TemporalTargets`).
* The split (:func:`cycle_subset`): the code's 3-fold rotation of a random permutation that is redrawn
  at the start of every block of three cycles (code: ``outer_loop % 3 == 0``).
  In the refinement mode of Table 1 the pseudo-label is **soft**: y_i is N_t's softmax p̂_i (B, C) instead of
  a class index, and the same formula gives q_i = (1 - w)·p̂_i + w·p_i^{t-1} (:func:`soft_pseudo_labels`).
* Π-model / Mean Teacher: CE on the labelled images + w(t)·(1/(KN))Σ||p_i - p'_i||² (the shared
  :func:`thesislib.selfsup.consistency_mse`); Mean Teacher's two heads add the logit distance
  (1/(C·B)) Σ_i ||z_i^class - z_i^cons||² (:func:`logit_distance`, Tarvainen & Valpola's residual cost).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.engine.distributed import get_world_size
from thesislib.selfsup import consistency_mse


def temporal_target(pseudo: Tensor, prev: Tensor, w: float) -> Tensor:
    """q = (1 - w)·y + w·prev, y = onehot(pseudo) for hard labels ``pseudo`` (B,) int64, or ``pseudo`` itself for
    soft labels (B, C) (rows summing to 1, the refinement mode); prev (B, C) probabilities -> (B, C)."""
    if pseudo.is_floating_point():
        if pseudo.shape != prev.shape:
            raise ValueError(f"soft pseudo-labels {tuple(pseudo.shape)} and p^(t-1) {tuple(prev.shape)} differ")
        return (1.0 - w) * pseudo.to(prev.dtype) + w * prev
    return (1.0 - w) * F.one_hot(pseudo, prev.shape[1]).to(prev.dtype) + w * prev


def soft_pseudo_labels(probs: Tensor, labelled: Tensor, labels: Tensor) -> Tensor:
    """Soft label assignment (Algorithm 1 line 6, refinement mode): the softmax ``probs`` (N, C) of N_t for every
    training image, with the rows of the ``labelled`` indices (L,) replaced by the one-hot of their true
    ``labels`` (N,) (as the hard assignment keeps them)."""
    soft = probs.float().clone()
    soft[labelled] = F.one_hot(labels[labelled], probs.shape[1]).float()
    return soft


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """-(1/B) Σ_i Σ_c q_ic log softmax(z_i)_c for logits z (B, C) and soft targets q (B, C)."""
    return -(target * torch.log_softmax(logits.float(), 1)).sum(1).mean()


def unlabelled_loss(logits: Tensor, pseudo: Tensor, prev: Tensor, w: float) -> Tensor:
    """Phase two's loss: :func:`soft_cross_entropy` against :func:`temporal_target` (hard or soft ``pseudo``)."""
    return soft_cross_entropy(logits, temporal_target(pseudo, prev, w))


def derived_seed(*keys: int) -> int:
    """A 31-bit seed drawn from the integer ``keys`` (e.g. ``(seed, cycle, stream)``): distinct keys give
    independent streams, the same keys the same seed."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0]) & 0x7FFFFFFF


#: stream ids of :func:`derived_seed` (``(seed, index, stream)``)
SPLIT_STREAM, PHASE_ONE_STREAM, PHASE_TWO_STREAM = 1, 2, 3


def cycle_subset(n: int, seed: int, cycle: int, split: bool, split_cycles: int) -> Tensor:
    """The training indices T_i of 0-based ``cycle`` among ``n`` images. With ``split`` and
    ``cycle < split_cycles``: two of the three thirds of a random permutation of ``range(n)`` —
    {0,1}, {1,2}, {0,2} for cycle mod 3 = 0, 1, 2 — where the permutation is redrawn for every block of
    three cycles (seeded by ``(seed, cycle // 3)``, as the code redraws it when ``outer_loop % 3 == 0``):
    within a block every image is left out exactly once, and blocks differ. Otherwise ``arange(n)``."""
    if not split or cycle >= split_cycles:
        return torch.arange(n)
    g = torch.Generator().manual_seed(derived_seed(seed, cycle // 3, SPLIT_STREAM))
    perm = torch.randperm(n, generator=g)
    a, b = n // 3, 2 * n // 3
    thirds = (perm[:a], perm[a:b], perm[b:])
    keep = {0: (0, 1), 1: (1, 2), 2: (0, 2)}[cycle % 3]
    return torch.cat([thirds[k] for k in keep])


class TemporalTargets:
    """p^{t-1} for every training image: ``prev`` (N, C), uniform at creation; :meth:`record` stores the
    softmax of this epoch's (augmented) view of images ``idx``; :meth:`end_epoch` makes them ``prev``.
    Under DDP every rank saw a different shard: the records are summed over ranks (with their counts)."""

    def __init__(self, n: int, num_classes: int, device: torch.device) -> None:
        self.prev = torch.full((n, num_classes), 1.0 / num_classes, device=device)
        self.cur = torch.zeros_like(self.prev)
        self.count = torch.zeros(n, device=device)

    def record(self, idx: Tensor, probs: Tensor) -> None:
        idx = idx.to(self.cur.device)
        self.cur.index_add_(0, idx, probs.detach().float())
        self.count.index_add_(0, idx, torch.ones(len(idx), device=self.cur.device))

    def end_epoch(self, *_: object) -> None:
        if get_world_size() > 1:
            torch.distributed.all_reduce(self.cur)
            torch.distributed.all_reduce(self.count)
        seen = self.count > 0
        self.prev = torch.where(seen[:, None], self.cur / self.count.clamp_min(1.0)[:, None], self.prev)
        self.cur.zero_()
        self.count.zero_()


def pi_loss(logits: Tensor, labels: Tensor, p1: Tensor, p2: Tensor, weight: float, ce_norm: str = "labelled"
            ) -> tuple[Tensor, dict[str, Tensor]]:
    """CE of ``logits`` (B, C) on the images with a label (``labels`` >= 0; -1: unlabelled) plus
    ``weight`` x MSE between two views' probabilities p1, p2 (B, C); returns (loss, parts). The summed CE is
    divided by the number of labelled images (``ce_norm="labelled"``) or by the batch size B (``"batch"``,
    the Mean Teacher code's ``class_loss / minibatch_size``)."""
    if ce_norm not in ("labelled", "batch"):
        raise ValueError(f"pi_loss: ce_norm must be 'labelled' or 'batch', got {ce_norm!r}")
    mask = labels >= 0
    ce = F.cross_entropy(logits.float(), labels.clamp_min(0), reduction="none")
    denom = mask.sum().clamp_min(1) if ce_norm == "labelled" else labels.shape[0]
    ce = (ce * mask).sum() / denom
    mse = consistency_mse(p1, p2)
    return ce + weight * mse, {"ce": ce.detach(), "mse": mse.detach()}


def logit_distance(class_logits: Tensor, cons_logits: Tensor) -> Tensor:
    """Mean Teacher's residual cost between its two heads: (1/(C·B)) Σ_i Σ_c (z_ic^class - z_ic^cons)² for logits
    (B, C) (code: ``symmetric_mse_loss / minibatch_size``); the gradient reaches both heads."""
    return ((class_logits.float() - cons_logits.float()) ** 2).mean()
