"""Evaluation metrics from test outputs, aggregation over seeds, and the paper's statistical procedures.

* :func:`single_label_evaluation` / :func:`multilabel_evaluation`: metrics, per-class values and the
  outputs kept for analysis, from the test logits ``x`` and ``z`` (used by ``train.evaluate``).
* :func:`aggregate` (mean, sd, n over seeds per experiment id), :func:`summary_rows`,
  :func:`paired_comparison` (per-seed wins and a paired t-test) and :func:`single_label_findings`,
  which words only what the numbers show.
* Table V (:func:`ap_ttests`: paired t-test of per-class APs) and Table VI
  (:func:`table6_correlations`: Pearson correlation, over the five G-softmax variants, between a
  measure and AP of the class with the best average measure, chosen after the fact).
* :func:`gradient_check_rows` (Eqs. 5-12 vs autograd) and :func:`paper_table` (printed numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.eval import average_precision, multilabel_prf, paired_ttest, pearson, per_class_accuracy, top1_error
from thesislib.methods.gsoftmax.gradients import autograd_gradients, corrected_gradients, paper_gradients
from thesislib.methods.gsoftmax.losses import gsoftmax_predict, multilabel_scores, split_pos_neg
from thesislib.methods.gsoftmax.measures import empirical_measures, empirical_measures_multilabel, learned_measures
from thesislib.replication import format_mean_sd, mean_sd, summarize_seeds

if TYPE_CHECKING:
    from thesislib.methods.gsoftmax.train import GSoftmaxResult

MEASURES: tuple[str, ...] = ("compactness", "separability", "ratio", "gap")
Evaluation = tuple[dict[str, float], dict[str, list[float]], dict[str, np.ndarray]]


# --------------------------------------------------------------------------------------------
# metrics from test outputs
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# seeds
# --------------------------------------------------------------------------------------------

def group_by_id(results: Sequence[GSoftmaxResult]) -> dict[str, list[GSoftmaxResult]]:
    """Results per experiment id, in first-seen order, each list sorted by seed."""
    groups: dict[str, list[GSoftmaxResult]] = {}
    for result in results:
        groups.setdefault(result.experiment_id, []).append(result)
    return {k: sorted(v, key=lambda r: r.config.seed) for k, v in groups.items()}


def baseline_id(results: Sequence[GSoftmaxResult], method: str = "softmax") -> str:
    """The experiment id of the first run of ``method`` (the baseline every comparison is against)."""
    for result in results:
        if result.config.method == method:
            return result.experiment_id
    raise ValueError(f"no {method} run among the results")


def aggregate(results: Sequence[GSoftmaxResult]) -> dict[str, dict[str, Any]]:
    """``{id: {metric: {"mean", "std", "n"}}}`` over seeds (a plain value where there is one seed),
    the ``experiments`` part of the chapter's ``metrics.json``."""
    return summarize_seeds({eid: [r.metrics for r in runs] for eid, runs in group_by_id(results).items()})


def summary_rows(results: Sequence[GSoftmaxResult], metrics: Sequence[str],
                 fmt: str = ".2f") -> list[list[str]]:
    """One row per experiment id: the id, the number of seeds, then ``mean ± sd`` of each metric."""
    return [[eid, str(len(runs)), *(format_mean_sd([r.metrics[m] for r in runs], fmt) for m in metrics)]
            for eid, runs in group_by_id(results).items()]


@dataclass(frozen=True)
class PairedComparison:
    """``other`` vs ``baseline`` on one metric over the seeds both ran. ``better``/``equal``/``worse``
    count seeds (better = lower when ``lower_is_better``); ``diff`` = other - baseline (mean, sd);
    ``t``, ``p``: two-sided paired t-test (NaN with fewer than 2 seeds or identical values)."""

    metric: str
    baseline: str
    other: str
    n: int
    better: int
    equal: int
    worse: int
    mean_diff: float
    sd_diff: float
    t: float
    p: float


