"""AutoNovel's joint objective (thesis ch. 6 eqs. 3-5, App. B), from the shared pieces of
:mod:`thesislib.selfsup`.

L = L_CE + L_BCE + ω(t) L_MSE [+ w_IL(t) L_CE^u]:

* L_CE = -(1/N) Σ log η^l_{y_i}(z_i) over the labelled images of the batch;
* L_BCE (eq. 3): BCE of s_ij = 1{top_k(Φ(x_i)) = top_k(Φ(x_j))} (ranking statistics of the clean
  view's detached features) against η^u(z_i)ᵀη^u(ẑ_j), over the ordered pairs of unlabelled images of
  the global batch (under DDP the ranks' rows are gathered first, :func:`~thesislib.selfsup.ranking_bce`);
* L_MSE (eq. 4): the MSE between the softmax outputs of the clean and augmented views, both heads,
  every image of the batch; ω(t) = λ e^{-5(1-t/T)²};
* I.L.: head 1 covers all C^l + C^u classes and the unlabelled images get the CE to
  argmax η^u + C^l, weighted by ``increment_coefficient`` · e^{-5(1-t/T)²}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.methods.autonovel.config import AutoNovelParams
from thesislib.methods.autonovel.model import HEAD1, HEAD2
from thesislib.selfsup import consistency_mse, ranking_bce, sigmoid_rampup


def masked_ce(logits: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean cross-entropy over the rows where ``mask`` is 1 (targets elsewhere are ignored)."""
    ce = F.cross_entropy(logits.float(), target.clamp_min(0), reduction="none")
    return (ce * mask).sum() / mask.sum().clamp_min(1.0)


def joint_loss(out: dict[str, Tensor], out_aug: dict[str, Tensor], target: Tensor, params: AutoNovelParams,
               epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
    """The joint objective of one batch: network outputs of the clean and augmented views
    (``features`` (B, D), ``head1`` (B, C^l or C^l + C^u), ``head2`` (B, C^u)), targets (B,) with -1
    for unlabelled images. Returns (loss, {"ce", "bce", "mse", "pos_rate"[, "il"]})."""
    lab = (target >= 0).float()
    unl = 1.0 - lab
    ce = masked_ce(out[HEAD1], target, lab)
    p2, p2_aug = torch.softmax(out[HEAD2].float(), 1), torch.softmax(out_aug[HEAD2].float(), 1)
    bce, pos_rate = ranking_bce(out["features"], p2, p2_aug, params.topk, rows=unl)
    p1, p1_aug = torch.softmax(out[HEAD1].float(), 1), torch.softmax(out_aug[HEAD1].float(), 1)
    mse = consistency_mse(p1, p1_aug) + consistency_mse(p2, p2_aug)
    ramp = sigmoid_rampup(epoch, params.rampup_epochs)
    loss = params.ce_weight * ce + params.bce_weight * bce + params.cons_weight * ramp * mse
    metrics = {"ce": ce.detach(), "bce": bce.detach(), "mse": mse.detach(), "pos_rate": pos_rate}
    if params.incremental:
        pseudo = p2.detach().argmax(1) + params.n_labelled_classes
        il = masked_ce(out[HEAD1], pseudo, unl)
        loss = loss + params.increment_coefficient * ramp * il
        metrics["il"] = il.detach()
    return loss, metrics


def prototypical_loss(features: Tensor, n_way: int, n_support: int) -> tuple[Tensor, Tensor]:
    """The prototypical-network loss (Snell et al. 2017) of one episode, the metric-learning initialisation
    of OmniGlot's Φ (thesis ch. 6 §4, "following Han et al. (2019)": DTC's ``prototypical_loss``).

    ``features`` (n_way·shot, D) grouped by class, as :class:`~thesislib.methods.autonovel.data.Episodes`
    returns them: rows k·shot .. (k+1)·shot - 1 are class k, the first ``n_support`` of them its support, the
    other shot - n_support its queries. Prototype c_k = mean of class k's support features; a query's logits
    are -||f - c_k||²; the loss is the mean cross-entropy of the queries to their class. Only shapes are
    checked (no device sync in the training step). Returns (loss, query accuracy)."""
    if n_way < 1 or features.shape[0] % n_way or features.shape[0] // n_way <= n_support:
        raise ValueError(f"prototypical_loss: {features.shape[0]} rows are not {n_way} classes of the same count "
                         f"> n_support = {n_support}")
    f = features.float().reshape(n_way, features.shape[0] // n_way, -1)                  # (n_way, shot, D)
    support = f[:, :n_support].mean(1)                                                    # (n_way, D)
    queries = f[:, n_support:].reshape(-1, f.shape[-1])                                   # (n_way·n_query, D)
    target = torch.arange(n_way, device=f.device).repeat_interleave(f.shape[1] - n_support)
    logits = -torch.cdist(queries, support).pow(2)
    return F.cross_entropy(logits, target), (logits.argmax(1) == target).float().mean()
