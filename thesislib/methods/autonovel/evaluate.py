"""Scoring AutoNovel (thesis ch. 6 eq. 6 and Table 4); the k-means baselines (Table 2 rows 1 and 5) are
:func:`thesislib.eval.clustering.kmeans_cluster_scores`.

* the clustering of the new classes: argmax of head 2 on the unlabelled *training* images without
  augmentation, ACC (Hungarian) / NMI / ARI (:mod:`thesislib.eval.clustering`);
* with I.L., Table 4's test-split accuracies of head 1 over all classes: old classes (plain accuracy),
  new classes (cluster accuracy of head 1's predictions among the new outputs) and all.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from thesislib.engine import evaluate
from thesislib.eval.clustering import ClusterScores, cluster_accuracy, cluster_scores
from thesislib.methods.autonovel.config import AutoNovelParams
from thesislib.methods.autonovel.data import NovelData, model_input
from thesislib.methods.autonovel.model import HEAD1, HEAD2


def outputs(model: nn.Module, x: Tensor, params: AutoNovelParams, device: torch.device) -> dict[str, Tensor]:
    """``{"features", head...}`` of every image of x without augmentation (engine.evaluate)."""
    def fn(m: nn.Module, batch: Any) -> dict[str, Tensor]:
        return m(model_input(batch[0], params))
    return evaluate(model, TensorDataset(x), fn, device, batch_size=params.eval_batch_size, amp=params.amp)


def novel_scores(model: nn.Module, data: NovelData, params: AutoNovelParams, device: torch.device
                 ) -> tuple[ClusterScores, Tensor]:
    """ACC / NMI / ARI of head 2 on the unlabelled training images, and the assignments."""
    x, y = data.unlabelled("train")
    clusters = outputs(model, x, params, device)[HEAD2].argmax(1)
    return cluster_scores(clusters, y), clusters


def incremental_scores(model: nn.Module, data: NovelData, params: AutoNovelParams, device: torch.device
                       ) -> dict[str, float]:
    """Table 4: head 1 over all classes on the test split: ``old`` accuracy, ``new`` (Hungarian over the
    new outputs) and ``all`` (old correct + new matched, over every test image)."""
    pred = outputs(model, data.x_test, params, device)[HEAD1].argmax(1)
    y, c = data.y_test, params.n_labelled_classes
    old = y < c
    acc_old = float((pred[old] == y[old]).float().mean())
    new_pred = (pred[~old] - c).clamp_min(0) * (pred[~old] >= c) + params.num_new * (pred[~old] < c)
    acc_new = cluster_accuracy(new_pred, y[~old] - c)
    n_old, n_new = int(old.sum()), int((~old).sum())
    return {"old": acc_old, "new": acc_new, "all": (acc_old * n_old + acc_new * n_new) / (n_old + n_new)}
