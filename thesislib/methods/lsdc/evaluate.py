"""Scoring a clustering (thesis ch. 7 eq. 9, plus NMI and ARI); the k-means baselines of Tables 2 and 6
are :func:`thesislib.eval.clustering.kmeans_cluster_scores`.

Cluster assignments are argmax p over the whole dataset without augmentation (the head in float32,
:func:`~thesislib.selfsup.precision.fp32_head`, under the engine's bf16 autocast), through
:func:`thesislib.engine.evaluate` (sharded under DDP); the scores are those of
:mod:`thesislib.eval.clustering`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from thesislib.engine import evaluate
from thesislib.eval.clustering import ClusterScores, cluster_scores
from thesislib.methods.lsdc.config import LSDCParams
from thesislib.methods.lsdc.data import LSDCData, model_input
from thesislib.methods.lsdc.model import CLUSTER_HEAD
from thesislib.selfsup.precision import fp32_head


def predict(model: nn.Module, data: LSDCData, params: LSDCParams, device: torch.device,
            head: str | None = CLUSTER_HEAD) -> dict[str, Tensor]:
    """``{"features": (N, D), "probs": (N, K)}`` (``probs`` only with a ``head``) of every image."""
    def fn(m: nn.Module, batch: Any) -> dict[str, Tensor]:
        out = m(model_input(batch[0], params))
        res = {"features": out["features"]}
        if head is not None:
            res["probs"] = torch.softmax(fp32_head(m, out["features"], head), 1)
        return res
    return evaluate(model, data.dataset, fn, device, batch_size=params.eval_batch_size, amp=params.amp)


def score_model(model: nn.Module, data: LSDCData, params: LSDCParams, device: torch.device
                ) -> tuple[ClusterScores, Tensor]:
    """ACC / NMI / ARI of argmax p against the classes, and the assignments (N,)."""
    clusters = predict(model, data, params, device)["probs"].argmax(1)
    return cluster_scores(clusters, data.labels), clusters
