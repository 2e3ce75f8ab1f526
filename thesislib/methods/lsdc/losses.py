"""LSD-C's objective (thesis ch. 7 eqs. 3-8), from the shared pieces of :mod:`thesislib.selfsup`.

L_tot = L_clus + ω(t) L_cons (eq. 8), with

* L_clus = BCE(A ∘ σ, p_iᵀ p̃_j) over the B² pairs of the global batch, also under DDP (eqs. 5-6):
  A from the clean view (features or predictions, detached), p the clean view's probabilities
  (rows), p̃ the first composite view's (columns),
  the target of a composite mixed by :func:`~thesislib.selfsup.mix_targets`;
* L_cons = (1/(KN)) Σ ||p̃_i − p̃′_i||² between the two composite views (the released code);
* ω(t) = λ exp(−5 (1 − t/T)²) with t the epoch.
"""

from __future__ import annotations

from torch import Tensor

from thesislib.engine.distributed import all_gather_rows
from thesislib.methods.lsdc.config import LSDCParams
from thesislib.selfsup import Composite, adjacency, consistency_mse, mix_targets, pairwise_bce, sigmoid_rampup


def pseudo_adjacency(features: Tensor, probs: Tensor, params: LSDCParams) -> Tensor:
    """A (B, B) from the clean view: the features f (B, D) or, with ``space = pred``, the
    predictions p (B, K); thresholds from ``params`` (Table 1)."""
    z = features if params.space == "feat" else probs
    tau = {"cosine": params.cosine_tau, "l2": params.l2_tau, "sne": params.sne_tau}.get(params.similarity, 0.0)
    return adjacency(z.detach(), params.similarity, k=params.k, tau=tau, temperature=params.sne_temperature)


def lsdc_loss(p: Tensor, p1: Tensor, p2: Tensor, a: Tensor, composite: Composite | None,
              weight: float, *, world: int = 1, rank: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 8: p (b, K) clean view, p1 / p2 (b, K) the two (composite) views, A (B, B), the composite
    of view 1 (None without composition), ω(t) = ``weight``. Returns (loss, {"bce", "mse"}).

    In one process b = B. Under DDP (``world`` W processes, this one ``rank``) p, p1, p2 are this rank's
    b = B / W rows and A is the adjacency of the *global* batch (from the gathered clean-view features,
    rows in rank order): the targets of this rank's composites are mixed from A's columns of its rows,
    gathered, and the BCE runs over the B x B global pairs with p and p1 gathered
    (:func:`~thesislib.engine.distributed.all_gather_rows`, gradient on the local rows), multiplied by W
    so that DDP's gradient average is the gradient of the global BCE. The MSE is per image: its local
    mean, averaged by DDP, is the global one. The returned ``bce`` metric is the unscaled global BCE."""
    b = p.shape[0]
    cols = a[:, rank * b:(rank + 1) * b]
    target = mix_targets(cols, composite) if composite is not None else cols
    if world > 1:
        target = all_gather_rows(target.T.contiguous()).T
    bce = pairwise_bce(all_gather_rows(p), all_gather_rows(p1), target)
    mse = consistency_mse(p1, p2)
    return world * bce + weight * mse, {"bce": bce.detach(), "mse": mse.detach()}


def rampup_weight(params: LSDCParams, epoch: int) -> float:
    """ω(t) = λ · sigmoid_rampup(epoch, T)."""
    return params.cons_weight * sigmoid_rampup(epoch, params.rampup_epochs)
