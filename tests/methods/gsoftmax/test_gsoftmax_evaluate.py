"""Metrics of the G-softmax test outputs: hand-computed single- and multi-label cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.eval import mean_ap
from thesislib.methods.gsoftmax import evaluate as EV
from thesislib.methods.gsoftmax.measures import empirical_measures


def test_single_label_evaluation_on_a_hand_case() -> None:
    x = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 2.5]])
    z = x.clone()
    z[2, 1] = 5.0                                    # the G-softmax argument can change the argmax
    labels = torch.tensor([0, 1, 0, 2])
    metrics, per_class, outputs = EV.single_label_evaluation(x, z, labels)
    assert metrics["top1_error"] == pytest.approx(25.0)          # sample 2: argmax z = 1 != 0
    assert per_class["error"] == pytest.approx([50.0, 0.0, 0.0])
    emp = empirical_measures(x, labels)
    assert metrics["emp_compactness"] == pytest.approx(float(emp.compactness.nanmean()))
    assert metrics["logit_sd"] == pytest.approx(float(x.double().std()))
    assert outputs["x"].shape == (4, 3) and "learned_compactness" not in metrics
    metrics, per_class, _ = EV.single_label_evaluation(x, z, labels, (torch.zeros(3), torch.tensor([1.0, 2.0, 4.0])))
    assert per_class["learned_compactness"] == pytest.approx([1.0, 0.5, 0.25])


def test_multilabel_evaluation_uses_the_pairwise_scores_and_table_cf1() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    targets = (torch.rand(40, 4, generator=g) < 0.4).float()
    targets[0] = 1.0
    metrics, per_class, outputs = EV.multilabel_evaluation(x, x, targets)
    scores = torch.sigmoid(x[:, 0::2] - x[:, 1::2])
    assert np.allclose(outputs["scores"], scores.numpy())
    assert metrics["map"] == pytest.approx(100 * float(mean_ap(scores, targets)))
    pred = scores >= 0.5
    tp, fp, fn = ((pred & (targets > 0)).sum(0).double(), (pred & (targets == 0)).sum(0).double(),
                  (~pred & (targets > 0)).sum(0).double())
    f1 = torch.where(tp > 0, 2 * tp / (2 * tp + fp + fn), torch.zeros_like(tp))
    assert metrics["cf1"] == pytest.approx(100 * float(f1.mean()))           # mean of per-class F1
    cp, cr = metrics["cp"], metrics["cr"]
    assert metrics["cf1_eq22"] == pytest.approx(2 * cp * cr / (cp + cr))     # Eq. 22
    assert len(per_class["ap"]) == 4 and outputs["targets"].dtype == np.uint8