def paired_comparison(results: Sequence[GSoftmaxResult], baseline: str, other: str, metric: str,
                      lower_is_better: bool = False) -> PairedComparison:
    """Pair the runs of two experiment ids by seed and compare ``metric``."""
    groups = group_by_id(results)
    base = {r.config.seed: r.metrics[metric] for r in groups[baseline]}
    oth = {r.config.seed: r.metrics[metric] for r in groups[other]}
    seeds = sorted(base.keys() & oth.keys())
    if not seeds:
        raise ValueError(f"{baseline!r} and {other!r} share no seed")
    diff = np.asarray([oth[s] - base[s] for s in seeds])
    sign = -1.0 if lower_is_better else 1.0
    better, worse = int((sign * diff > 0).sum()), int((sign * diff < 0).sum())
    t = p = math.nan
    if len(seeds) > 1 and np.ptp(diff) > 0:
        t, p = paired_ttest([oth[s] for s in seeds], [base[s] for s in seeds])
    mean, sd = mean_sd(diff)
    return PairedComparison(metric, baseline, other, len(seeds), better, len(seeds) - better - worse, worse,
                            mean, sd, t, p)


def _verdict_error(c: PairedComparison, name: str) -> str:
    significant = not math.isnan(c.p) and c.p < 0.05
    if c.equal == c.n:
        return f"{name} and softmax made exactly the same errors in every seed."
    if significant and c.mean_diff < 0 and c.better == c.n:
        return f"{name} had a lower test error in every seed (paired t-test p = {c.p:.3f})."
    if significant and c.mean_diff < 0:
        return f"{name} had a lower test error on average (p = {c.p:.3f}), though not in every seed."
    if significant and c.mean_diff > 0:
        return f"{name} had a HIGHER test error on average (p = {c.p:.3f})."
    return (f"No difference in test error can be claimed: the paired difference is within seed-to-seed "
            f"noise (p = {c.p:.2f}).")


def single_label_findings(results: Sequence[GSoftmaxResult], baseline: str) -> list[str]:
    """Sentences about every experiment id against ``baseline`` (e.g. softmax), built from the numbers:
    error wins per seed with a paired t-test, and how often each empirical measure went up."""
    lines: list[str] = []
    for other in group_by_id(results):
        if other == baseline:
            continue
        err = paired_comparison(results, baseline, other, "top1_error", lower_is_better=True)
        lines.append(f"{other} vs {baseline}, test error: lower in {err.better} of {err.n} seeds, equal in "
                     f"{err.equal}, higher in {err.worse}; mean difference {err.mean_diff:+.2f} pp. "
                     + _verdict_error(err, other))
        parts = []
        for measure in (*MEASURES, "logit_sd"):
            metric = measure if measure == "logit_sd" else f"emp_{measure}"
            c = paired_comparison(results, baseline, other, metric)
            word = "higher" if c.mean_diff > 0 else "lower"
            always = (c.better == c.n) if c.mean_diff > 0 else (c.worse == c.n)
            parts.append(f"{measure} {word} in {max(c.better, c.worse)}/{c.n} seeds"
                         + (" (every seed)" if always and c.n > 1 else ""))
        lines.append(f"{other} vs {baseline}, test-set logit measures: " + "; ".join(parts) + ".")
    return lines


def per_seed_rows(results: Sequence[GSoftmaxResult], metric: str) -> tuple[list[str], list[list[Any]]]:
    """``(headers, rows)``: one row per seed, one column per experiment id, values of ``metric``."""
    groups = group_by_id(results)
    seeds = sorted({r.config.seed for runs in groups.values() for r in runs})
    table = {eid: {r.config.seed: r.metrics[metric] for r in runs} for eid, runs in groups.items()}
    return ["seed", *groups], [[s, *(table[eid].get(s) for eid in groups)] for s in seeds]


