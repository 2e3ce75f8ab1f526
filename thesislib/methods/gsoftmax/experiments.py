"""What the G-softmax notebook orchestrates: its replicates, the paired comparisons and verdicts over
them, and the paper's statistical procedures.

* Replicates: :func:`group_by_id`, :func:`aggregate` (mean, sd, n over seeds per experiment id, the
  ``experiments`` part of ``metrics.json``), :func:`summary_rows`, :func:`per_seed_rows`,
  :func:`paired_comparison` / :func:`comparison_rows` (per-seed wins and a paired t-test),
  :func:`gaussian_drift_rows`, :func:`first_replicate`, :func:`lambda_zero_twin` (the lam = 0
  ablation).
* Claims: :func:`single_label_verdicts` and :func:`multilabel_verdicts`, paired verdicts with a 95%
  interval over the replicates (:func:`thesislib.replication.verdicts.paired_verdict`), the
  ``verdicts`` of ``metrics.json`` that ``thesislib seeds gsoftmax`` compares across base seeds;
  :func:`verdict_summary` and :func:`seed_summary` word them (generated, never hand-written).
* Table V (:func:`ap_ttests`: paired t-test of per-class APs, in every replicate) and Table VI
  (:func:`table6_correlations`: Pearson correlation, over the five G-softmax variants, between a
  measure and AP of the class with the best average measure, chosen after the fact;
  :func:`correlation_rows`).
* :func:`gradient_check_rows` (Eqs. 5-12 vs autograd), :func:`paper_table` (printed numbers) and
  :func:`replication_table` (the paper's numbers beside recorded runs).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from thesislib.eval import paired_ttest, pearson
from thesislib.methods.gsoftmax.config import RunSpec
from thesislib.methods.gsoftmax.gradients import autograd_gradients, corrected_gradients, paper_gradients
from thesislib.methods.gsoftmax.train import GSoftmaxResult
from thesislib.replication import format_mean_sd, mean_sd, summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict

# --------------------------------------------------------------------------------------------
# replicates
# --------------------------------------------------------------------------------------------

def group_by_id(results: Sequence[GSoftmaxResult]) -> dict[str, list[GSoftmaxResult]]:
    """Results per experiment id, in first-seen order, each list sorted by seed."""
    groups: dict[str, list[GSoftmaxResult]] = {}
    for result in results:
        groups.setdefault(result.experiment_id, []).append(result)
    return {k: sorted(v, key=lambda r: r.config.seed) for k, v in groups.items()}


def first_replicate(results: Sequence[GSoftmaxResult]) -> list[GSoftmaxResult]:
    """The runs of the lowest seed, in order: one run per configuration, as in the paper's Tables III,
    V and VI (whose procedures take one run of each variant)."""
    if not results:
        return []
    first = min(r.config.seed for r in results)
    return [r for r in results if r.config.seed == first]


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


def lambda_zero_twin(config: RunSpec) -> RunSpec:
    """The G-softmax run with lam = 0 that pairs with the softmax run ``config`` (same seed, same
    data and initial weights): it must train bit for bit like ``config``."""
    field = "multi_lam" if config.multilabel else "lam"
    params = dataclasses.replace(config.params, **{field: 0.0})
    return dataclasses.replace(config, params=params, method="gsoftmax", mu_init=0.0, sigma_init=1.0)


# --------------------------------------------------------------------------------------------
# claims: paired verdicts over the replicates
# --------------------------------------------------------------------------------------------

def _paired(results: Sequence[GSoftmaxResult], baseline: str, other: str,
            metric: str) -> tuple[list[float], list[float]]:
    """``(other, baseline)`` values of ``metric`` over the seeds both ran, paired by seed."""
    groups = group_by_id(results)
    base = {r.config.seed: r.metrics[metric] for r in groups[baseline]}
    oth = {r.config.seed: r.metrics[metric] for r in groups[other]}
    seeds = sorted(base.keys() & oth.keys())
    return [oth[s] for s in seeds], [base[s] for s in seeds]


def _method_label(config: RunSpec) -> str:
    if config.method == "lsoftmax":
        return "L-softmax"
    if config.method == "softmax":
        return "softmax"
    if (config.mu_init, config.sigma_init) == (0.0, 1.0):
        return "G-softmax"
    return f"G-softmax (μ={config.mu_init:g}, σ={config.sigma_init:g})"


def _variant_key(config: RunSpec) -> str:
    return f"mu{config.mu_init:g}_sigma{config.sigma_init:g}"


def single_label_verdicts(results: Sequence[GSoftmaxResult], baseline: str) -> list[Verdict]:
    """The single-label claims, each a paired verdict over the replicate seeds against ``baseline``:

    * ``single_error_<method>``: G-softmax / L-softmax has a lower top-1 test error than softmax
      (the paper's Table I), in percentage points;
    * ``single_compactness_gsoftmax`` / ``single_separability_gsoftmax``: G-softmax's test logits are
      more compact / more separable than softmax's (Sec. V, Figs. 5-6; empirical measures).
    """
    verdicts = []
    for other, runs in group_by_id(results).items():
        if other == baseline:
            continue
        config = runs[0].config
        name = _method_label(config)
        a, b = _paired(results, baseline, other, "top1_error")
        verdicts.append(paired_verdict(f"single_error_{config.method}", f"{name} has a lower test error than "
                                       "softmax (pp, Table I)", a, b, expected="lower"))
        if config.method == "gsoftmax":
            for measure, figure in (("compactness", "Fig. 5"), ("separability", "Fig. 6")):
                a, b = _paired(results, baseline, other, f"emp_{measure}")
                verdicts.append(paired_verdict(f"single_{measure}_gsoftmax",
                                               f"{name}'s test logits have a higher {measure} than softmax's "
                                               f"({figure})", a, b, expected="higher"))
    return verdicts


def multilabel_verdicts(results: Sequence[GSoftmaxResult], baseline: str) -> list[Verdict]:
    """The multi-label claims, paired over the replicate seeds against ``baseline`` (softmax):

    * ``multi_map_<variant>``: each G-softmax (mu, sigma) initialisation has a higher mAP (Table III);
    * ``multi_compactness_<variant>`` for the default (0, 1): the positive logits are more compact
      (the paper's Fig. 8).
    """
    verdicts = []
    for other, runs in group_by_id(results).items():
        if other == baseline:
            continue
        config = runs[0].config
        name, key = _method_label(config), _variant_key(config)
        a, b = _paired(results, baseline, other, "map")
        verdicts.append(paired_verdict(f"multi_map_{key}", f"multi-label {name} has a higher mAP than softmax "
                                       "(pp, Table III)", a, b, expected="higher"))
        if (config.mu_init, config.sigma_init) == (0.0, 1.0):
            a, b = _paired(results, baseline, other, "emp_compactness")
            verdicts.append(paired_verdict(f"multi_compactness_{key}", f"multi-label {name}'s positive logits "
                                           "have a higher compactness than softmax's (Fig. 8)", a, b,
                                           expected="higher"))
    return verdicts


def verdict_summary(verdicts: Sequence[Verdict]) -> str:
    """One markdown sentence generated from ``verdicts``: how many claims hold in this execution, and which."""
    if not verdicts:
        return "No claim was computed (both parts are switched off)."
    held = [v.claim for v in verdicts if v.holds]
    text = f"In this execution {len(held)} of {len(verdicts)} claims hold"
    return text + (": " + "; ".join(held) + "." if held else ".")


def seed_summary(record: dict[str, Any] | None) -> str:
    """One markdown sentence generated from a ``thesislib seeds`` record: the claims held at every base
    seed (supported at this scale), at some (within the seed-to-seed noise) and at none."""
    if not record:
        return "No seed record yet: run `thesislib seeds gsoftmax --base 101 202`."
    claims = record["claims"].values()
    every = [c["claim"] for c in claims if c["held"] == c["of"]]
    some = [c["claim"] for c in claims if 0 < c["held"] < c["of"]]
    none = sum(c["held"] == 0 for c in claims)
    n = len(record["seeds"])
    parts = [f"Held at all {n} base seeds: " + ("; ".join(every) if every else "none") + "."]
    if some:
        parts.append("Held at some base seeds only (not a finding at this scale): " + "; ".join(some) + ".")
    parts.append(f"Held at no base seed: {none} of {len(claims)} claims.")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# multi-label procedures (Tables V and VI)
# --------------------------------------------------------------------------------------------

def _ap_ttest(run: GSoftmaxResult, base: GSoftmaxResult) -> tuple[float, float]:
    ap, base_ap = np.asarray(run.per_class["ap"]), np.asarray(base.per_class["ap"])
    keep = ~(np.isnan(ap) | np.isnan(base_ap))
    if np.ptp(ap[keep] - base_ap[keep]) == 0:
        return math.nan, math.nan
    return paired_ttest(ap[keep], base_ap[keep])


def ap_ttests(results: Sequence[GSoftmaxResult], baseline: str, alpha: float = 0.05) -> list[list[Any]]:
    """Table V in every replicate: per variant ``[id, mean mAP, mean ΔmAP, p (first seed),
    significant in k of n]``: the paper's paired t-test of the per-class APs of one run of the variant
    against one run of the baseline (classes without test positives dropped), repeated for each seed,
    counting the seeds where p < ``alpha``."""
    groups = group_by_id(results)
    base = {r.config.seed: r for r in groups[baseline]}
    rows = []
    for eid, runs in groups.items():
        if eid == baseline:
            continue
        paired = [(r, base[r.config.seed]) for r in runs if r.config.seed in base]
        tests = [_ap_ttest(r, b) for r, b in paired]
        hits = sum(not math.isnan(p) and p < alpha for _, p in tests)
        rows.append([eid, float(np.mean([r.metrics["map"] for r, _ in paired])),
                     float(np.mean([r.metrics["map"] - b.metrics["map"] for r, b in paired])),
                     tests[0][1], f"{hits} of {len(tests)}"])
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


def correlation_rows(correlations: Sequence[Correlation], class_names: Sequence[str]) -> list[list[Any]]:
    """Table VI as rows ``[source, measure, class, rho, p, AP range over the variants]``."""
    rows = []
    for c in correlations:
        name = class_names[c.class_index] if c.class_index >= 0 else None
        span = f"{min(c.aps):.2f}–{max(c.aps):.2f}" if c.aps else None
        rows.append([c.source, c.measure, name, None if math.isnan(c.rho) else c.rho,
                     None if math.isnan(c.p) else c.p, span])
    return rows


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
