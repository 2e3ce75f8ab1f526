"""Evaluation of a trained G-softmax network on its test set.

* :func:`evaluate`: the test-set outputs through :func:`thesislib.engine.evaluate` (eval mode, no
  gradients; under DDP each rank runs a strided shard and the shards are gathered in test-set
  order), then the metrics below.
* :func:`single_label_evaluation` / :func:`multilabel_evaluation`: metrics, per-class values and the
  outputs kept for analysis, from the test logits ``x`` and ``z``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.engine import evaluate as engine_evaluate
from thesislib.engine import unwrap
from thesislib.eval import average_precision, multilabel_prf, per_class_accuracy, top1_error
from thesislib.methods.gsoftmax.config import RunSpec
from thesislib.methods.gsoftmax.data import ExperimentData
from thesislib.methods.gsoftmax.losses import gsoftmax_predict, multilabel_scores, split_pos_neg
from thesislib.methods.gsoftmax.measures import empirical_measures, empirical_measures_multilabel, learned_measures
from thesislib.methods.gsoftmax.model import GSoftmaxNet

MEASURES: tuple[str, ...] = ("compactness", "separability", "ratio", "gap")
Evaluation = tuple[dict[str, float], dict[str, list[float]], dict[str, np.ndarray]]


def gather_test_outputs(model: GSoftmaxNet, data: ExperimentData, config: RunSpec,
                 device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Test-set ``(x, z, targets)`` on the CPU in test-set order (every DDP rank gets the whole)."""

    def fn(net: GSoftmaxNet, batch: Any) -> tuple[Tensor, ...]:
        inputs, targets = data.test_batch(batch)
        x, z = net(inputs)
        return x, z, targets

    p = config.params
    return engine_evaluate(unwrap(model), data.test_set, fn, device, batch_size=p.eval_batch_size,
                           collate_fn=data.collate_fn, num_workers=p.num_workers, amp=p.amp,
                           channels_last=p.channels_last)


def evaluate(model: GSoftmaxNet, data: ExperimentData, config: RunSpec, device: torch.device) -> Evaluation:
    """Evaluate on the test set: ``(metrics, per_class, outputs)``.

    Single-label: top-1 error (%) of ``argmax z``, test loss, empirical measures of the logits ``x``;
    multi-label: mAP (VOC and Eq. 21), C-P/C-R/C-F1 (``cf1`` = mean per-class F1 as in the tables,
    ``cf1_eq22`` = Eq. 22), O-P/O-R/O-F1 at 0.5, per-class AP, empirical measures of ``x^+``. For
    G-softmax also the measures of the learned Gaussians.
    """
    net = unwrap(model)
    x, z, targets = gather_test_outputs(net, data, config, device)
    transform = net.transform
    gaussians = None if transform is None else (transform.mu.detach().double().cpu(),
                                                transform.sigma.detach().double().cpu())
    if data.multilabel:
        return multilabel_evaluation(x, z, targets, config.multilabel_reading, gaussians)
    return single_label_evaluation(x, z, targets, gaussians)


def _learned(gaussians: tuple[Tensor, Tensor] | None, step: int,
             metrics: dict[str, float], per_class: dict[str, list[float]]) -> None:
    if gaussians is None:
        return
    mu, sigma = (g[::step] for g in gaussians)                  # multi-label: the positive Gaussians
    learned = learned_measures(mu, sigma)
    for name in ("compactness", "separability", "ratio"):
        values = getattr(learned, name).double()
        metrics[f"learned_{name}"] = float(values.nanmean())
        per_class[f"learned_{name}"] = values.tolist()
    per_class["mu"], per_class["sigma"] = mu.tolist(), sigma.tolist()


def _empirical(emp: Any, metrics: dict[str, float], per_class: dict[str, list[float]]) -> None:
    for name, value in emp.summary().items():
        metrics[f"emp_{name}"] = value
    for name in (*MEASURES, "mu_pos", "sigma_pos", "mu_neg", "sigma_neg"):
        per_class[f"emp_{name}"] = getattr(emp, name).double().tolist()


def single_label_evaluation(x: Tensor, z: Tensor, labels: Tensor,
                            gaussians: tuple[Tensor, Tensor] | None = None) -> Evaluation:
    """Metrics of a single-label test set from ``x`` (N, m) logits, ``z`` (N, m) = G-softmax argument
    (``x`` for softmax) and ``labels`` (N,); ``gaussians`` = learned (mu, sigma) (m,) or None.

    ``top1_error`` (%) of ``argmax z``; ``test_loss`` = mean cross-entropy of ``z``; ``emp_*`` =
    class means of the empirical measures of ``x`` (true-class logit vs pooled imposters, Sec. V);
    ``logit_sd`` = standard deviation of all test logits (their scale); ``learned_*`` for G-softmax.
    """
    labels = labels.long()
    preds = gsoftmax_predict(z, None)
    emp = empirical_measures(x, labels, x.shape[1])
    metrics = {"top1_error": 100.0 * float(top1_error(preds, labels)),
               "test_loss": float(F.cross_entropy(z.double(), labels)),
               "logit_sd": float(x.double().std())}
    per_class = {"error": (100.0 * (1.0 - per_class_accuracy(preds, labels, x.shape[1]).double())).tolist()}
    _empirical(emp, metrics, per_class)
    _learned(gaussians, 1, metrics, per_class)
    outputs = {"x": x.float().numpy(), "z": z.float().numpy(), "labels": labels.numpy()}
    return metrics, per_class, outputs


def multilabel_evaluation(x: Tensor, z: Tensor, targets: Tensor, reading: str = "pairwise",
                          gaussians: tuple[Tensor, Tensor] | None = None) -> Evaluation:
    """Metrics of a multi-label test set from the (N, 2m) head outputs ``x`` and ``z`` and the
    {0, 1} ``targets`` (N, m); ``gaussians`` = learned (mu, sigma) (2m,) or None.

    ``map`` (VOC2012 AP, as the paper's tables) and ``map_eq21`` (Eq. 21), ``cp``, ``cr``, ``cf1``
    (mean of per-class F1, what Tables III-IV report), ``cf1_eq22`` (Eq. 22's harmonic mean of C-P and
    C-R), ``op``, ``or``, ``of1``: all in %, labels predicted where the score is >= 0.5. ``emp_*``:
    empirical measures of the positive logits ``x^+`` (positives vs negatives of each class).
    """
    targets = targets.float()
    scores = multilabel_scores(z, None, reading)
    ap = average_precision(scores, targets, "voc")
    ap21 = average_precision(scores, targets, "ranked")
    prf = multilabel_prf(scores, targets, threshold=0.5)
    keys = {"cp": "C-P", "cr": "C-R", "cf1": "C-F1 (mean per-class)", "cf1_eq22": "C-F1", "op": "O-P",
            "or": "O-R", "of1": "O-F1"}
    metrics = {"map": 100.0 * float(ap.nanmean()), "map_eq21": 100.0 * float(ap21.nanmean()),
               **{k: 100.0 * prf[v] for k, v in keys.items()}}
    pos_logits, _ = split_pos_neg(x)
    metrics["logit_sd"] = float(pos_logits.double().std())
    per_class = {"ap": (100.0 * ap).tolist(), "ap_eq21": (100.0 * ap21).tolist()}
    _empirical(empirical_measures_multilabel(pos_logits, targets), metrics, per_class)
    _learned(gaussians, 2, metrics, per_class)
    outputs = {"x": x.float().numpy(), "z": z.float().numpy(), "scores": scores.float().numpy(),
               "targets": targets.to(torch.uint8).numpy()}
    return metrics, per_class, outputs