def comparison_rows(results: Sequence[GSoftmaxResult], baseline: str,
                    metrics: Sequence[tuple[str, bool]]) -> list[list[Any]]:
    """Rows ``[id, metric, better/equal/worse seeds, mean diff ± sd, p]`` of :func:`paired_comparison`
    of every other id against ``baseline``; ``metrics`` = (name, lower_is_better) pairs."""
    rows = []
    for other in group_by_id(results):
        if other == baseline:
            continue
        for metric, lower in metrics:
            c = paired_comparison(results, baseline, other, metric, lower)
            diff = f"{c.mean_diff:+.3f}" + ("" if math.isnan(c.sd_diff) else f" ± {c.sd_diff:.3f}")
            rows.append([other, metric, f"{c.better} / {c.equal} / {c.worse}", diff, None if math.isnan(c.p) else c.p])
    return rows


def gaussian_drift_rows(results: Sequence[GSoftmaxResult]) -> list[list[Any]]:
    """How far the learned Gaussians moved: per G-softmax id, the mean over seeds of the largest
    ``|mu_end - mu_start|`` and ``|sigma_end - sigma_start|`` over the outputs, and the final
    class-average learned compactness / separability / ratio."""
    rows = []
    for eid, runs in group_by_id(results).items():
        runs = [r for r in runs if r.gaussians]
        if not runs:
            continue
        d_mu = [float(np.abs(np.subtract(r.gaussians["mu"][-1], r.gaussians["mu"][0])).max()) for r in runs]
        d_sigma = [float(np.abs(np.subtract(r.gaussians["sigma"][-1], r.gaussians["sigma"][0])).max()) for r in runs]
        rows.append([eid, float(np.mean(d_mu)), float(np.mean(d_sigma)),
                     *(float(np.mean([r.metrics[f"learned_{k}"] for r in runs]))
                       for k in ("compactness", "separability", "ratio"))])
    return rows


# --------------------------------------------------------------------------------------------
# multi-label procedures (Tables V and VI)
# --------------------------------------------------------------------------------------------

def ap_ttests(results: Sequence[GSoftmaxResult], baseline: str) -> list[list[Any]]:
    """Table V: per variant ``[id, mAP, mAP - baseline mAP, t, p]`` of a paired t-test of the per-class
    APs against the baseline's (classes without test positives dropped). One run per id."""
    groups = group_by_id(results)
    base = groups[baseline][0]
    base_ap = np.asarray(base.per_class["ap"])
    rows = []
    for eid, runs in groups.items():
        if eid == baseline:
            continue
        ap = np.asarray(runs[0].per_class["ap"])
        keep = ~(np.isnan(ap) | np.isnan(base_ap))
        diff = ap[keep] - base_ap[keep]
        t, p = paired_ttest(ap[keep], base_ap[keep]) if np.ptp(diff) > 0 else (math.nan, math.nan)
        rows.append([eid, runs[0].metrics["map"], runs[0].metrics["map"] - base.metrics["map"], t, p])
    return rows


@dataclass(frozen=True)
class Correlation:
    """Table VI for one measure: the chosen class (-1 if none qualifies), its per-variant values and APs,
    and Pearson (rho, p) (NaN when either does not vary)."""

    measure: str
    source: str
    class_index: int
    values: tuple[float, ...]
    aps: tuple[float, ...]
    rho: float
    p: float


