"""LSD-C's objective (thesis ch. 7 eqs. 3-8), from the shared pieces of :mod:`thesislib.selfsup`.

L_tot = L_clus + ω(t) L_cons (eq. 8), with

* L_clus = BCE(A ∘ σ, p_iᵀ p̃_j) over the B² pairs (eqs. 5-6): A from the clean view (features or
  predictions, detached), p the clean view's probabilities (rows), p̃ the first composite view's
  (columns), the target of a composite mixed by :func:`~thesislib.selfsup.mix_targets`;
* L_cons = (1/(KN)) Σ ||p̃_i − p̃′_i||² between the two composite views (the released code);
* ω(t) = λ exp(−5 (1 − t/T)²) with t the epoch.
"""

from __future__ import annotations

from torch import Tensor

from thesislib.methods.lsdc.config import LSDCParams
from thesislib.selfsup import Composite, adjacency, consistency_mse, mix_targets, pairwise_bce, sigmoid_rampup


def pseudo_adjacency(features: Tensor, probs: Tensor, params: LSDCParams) -> Tensor:
    """A (B, B) from the clean view: the features f (B, D) or, with ``space = pred``, the
    predictions p (B, K); thresholds from ``params`` (Table 1)."""
    z = features if params.space == "feat" else probs
    tau = {"cosine": params.cosine_tau, "l2": params.l2_tau, "sne": params.sne_tau}.get(params.similarity, 0.0)
    return adjacency(z.detach(), params.similarity, k=params.k, tau=tau, temperature=params.sne_temperature)


def lsdc_loss(p: Tensor, p1: Tensor, p2: Tensor, a: Tensor, composite: Composite | None,
              weight: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 8: p (B, K) clean view, p1 / p2 (B, K) the two (composite) views, A (B, B), the composite
    of view 1 (None without composition), ω(t) = ``weight``. Returns (loss, {"bce", "mse"})."""
    target = mix_targets(a, composite) if composite is not None else a
    bce = pairwise_bce(p, p1, target)
    mse = consistency_mse(p1, p2)
    return bce + weight * mse, {"bce": bce.detach(), "mse": mse.detach()}


def rampup_weight(params: LSDCParams, epoch: int) -> float:
    """ω(t) = λ · sigmoid_rampup(epoch, T)."""
    return params.cons_weight * sigmoid_rampup(epoch, params.rampup_epochs)
