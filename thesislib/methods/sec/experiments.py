"""The notebook's experiments: replicates, the ablation runs and the verdicts computed from them.

One *replicate* (a seed) is the whole pipeline: data (scenes drawn from the seed), localizer,
cues, then every configuration of ``ablations`` trained on those same cues, so the comparisons
within a replicate are paired. The configurations (thesis section 2.4.3, Figs. 2.6 and 2.7):

=================  ==========================================================
name               loss
=================  ==========================================================
seed               L_seed
seed+expand        L_seed + L_expand
seed+constrain     L_seed + L_constrain
expand+constrain   L_expand + L_constrain (no seeds)
sec                L_seed + L_expand + L_constrain, GWRP (the method)
sec-gmp            all three, global max pooling for the present classes
sec-gap            all three, global average pooling for the present classes
=================  ==========================================================

Metrics follow the thesis's protocol: ``miou``, ``fg_fraction`` and ``iou_<class>`` (in %) are
measured *after* the test-time CRF (Fig. 2.3); ``miou_nocrf`` / ``fg_fraction_nocrf`` before it.

The thesis's conclusions (section 2.4.3) become paired verdicts (:func:`claim_verdicts`,
:func:`thesislib.replication.verdicts.paired_verdict`): the per-replicate difference of two
configurations, a 95% t interval over replicates, and the label it supports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from thesislib.engine import History
from thesislib.methods.sec.config import SECParams, config_for
from thesislib.methods.sec.data import SECData, check_inputs, load_data
from thesislib.methods.sec.evaluate import cue_stats
from thesislib.methods.sec.localization import CueMaps
from thesislib.methods.sec.train import get_cues, run, train_localizer_for
from thesislib.paths import results_root
from thesislib.replication import format_mean_sd, summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict


@dataclass(eq=False)
class Replicate:
    """The shared part of one seed: data, localizer, cues and their statistics."""

    seed: int
    data: SECData
    cues: CueMaps
    cue_stats: dict[str, float]
    localizer: nn.Module | None
    localizer_history: History | None


@dataclass(eq=False)
class RunResult:
    """One trained configuration of one replicate."""

    name: str
    seed: int
    experiment: str
    metrics: dict[str, float]
    seconds: float
    history: History
    model: nn.Module | None = field(default=None, repr=False)


def load_replicate_data(params: SECParams, seed: int | None = None) -> SECData:
    """Check the inputs named by ``params`` and load the data of replicate ``seed``: a missing
    VOC / SBD, weights file or cue file fails here, before anything is trained."""
    config = config_for(params, "sec", seed)
    check_inputs(config)
    return load_data(config)


def prepare_replicate(params: SECParams, seed: int, device: torch.device,
                      data: SECData | None = None) -> Replicate:
    """Data (loaded unless given), localizer and cues of replicate ``seed``."""
    config = config_for(params, "sec", seed)
    data = data if data is not None else load_replicate_data(params, seed)
    localizer = history = None
    if config.cue_source == "cam":
        localizer, history = train_localizer_for(config, data, device)
    cues = get_cues(config, data, device, localizer)
    return Replicate(seed, data, cues, cue_stats(cues, data), localizer, history)


def run_configuration(params: SECParams, name: str, replicate: Replicate, device: torch.device,
                      keep_model: bool = False) -> RunResult:
    """Train and evaluate configuration ``name`` on a replicate's cues (in this process, or as
    ``params.nproc`` torchrun processes, :func:`thesislib.methods.sec.train.run`)."""
    config = config_for(params, name, replicate.seed)
    started = time.perf_counter()
    record, model, history = run(config, device, data=replicate.data, cues=replicate.cues)
    (experiment, metrics), = record["experiments"].items()
    return RunResult(name, replicate.seed, experiment, metrics, time.perf_counter() - started,
                     history, model if keep_model else None)


def run_ablations(params: SECParams, device: torch.device, first: Replicate | None = None,
                  done: Sequence[RunResult] = (), keep_models_of: int | None = None,
                  report: Callable[[str], None] | None = print) -> tuple[list[Replicate], list[RunResult]]:
    """Every configuration of ``params.ablations`` in every replicate.

    ``first``: an already prepared replicate (reused when its seed comes up); ``done``: results
    already computed (not run again, returned with the others); models are kept for the
    replicate ``keep_models_of`` (for figures); ``report`` gets one line per run.
    """
    replicates, results = [], list(done)
    finished = {(r.name, r.seed) for r in done}
    for seed in params.seeds:
        rep = first if first is not None and first.seed == seed else prepare_replicate(params, seed, device)
        replicates.append(rep)
        for name in params.ablations:
            if (name, seed) in finished:
                continue
            result = run_configuration(params, name, rep, device, keep_model=seed == keep_models_of)
            results.append(result)
            if report is not None:
                m = result.metrics
                report(f"seed {seed} {name:<17} mIoU {m['miou_nocrf']:5.1f} -> {m['miou']:5.1f} with CRF, "
                       f"fg {m['fg_fraction_nocrf']:4.1f}% -> {m['fg_fraction']:4.1f}%  ({result.seconds:.1f} s)")
    order = {name: i for i, name in enumerate(params.ablations)}
    results.sort(key=lambda r: (r.seed, order.get(r.name, len(order))))
    return replicates, results


# ---------------------------------------------------------------------------------------------
# aggregation and the verdicts
# ---------------------------------------------------------------------------------------------

def by_name(results: Sequence[RunResult]) -> dict[str, dict[int, RunResult]]:
    """``{configuration: {seed: result}}``."""
    out: dict[str, dict[int, RunResult]] = {}
    for r in results:
        out.setdefault(r.name, {})[r.seed] = r
    return out


def aggregate(results: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {metric: {"mean", "std", "n"}}}`` over replicates (a plain value for one),
    the ``experiments`` part of ``metrics.json``."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.experiment, []).append(r)
    return summarize_seeds({eid: [r.metrics for r in runs] for eid, runs in groups.items()})


def summary_rows(results: Sequence[RunResult], names: Sequence[str],
                 metrics: Sequence[str] = ("miou_nocrf", "miou", "fg_fraction_nocrf", "fg_fraction"),
                 ) -> list[list[str]]:
    """One row per configuration: name, replicates, then ``mean ± sd`` of each metric."""
    groups = by_name(results)
    return [[name, str(len(groups[name])), *(format_mean_sd([r.metrics[m] for r in groups[name].values()], ".1f")
                                            for m in metrics)] for name in names if name in groups]


def paired_values(results: Sequence[RunResult], a: str, b: str, metric: str) -> tuple[list[float], list[float]]:
    """``metric`` of configurations ``a`` and ``b`` in the replicates that ran both, paired by seed."""
    groups = by_name(results)
    seeds = sorted(set(groups.get(a, {})) & set(groups.get(b, {})))
    return ([groups[a][s].metrics[metric] for s in seeds], [groups[b][s].metrics[metric] for s in seeds])


SUBSETS = ("seed", "seed+expand", "seed+constrain", "expand+constrain")

#: (claim id, thesis statement, a, b, metric kind): the verdict compares a - b, expecting "higher".
CLAIMS: tuple[tuple[str, str, str, str, str], ...] = (
    *((f"sec>{s}", f"SEC (all three terms) beats {s}", "sec", s, "miou") for s in SUBSETS),
    ("seed>expand+constrain", "without L_seed the network fails: seed alone beats expand+constrain",
     "seed", "expand+constrain", "miou"),
    ("seed>seed+expand", "seed+expand is worse than seed alone", "seed", "seed+expand", "miou"),
    ("gwrp>gmp", "GWRP beats GMP", "sec", "sec-gmp", "miou"),
    ("gwrp>gap", "GWRP beats GAP", "sec", "sec-gap", "miou"),
    ("fg:gwrp>gmp", "GMP underestimates object sizes: fg% GWRP > GMP", "sec", "sec-gmp", "fg_fraction"),
    ("fg:gap>gwrp", "GAP overestimates object sizes: fg% GAP > GWRP", "sec-gap", "sec", "fg_fraction"),
)


def claim_verdicts(results: Sequence[RunResult], crf: bool = True) -> list[Verdict]:
    """The thesis's conclusions of section 2.4.3 as paired verdicts on ``results`` (each: mean
    paired difference a - b over replicates with its 95% t interval, expected "higher").

    ``crf``: measured after the test-time CRF (the thesis's protocol; ids as in :data:`CLAIMS`) or
    before it (ids with ``:nocrf``, claims marked "(no CRF)")."""
    out = []
    for cid, text, a, b, metric in CLAIMS:
        key = metric if crf else f"{metric}_nocrf"
        va, vb = paired_values(results, a, b, key)
        out.append(paired_verdict(cid if crf else f"{cid}:nocrf", text + ("" if crf else " (no CRF)"), va, vb,
                                  expected="higher"))
    return out


def crf_gain_verdict(results: Sequence[RunResult], name: str = "sec") -> Verdict:
    """mIoU after vs before the test-time CRF for configuration ``name`` (Fig. 2.3), paired by seed."""
    runs = list(by_name(results).get(name, {}).values())
    return paired_verdict(f"crf-gain:{name}", f"the test-time CRF improves {name} (Fig. 2.3)",
                          [r.metrics["miou"] for r in runs], [r.metrics["miou_nocrf"] for r in runs])


def all_verdicts(results: Sequence[RunResult]) -> list[Verdict]:
    """Every verdict of the chapter: with the CRF, without it, and the CRF's own gain."""
    return [*claim_verdicts(results, True), *claim_verdicts(results, False), crf_gain_verdict(results, "sec")]


def subsets_beaten(verdicts: Sequence[Verdict], crf: bool = True) -> list[str]:
    """The subsets SEC beat with an interval above zero (verdict "higher")."""
    suffix = "" if crf else ":nocrf"
    by_id = {v.id: v for v in verdicts}
    return [s for s in SUBSETS if by_id.get(f"sec>{s}{suffix}") and by_id[f"sec>{s}{suffix}"].label == "higher"]


def verdict_sentence(v: Verdict, unit: str = "points") -> str:
    """One sentence that says what the verdict supports, generated from its label and interval."""
    if v.label == "too few replicates":
        return f"*{v.claim}*: too few replicates to decide (n = {v.n})."
    what = {"higher": "supported", "lower": "contradicted (the difference has the opposite sign)",
            "no clear difference": "not decided (the interval contains 0)"}[v.label]
    return (f"*{v.claim}*: {what}; mean difference {v.interval_text('+.1f')} {unit} over {v.n} replicates "
            f"(95% interval).")


# ---------------------------------------------------------------------------------------------
# the dense-CRF benchmark files written by benchmarks/crf_benchmark.py
# ---------------------------------------------------------------------------------------------

BENCHMARK_COLUMNS = ("workload", "implementation", "device", "method", "median s", "pydensecrf / torch",
                     "argmax agreement", "max |dQ|")


def crf_benchmarks(root: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The benchmark records under ``<results>/crf/benchmark_*.json`` (each: ``file``,
    ``hardware``, ``rows`` as :data:`BENCHMARK_COLUMNS` tuples) and the device kinds ("CPU",
    "GPU") that have no file."""
    directory = (root or results_root()) / "crf"
    records, kinds = [], set()
    for file in sorted(directory.glob("benchmark_*.json")) if directory.is_dir() else []:
        data = json.loads(file.read_text())
        rows = []
        for r in data.get("results", []):
            def num(key: str, fmt: str, r: dict[str, Any] = r) -> str:
                return "–" if r.get(key) is None else format(r[key], fmt)
            rows.append((r.get("workload", "?"), r.get("impl", "?"), r.get("device", "?"), r.get("method", "?"),
                         num("seconds", ".4f"), num("speedup", ".2f"), num("agreement", ".5f"),
                         num("max_abs_diff", ".1e")))
            kinds.add("GPU" if "cuda" in str(r.get("device", "")) else "CPU")
        records.append({"file": file.name, "hardware": data.get("hardware") or "unknown", "rows": rows,
                        "goals": data.get("goals", [])})
    return records, [k for k in ("CPU", "GPU") if k not in kinds]