def table6_correlations(variants: Sequence[GSoftmaxResult], source: str = "emp",
                        measures: Sequence[str] = ("compactness", "separability", "ratio")) -> list[Correlation]:
    """Table VI's procedure over the G-softmax variants (one run each; the paper has five).

    For each measure: average it per class over the variants, pick the class with the highest average
    (after seeing the data; among classes whose measure and AP are finite in every variant), and
    correlate that class's measure with its AP across the variants.
    ``source`` ``"emp"`` (empirical logit Gaussians) or ``"learned"`` (the G-softmax parameters).
    """
    if len(variants) < 3:
        raise ValueError("a correlation needs at least 3 variants")
    out = []
    for measure in measures:
        table = np.asarray([r.per_class[f"{source}_{measure}"] for r in variants], dtype=float)   # (V, m)
        aps = np.asarray([r.per_class["ap"] for r in variants], dtype=float)
        usable = np.isfinite(table).all(0) & np.isfinite(aps).all(0)        # e.g. sigma = 0 gives inf
        if not usable.any():
            out.append(Correlation(measure, source, -1, (), (), math.nan, math.nan))
            continue
        average = np.where(usable, table.mean(0), -np.inf)
        c = int(np.argmax(average))
        values, ap = table[:, c], aps[:, c]
        rho, p = pearson(values, ap) if np.ptp(values) > 0 and np.ptp(ap) > 0 else (math.nan, math.nan)
        out.append(Correlation(measure, source, c, tuple(values.tolist()), tuple(ap.tolist()), rho, p))
    return out


# --------------------------------------------------------------------------------------------
# the gradient check and the printed numbers
# --------------------------------------------------------------------------------------------

def gradient_check_rows(x: Tensor, y: Tensor, mu: Tensor, sigma: Tensor, lam: float) -> list[list[Any]]:
    """Max |difference| to autograd of the corrected and of the printed closed forms (Eqs. 5-12),
    for dl/dx, dl/dmu, dl/dsigma: rows ``[form, x, mu, sigma]``. Use float64 inputs."""
    reference = autograd_gradients(x, y, mu, sigma, lam)
    rows = []
    for name, fn in (("corrected (p_i in place of x_i + lam Phi_i)", corrected_gradients),
                     ("as printed in Eqs. 9, 10, 12", paper_gradients)):
        g = fn(x, y, mu, sigma, lam)
        rows.append([name, *(float((getattr(g, k) - getattr(reference, k)).abs().max()) for k in ("x", "mu", "sigma"))])
    return rows


def paper_table(source: str) -> tuple[list[str], list[list[Any]]]:
    """The paper's numbers of one table (``"Table I"`` ... ``"Table IV"``) as ``(headers, rows)``.

    One metric (Tables I-II, top-1 error): a column per data set; several (Tables III-IV): a column per
    metric. Rows are the experiment ids without the data set; a number the yaml leaves out is None.
    """
    from thesislib.replication import metric_label, paper_numbers

    numbers = [p for p in paper_numbers("gsoftmax") if p.source == source]
    if not numbers:
        raise ValueError(f"no paper numbers for {source!r}")
    metrics = list(dict.fromkeys(p.metric for p in numbers))
    datasets = list(dict.fromkeys(p.experiment.split("/", 1)[0] for p in numbers))
    by_column = len(metrics) == 1
    columns = datasets if by_column else metrics
    rows: dict[str, dict[str, float]] = {}
    for p in numbers:
        dataset, rest = p.experiment.split("/", 1)
        rows.setdefault(rest, {})[dataset if by_column else p.metric] = p.value
    headers = ["experiment", *(c if by_column else metric_label("gsoftmax", c).split(",")[0] for c in columns)]
    if by_column:
        headers = ["experiment", *(f"{c}: {metric_label('gsoftmax', metrics[0])}" for c in columns)]
    return headers, [[name, *(values.get(c) for c in columns)] for name, values in rows.items()]


