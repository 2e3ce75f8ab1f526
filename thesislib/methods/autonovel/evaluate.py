"""Scoring AutoNovel (thesis ch. 6 eq. 6 and Table 4); the k-means baselines (Table 2 rows 1 and 5) are
:func:`thesislib.eval.clustering.kmeans_cluster_scores`.

* the clustering of the new classes: argmax of head 2 on the unlabelled *training* images without
  augmentation, ACC (Hungarian) / NMI / ARI (:mod:`thesislib.eval.clustering`);
* with I.L., Table 4's test-split accuracies of head 1 over all classes: old classes (plain accuracy),
  new classes (Hungarian matching of head 1's new outputs to the new classes; a new-class image that
  head 1 sends to an old output is wrong, never matched) and all (:func:`incremental_accuracies`).

Heads are scored in float32: the engine's evaluation runs under bf16 autocast on CUDA, so the heads
are recomputed from the features with autocast off (:func:`~thesislib.selfsup.precision.fp32_head`).
"""

from __future__ import annotations

from typing import Any

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from thesislib.engine import evaluate
from thesislib.engine.distributed import unwrap
from thesislib.eval.clustering import ClusterScores, cluster_scores, contingency
from thesislib.methods.autonovel.config import AutoNovelParams
from thesislib.methods.autonovel.data import NovelData, model_input
from thesislib.methods.autonovel.model import HEAD1, HEAD2
from thesislib.selfsup.precision import fp32_head


def outputs(model: nn.Module, x: Tensor | Dataset, params: AutoNovelParams, device: torch.device
            ) -> dict[str, Tensor]:
    """``{"features", head...}`` of every image of x without augmentation (engine.evaluate): a tensor of
    images (N, ...), or a dataset of (network input, class) items streamed by ``num_workers`` workers
    (ImageNet: the centre crops of :class:`~thesislib.methods.autonovel.data.NovelImageNet`)."""
    def fn(m: nn.Module, batch: Any) -> dict[str, Tensor]:
        out = m(model_input(batch[0], params))
        return {"features": out["features"], **{h: fp32_head(m, out["features"], h) for h in unwrap(m).heads}}
    if isinstance(x, Tensor):
        return evaluate(model, TensorDataset(x), fn, device, batch_size=params.eval_batch_size, amp=params.amp)
    return evaluate(model, x, fn, device, batch_size=params.eval_batch_size, amp=params.amp,
                    num_workers=params.num_workers)


def novel_scores(model: nn.Module, data: NovelData, params: AutoNovelParams, device: torch.device
                 ) -> tuple[ClusterScores, Tensor]:
    """ACC / NMI / ARI of head 2 on the unlabelled training images (ImageNet: the subset's train images,
    centre-cropped), and the assignments."""
    x, y = data.unlabelled("train")
    clusters = outputs(model, x, params, device)[HEAD2].argmax(1)
    return cluster_scores(clusters, y), clusters


def incremental_accuracies(pred: Tensor, y: Tensor, n_old: int, num_new: int) -> dict[str, float]:
    """Table 4's accuracies of head 1 over all C^l + C^u outputs: ``pred`` and ``y`` (N,) class ids,
    old classes ``0 .. n_old - 1``, new ones ``n_old .. n_old + num_new - 1``.

    * ``old``: plain accuracy on the old-class images;
    * ``new``: on the new-class images, the contingency of head 1's ``num_new`` *new* outputs against the
      new classes (rectangular when C^u was estimated: ``num_new`` is then the estimate), matched by the Hungarian
      algorithm, over the number of new-class images; an image sent to an old output counts as wrong (it has no
      row in the table, so it cannot be matched), and so does one in an unmatched output;
    * ``all``: (old correct + new matched) / N, the weighted mean of the two (decided here; the
      released code scores the old and new test images separately).
    """
    old = y < n_old
    n_o, n_n = int(old.sum()), int((~old).sum())
    acc_old = float((pred[old] == y[old]).float().mean()) if n_o else float("nan")
    p_new, y_new = pred[~old] - n_old, y[~old] - n_old
    keep = p_new >= 0
    if bool(keep.any()) and int(p_new[keep].max()) >= num_new:
        raise ValueError(f"incremental_accuracies: prediction {int(p_new[keep].max()) + n_old} beyond the "
                         f"{n_old} + {num_new} outputs of head 1")
    table = contingency(p_new[keep], y_new[keep]) if bool(keep.any()) else None
    matched = 0
    if table is not None and table.size:
        rows, cols = linear_sum_assignment(table, maximize=True)
        matched = int(table[rows, cols].sum())
    acc_new = matched / n_n if n_n else float("nan")
    correct_old = float((pred[old] == y[old]).sum())
    return {"old": acc_old, "new": acc_new, "all": (correct_old + matched) / max(n_o + n_n, 1)}


def incremental_scores(model: nn.Module, data: NovelData, params: AutoNovelParams, device: torch.device
                       ) -> dict[str, float]:
    """Table 4 on the test split (:func:`incremental_accuracies`)."""
    pred = outputs(model, data.x_test, params, device)[HEAD1].argmax(1)
    return incremental_accuracies(pred, data.y_test, params.n_labelled_classes, params.num_new)
