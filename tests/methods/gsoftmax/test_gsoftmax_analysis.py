"""Metrics from outputs, seed aggregation, paired comparisons, Tables V/VI procedures, wording of findings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from thesislib.eval import mean_ap
from thesislib.methods.gsoftmax import analysis as A
from thesislib.methods.gsoftmax.measures import empirical_measures
from thesislib.methods.gsoftmax.train import GSoftmaxConfig, GSoftmaxResult


def fake(eid: str, seed: int, method: str = "softmax", **metrics: float) -> GSoftmaxResult:
    per_class = metrics.pop("per_class", {})
    return GSoftmaxResult(eid, GSoftmaxConfig(method=method, seed=seed), dict(metrics), per_class, {},
                          tuple(str(i) for i in range(3)))


def test_single_label_evaluation_on_a_hand_case() -> None:
    x = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 2.5]])
    z = x.clone()
    z[2, 1] = 5.0                                    # the G-softmax argument can change the argmax
    labels = torch.tensor([0, 1, 0, 2])
    metrics, per_class, outputs = A.single_label_evaluation(x, z, labels)
    assert metrics["top1_error"] == pytest.approx(25.0)          # sample 2: argmax z = 1 != 0
    assert per_class["error"] == pytest.approx([50.0, 0.0, 0.0])
    emp = empirical_measures(x, labels)
    assert metrics["emp_compactness"] == pytest.approx(float(emp.compactness.nanmean()))
    assert metrics["logit_sd"] == pytest.approx(float(x.double().std()))
    assert outputs["x"].shape == (4, 3) and "learned_compactness" not in metrics
    metrics, per_class, _ = A.single_label_evaluation(x, z, labels, (torch.zeros(3), torch.tensor([1.0, 2.0, 4.0])))
    assert per_class["learned_compactness"] == pytest.approx([1.0, 0.5, 0.25])


def test_multilabel_evaluation_uses_the_pairwise_scores_and_table_cf1() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    targets = (torch.rand(40, 4, generator=g) < 0.4).float()
    targets[0] = 1.0
    metrics, per_class, outputs = A.multilabel_evaluation(x, x, targets)
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


def test_aggregate_gives_mean_sd_n_or_a_plain_value() -> None:
    results = [fake("a", 0, top1_error=2.0), fake("a", 1, top1_error=4.0), fake("b", 0, top1_error=3.0)]
    agg = A.aggregate(results)
    assert agg["a"]["top1_error"] == {"mean": 3.0, "std": pytest.approx(math.sqrt(2.0)), "n": 2}
    assert agg["b"]["top1_error"] == 3.0
    assert A.summary_rows(results, ["top1_error"]) == [["a", "2", "3.00 ± 1.41"], ["b", "1", "3.00"]]
    headers, rows = A.per_seed_rows(results, "top1_error")
    assert headers == ["seed", "a", "b"] and rows == [[0, 2.0, 3.0], [1, 4.0, None]]


def test_paired_comparison_counts_seeds_and_runs_a_paired_ttest() -> None:
    base, other = [2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 5.0, 3.0]
    results = [fake("soft", s, top1_error=v) for s, v in enumerate(base)]
    results += [fake("g", s, "gsoftmax", top1_error=v) for s, v in enumerate(other)]
    c = A.paired_comparison(results, "soft", "g", "top1_error", lower_is_better=True)
    assert (c.n, c.better, c.equal, c.worse) == (4, 2, 1, 1)
    assert c.mean_diff == pytest.approx(-0.5)
    assert c.p == pytest.approx(stats.ttest_rel(other, base).pvalue)
    higher = A.paired_comparison(results, "soft", "g", "top1_error", lower_is_better=False)
    assert (higher.better, higher.worse) == (1, 2)


def test_findings_claim_only_what_the_numbers_show() -> None:
    same = [fake(k, s, top1_error=2.0, emp_compactness=0.4, emp_separability=10.0, emp_ratio=4.0, emp_gap=5.0,
                 logit_sd=7.0) for k in ("soft", "g") for s in range(3)]
    lines = A.single_label_findings(same, "soft")
    assert "exactly the same errors" in lines[0]
    better = [fake("soft", s, top1_error=3.0 + 0.1 * s, emp_compactness=0.4, emp_separability=10.0, emp_ratio=4.0,
                   emp_gap=5.0 + s, logit_sd=7.0) for s in range(4)]
    better += [fake("g", s, top1_error=2.0 + 0.11 * s, emp_compactness=0.5 - 0.01 * s, emp_separability=10.0 + s,
                    emp_ratio=4.1 + s, emp_gap=5.0 + s - 0.1 * (s % 2), logit_sd=6.0 + 0.1 * s) for s in range(4)]
    lines = A.single_label_findings(better, "soft")
    assert "lower in 4 of 4 seeds" in lines[0] and "lower test error in every seed" in lines[0]
    assert "compactness higher in 4/4 seeds (every seed)" in lines[1]
    assert "gap lower in 2/4 seeds;" in lines[1] and "logit_sd lower in 4/4 seeds" in lines[1]
    noisy = [fake("soft", s, top1_error=v, emp_compactness=0.4, emp_separability=1.0, emp_ratio=1.0, emp_gap=1.0,
                  logit_sd=1.0) for s, v in enumerate([2.0, 3.0, 2.5])]
    noisy += [fake("g", s, top1_error=v, emp_compactness=0.4, emp_separability=1.0, emp_ratio=1.0, emp_gap=1.0,
                   logit_sd=1.0) for s, v in enumerate([2.5, 2.0, 2.6])]
    assert "No difference in test error can be claimed" in A.single_label_findings(noisy, "soft")[0]


def test_table5_ttests_and_table6_correlation_procedure() -> None:
    base_ap = [80.0, 90.0, 70.0]
    variants_ap = [[81.0, 91.0, 69.0], [82.0, 90.5, 72.0], [79.0, 92.0, 71.0], [83.0, 93.0, 70.5], [80.5, 89.0, 73.0]]
    compact = [[0.5, 0.9, 0.2], [0.6, 0.8, 0.3], [0.4, 1.0, 0.2], [0.7, 1.1, 0.1], [0.5, 0.7, 0.4]]
    results = [fake("soft", 0, map=float(np.mean(base_ap)), per_class={"ap": base_ap})]
    results += [fake(f"g{i}", 0, "gsoftmax", map=float(np.mean(ap)),
                     per_class={"ap": ap, "emp_compactness": c, "emp_separability": c, "emp_ratio": c})
                for i, (ap, c) in enumerate(zip(variants_ap, compact))]
    rows = A.ap_ttests(results, "soft")
    assert [r[0] for r in rows] == [f"g{i}" for i in range(5)]
    t, p = stats.ttest_rel(variants_ap[1], base_ap)
    assert rows[1][2] == pytest.approx(np.mean(variants_ap[1]) - np.mean(base_ap))
    assert rows[1][3:] == [pytest.approx(t), pytest.approx(p)]
    (corr,) = A.table6_correlations(results[1:], "emp", ["compactness"])
    assert corr.class_index == 1                                   # highest mean compactness: 0.9
    values, aps = [c[1] for c in compact], [ap[1] for ap in variants_ap]
    assert corr.values == tuple(values) and corr.aps == tuple(aps)
    assert corr.rho == pytest.approx(np.corrcoef(values, aps)[0, 1])
    assert corr.p == pytest.approx(stats.pearsonr(values, aps).pvalue)
    lines = A.multilabel_findings(results, "soft", [corr])
    assert lines[0].startswith("mAP: ") and "Table VI, emp compactness: class '1'" in lines[-2]
    assert lines[-1].startswith("Table VI overall: ")
    # the Fig. 8 measures: counted against the baseline's class averages
    results[0].metrics.update(emp_compactness=0.5, emp_separability=2.0)
    for r, value in zip(results[1:], [0.4, 0.6, 0.7, 0.5, 0.9]):
        r.metrics.update(emp_compactness=value, emp_separability=1.0)
    lines = A.multilabel_findings(results, "soft", [corr])
    assert lines[1] == ("Class-average compactness (empirical; the paper's Fig. 8 reports an increase): 3 of 5 "
                        "variants above soft's 0.50 (variants 0.40 to 0.90).")
    assert lines[2].startswith("Class-average separability") and ": 0 of 5 variants" in lines[2]
    assert not any(line.startswith("Class-average ratio") for line in lines)   # no baseline value
    with pytest.raises(ValueError, match="at least 3"):
        A.table6_correlations(results[1:3])


def test_gradient_check_separates_corrected_from_printed() -> None:
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=g)
    rows = A.gradient_check_rows(x, y, torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), 1.0)
    assert max(rows[0][1:]) < 1e-12 and min(rows[1][1:]) > 1e-3


def test_paper_tables_and_replication_table(tmp_path, monkeypatch) -> None:
    headers, rows = A.paper_table("Table I")
    assert headers[1].startswith("cifar10") and ["wrn-40-14/gsoftmax", 3.36, 17.41] in rows
    headers, rows = A.paper_table("Table III")
    misprint = next(r for r in rows if r[0] == "resnet101-gmp-448/gsoftmax(mu=-0.1,sigma=1)")
    assert misprint[2] is None and misprint[-1] == 81.3              # C-R left out (study note 7.12)
    monkeypatch.setenv("THESISLIB_RESULTS", str(tmp_path))
    headers, rows = A.replication_table(("coco/",), ["map", "cf1"])
    assert headers == ["experiment", "mAP (%), paper", "mAP (%), this repository", "C-F1 (%), paper",
                       "C-F1 (%), this repository", "run on"]
    assert len(rows) == 6 and rows[0][1:5] == [80.6, "not run", 74.1, "not run"]


def test_table6_skips_classes_with_non_finite_measures() -> None:
    aps = [[80.0, 90.0], [81.0, 91.0], [82.0, 93.0]]
    compact = [[math.inf, 0.5], [1.0, 0.6], [2.0, 0.9]]          # class 0 had a single positive: sigma = 0
    variants = [fake(f"g{i}", 0, "gsoftmax", per_class={"ap": a, "emp_compactness": c})
                for i, (a, c) in enumerate(zip(aps, compact))]
    (corr,) = A.table6_correlations(variants, "emp", ["compactness"])
    assert corr.class_index == 1 and corr.values == (0.5, 0.6, 0.9)
    flat = [fake(f"g{i}", 0, "gsoftmax", per_class={"ap": [50.0], "emp_compactness": [math.inf]}) for i in range(3)]
    (none,) = A.table6_correlations(flat, "emp", ["compactness"])
    assert none.class_index == -1 and math.isnan(none.rho)