def multilabel_findings(results: Sequence[GSoftmaxResult], baseline: str,
                        correlations: Sequence[Correlation] = ()) -> list[str]:
    """Sentences on the multi-label runs, built from the numbers: how many G-softmax variants beat the
    baseline's mAP, how many raise the class-average empirical compactness, separability and ratio
    (the paper's Fig. 8 claim), how many Table V tests are significant, what the Table VI
    correlations are."""
    rows = ap_ttests(results, baseline)
    if not rows:
        return []
    diffs = [r[2] for r in rows]
    significant = [r for r in rows if not math.isnan(r[4]) and r[4] < 0.05]
    lines = [f"mAP: {sum(d > 0 for d in diffs)} of {len(rows)} G-softmax variants scored above {baseline} "
             f"(differences {min(diffs):+.2f} to {max(diffs):+.2f} pp, one run each)."]
    base = next(r for r in results if r.experiment_id == baseline)
    others = [r for r in results if r.experiment_id != baseline]
    for measure in ("compactness", "separability", "ratio"):
        key = f"emp_{measure}"
        values = [r.metrics[key] for r in others if key in r.metrics and not math.isnan(r.metrics[key])]
        if key in base.metrics and values:
            lines.append(f"Class-average {measure} (empirical; the paper's Fig. 8 reports an increase): "
                         f"{sum(v > base.metrics[key] for v in values)} of {len(values)} variants above "
                         f"{baseline}'s {base.metrics[key]:.2f} (variants {min(values):.2f} to {max(values):.2f}).")
    if significant:
        which = "; ".join(f"{r[0]}: dAP {r[2]:+.2f}, p = {r[4]:.3f}" for r in significant)
        lines.append(f"Table V: the per-class AP difference is significant at 0.05 for {len(significant)} of "
                     f"{len(rows)} variants ({which}); with {len(rows)} tests, about {0.05 * len(rows):.2f} "
                     "false positives are expected by chance.")
    else:
        lines.append(f"Table V: no variant's per-class AP differs significantly from {baseline} at 0.05.")
    for c in correlations:
        if math.isnan(c.rho):
            lines.append(f"Table VI, {c.source} {c.measure}: undefined (the measure or the AP does not vary "
                         "across the variants, or no class has finite values).")
            continue
        sign = "positive" if c.rho > 0 else "negative"
        verdict = "significant at 0.05" if c.p < 0.05 else "not significant at 0.05"
        name = results[0].class_names[c.class_index]
        lines.append(f"Table VI, {c.source} {c.measure}: class '{name}', rho = {c.rho:+.2f} "
                     f"({sign}), p = {c.p:.3f}, {verdict} (n = {len(c.values)}; its AP spans "
                     f"{min(c.aps):.2f}-{max(c.aps):.2f} across the variants).")
    tested = [c for c in correlations if not math.isnan(c.p)]
    if tested:
        hits = sum(c.p < 0.05 for c in tested)
        lines.append(f"Table VI overall: {hits} of {len(tested)} correlations are significant at 0.05, where "
                     f"{0.05 * len(tested):.1f} would be expected by chance alone, before accounting for the "
                     "class being picked after the fact.")
    return lines


def replication_table(prefixes: Sequence[str], metrics: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """The paper's numbers beside this repository's recorded runs (``replication_rows``), one row per
    paper experiment whose id starts with one of ``prefixes``: ``paper`` and ``this repository`` cells
    for each of ``metrics`` (None where the paper gives no number)."""
    from thesislib.replication import metric_label, replication_rows

    table: dict[str, dict[str, Any]] = {}
    for row in replication_rows("gsoftmax"):
        if row.paper.experiment.startswith(tuple(prefixes)) and row.paper.metric in metrics:
            entry = table.setdefault(row.paper.label, {"hardware": ""})
            entry[row.paper.metric] = (row.paper.value, row.ours_text)
            if row.ours is not None:
                entry["hardware"] = f"{row.ours.hardware} ({row.ours.scale}, {row.ours.commit})"
    headers = ["experiment"]
    for m in metrics:
        label = metric_label("gsoftmax", m).split(",")[0]
        headers += [f"{label}, paper", f"{label}, this repository"]
    rows = [[label, *(v for m in metrics for v in entry.get(m, (None, None))), entry["hardware"]]
            for label, entry in table.items()]
    return headers + ["run on"], rows
