"""Seed aggregation, paired comparisons and verdicts, the lam = 0 twin, Tables V/VI procedures, paper tables."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import stats

from thesislib.methods.gsoftmax import experiments as A
from thesislib.methods.gsoftmax.config import GSoftmaxParams, RunSpec
from thesislib.methods.gsoftmax.train import GSoftmaxResult
from thesislib.replication.seeds import summarize
from thesislib.replication.verdicts import paired_verdict, verdicts_dict

PARAMS = GSoftmaxParams()


def fake(eid: str, seed: int, method: str = "softmax", **metrics: float) -> GSoftmaxResult:
    per_class = metrics.pop("per_class", {})
    return GSoftmaxResult(eid, RunSpec(PARAMS, method=method, seed=seed), dict(metrics), per_class, {},
                          tuple(str(i) for i in range(3)))


def test_aggregate_gives_mean_sd_n_or_a_plain_value() -> None:
    results = [fake("a", 0, top1_error=2.0), fake("a", 1, top1_error=4.0), fake("b", 0, top1_error=3.0)]
    agg = A.aggregate(results)
    assert agg["a"]["top1_error"] == {"mean": 3.0, "std": pytest.approx(math.sqrt(2.0)), "n": 2}
    assert agg["b"]["top1_error"] == 3.0
    assert A.summary_rows(results, ["top1_error"]) == [["a", "2", "3.00 ± 1.41"], ["b", "1", "3.00"]]
    headers, rows = A.per_seed_rows(results, "top1_error")
    assert headers == ["seed", "a", "b"] and rows == [[0, 2.0, 3.0], [1, 4.0, None]]
    assert A.first_replicate(results[::-1]) == [results[2], results[0]] and A.first_replicate([]) == []


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


def test_single_label_verdicts_are_paired_intervals_over_seeds() -> None:
    base_err, g_err = [3.0, 3.1, 3.2, 3.3, 3.4], [2.0, 2.2, 2.1, 2.4, 2.2]
    results = [fake("soft", s, top1_error=v, emp_compactness=0.4, emp_separability=10.0)
               for s, v in enumerate(base_err)]
    results += [fake("g", s, "gsoftmax", top1_error=v, emp_compactness=0.4 + 0.01 * (s % 2),
                     emp_separability=10.0 + s) for s, v in enumerate(g_err)]
    results += [fake("l", s, "lsoftmax", top1_error=v, emp_compactness=0.4, emp_separability=10.0)
                for s, v in enumerate([3.5, 2.5, 3.3, 3.2, 3.6])]
    verdicts = {v.id: v for v in A.single_label_verdicts(results, "soft")}
    assert list(verdicts) == ["single_error_gsoftmax", "single_compactness_gsoftmax", "single_separability_gsoftmax",
                              "single_error_lsoftmax"]
    err = verdicts["single_error_gsoftmax"]
    diffs = np.subtract(g_err, base_err)
    half = stats.t.ppf(0.975, 4) * diffs.std(ddof=1) / math.sqrt(5)
    assert err.n == 5 and err.mean == pytest.approx(diffs.mean())
    assert (err.low, err.high) == (pytest.approx(diffs.mean() - half), pytest.approx(diffs.mean() + half))
    assert err.label == "lower" and err.holds and err.expected == "lower"
    lsoft = verdicts["single_error_lsoftmax"]
    assert lsoft.label == "no clear difference" and not lsoft.holds
    assert verdicts["single_separability_gsoftmax"].label == "higher"
    assert verdicts["single_compactness_gsoftmax"].label == "no clear difference"   # +0.01 at two of five seeds
    # pairing is by seed: a run missing at one seed drops that seed from the pair
    partial = [r for r in results if not (r.experiment_id == "g" and r.config.seed == 4)]
    assert {v.id: v.n for v in A.single_label_verdicts(partial, "soft")}["single_error_gsoftmax"] == 4


def test_multilabel_verdicts_name_each_initialisation() -> None:
    results = []
    for s in range(3):
        results.append(fake("soft", s, map=50.0 + s, emp_compactness=1.0))
        results.append(GSoftmaxResult("g", RunSpec(PARAMS, "multi", "gsoftmax", s), {"map": 52.0 + s + 0.1 * s,
                                      "emp_compactness": 1.0 + 0.1 * (s - 1)}, {}, {}, ("0",)))
        results.append(GSoftmaxResult("g05", RunSpec(PARAMS, "multi", "gsoftmax", s, 0.0, 0.5), {"map": 50.0 + s},
                                      {}, {}, ("0",)))
    verdicts = {v.id: v for v in A.multilabel_verdicts(results, "soft")}
    assert list(verdicts) == ["multi_map_mu0_sigma1", "multi_compactness_mu0_sigma1", "multi_map_mu0_sigma0.5"]
    assert verdicts["multi_map_mu0_sigma1"].label == "higher"
    flat = verdicts["multi_map_mu0_sigma0.5"]
    assert flat.label == "no clear difference" and flat.n == 3
    assert "μ=0, σ=0.5" in verdicts["multi_map_mu0_sigma0.5"].claim


def test_summaries_are_generated_from_the_verdicts_and_the_seed_record() -> None:
    yes = paired_verdict("a", "A is lower", [1.0, 1.1, 1.2], [2.0, 2.2, 2.1], expected="lower")
    no = paired_verdict("b", "B is higher", [1.0, 2.0, 0.5], [1.5, 1.0, 1.0], expected="higher")
    assert A.verdict_summary([yes, no]) == "In this execution 1 of 2 claims hold: A is lower."
    assert A.verdict_summary([no]) == "In this execution 0 of 1 claims hold."
    record = summarize("gsoftmax", "smoke", [
        {"seed": s, "run": "", "verdicts": verdicts_dict([yes, dataclasses.replace(no, holds=s == 1)])}
        for s in (0, 1, 2)])
    text = A.seed_summary(record)
    assert text.startswith("Held at all 3 base seeds: A is lower.")
    assert "some base seeds only (not a finding at this scale): B is higher." in text
    assert text.endswith("Held at no base seed: 0 of 2 claims.")
    assert "thesislib seeds gsoftmax" in A.seed_summary(None)


def test_lambda_zero_twin_is_the_softmax_run_with_a_zero_weight() -> None:
    soft = RunSpec(PARAMS, "multi", "softmax", seed=3)
    twin = A.lambda_zero_twin(soft)
    assert (twin.method, twin.seed, twin.lam, twin.task) == ("gsoftmax", 3, 0.0, "multi")
    assert twin.params.lam == PARAMS.lam and twin.params.multi_lam == 0.0


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
    p_values = [stats.ttest_rel(ap, base_ap).pvalue for ap in variants_ap]
    assert rows[1][2] == pytest.approx(np.mean(variants_ap[1]) - np.mean(base_ap))
    assert [r[3] for r in rows] == [pytest.approx(p) for p in p_values]
    assert [r[4] for r in rows] == [f"{int(p < 0.05)} of 1" for p in p_values]
    (corr,) = A.table6_correlations(results[1:], "emp", ["compactness"])
    assert corr.class_index == 1                                   # highest mean compactness: 0.9
    values, aps = [c[1] for c in compact], [ap[1] for ap in variants_ap]
    assert corr.values == tuple(values) and corr.aps == tuple(aps)
    assert corr.rho == pytest.approx(np.corrcoef(values, aps)[0, 1])
    assert corr.p == pytest.approx(stats.pearsonr(values, aps).pvalue)
    (row,) = A.correlation_rows([corr], results[0].class_names)
    assert row[:3] == ["emp", "compactness", "1"] and row[3] == pytest.approx(corr.rho)
    assert row[5] == f"{min(aps):.2f}–{max(aps):.2f}"
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
