"""What the notebook orchestrates: replicates of every method on every target, the decathlon
score, the parameter account, the adapter weight-decay study and the claims' verdicts.

One replicate (:func:`run_replicate`) draws the few-shot target sets with its seed, trains every
method of ``params.methods`` on every target from the shared pre-trained networks (as ``nproc``
torchrun processes when ``nproc`` > 1, :func:`~thesislib.methods.residual_adapters.train.run`), evaluates the
target and the source accuracy of each trained network, and trains series adapters once more on
``tiny_domain`` with the larger adapter decay ``wd_adapter_high``. The thesis's extra rows run when
``params.methods`` names them: ``series_decay`` (per-domain adapter decay) like any method,
``finetune_all`` once for all domains (:func:`~thesislib.methods.residual_adapters.train.train_finetune_all`),
``dompred`` by routing every test image of every domain through the domain predicted for it
(:func:`run_domain_prediction`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from thesislib.config import replace
from thesislib.eval.decathlon import ParameterAccount, count_parameters, decathlon_score, e_max_from_baseline
from thesislib.methods.residual_adapters.config import (
    JOINT_METHODS,
    METHOD_LABELS,
    ResidualAdaptersParams,
    experiment_id,
)
from thesislib.methods.residual_adapters.data import Domain, load_domains
from thesislib.methods.residual_adapters.evaluate import domain_accuracy, evaluate_runs, routed_accuracy
from thesislib.methods.residual_adapters.model import METHOD_PLAN, build_network
from thesislib.methods.residual_adapters.train import (
    TargetRun,
    join_runs,
    run,
    train_domain_predictor,
    train_finetune_all,
    train_target,
)
from thesislib.nn.multidomain import RoutedNetwork
from thesislib.nn.resnet26_adapters import MultiDomainResNet
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict


@dataclass
class ReplicateResult:
    """One replicate: ``acc[method][domain]`` (fractions; the source column is the accuracy of the
    pre-trained network the method starts from), ``source_after[method][target]`` (the source
    accuracy of the network after training on ``target``; NaN for scratch), ``trainable[method]``
    (parameters trained per target, mean over targets), ``decay`` (tiny-domain accuracy at the
    default and the larger adapter decay)."""

    seed: int
    acc: dict[str, dict[str, float]]
    source_after: dict[str, dict[str, float]]
    trainable: dict[str, dict[str, int]]
    decay: dict[str, float] = field(default_factory=dict)
    histories: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    #: dompred: share of each domain's test images whose domain the predictor names right
    domain_acc: dict[str, float] = field(default_factory=dict)


def source_accuracies(params: ResidualAdaptersParams, pretrained: Mapping[str, MultiDomainResNet],
                      source_test: Any, device: torch.device) -> dict[str, float]:
    """Source-domain test accuracy of each pre-trained network ({"plain": ..., "series": ...})."""
    return {k: domain_accuracy(net, 0, source_test, device, params.eval_batch_size) for k, net in pretrained.items()}


def run_replicate(params: ResidualAdaptersParams, seed: int, pretrained: Mapping[str, MultiDomainResNet],
                  device: torch.device, methods: Sequence[str] | None = None) -> ReplicateResult:
    """Train and evaluate every method on every target for the replicate ``seed`` (module docstring)."""
    methods = list(params.methods if methods is None else methods)
    domains = load_domains(params, seed)
    source_acc = source_accuracies(params, pretrained, domains[params.source].test, device)
    acc: dict[str, dict[str, float]] = {m: {} for m in methods}
    after: dict[str, dict[str, float]] = {m: {} for m in methods}
    trainable: dict[str, dict[str, int]] = {m: {} for m in methods}
    histories: dict[tuple[str, str], Any] = {}
    distributed = run(replace(params, methods=tuple(methods)), seed, device) if params.nproc > 1 else None
    per_target = [m for m in methods if m not in JOINT_METHODS]
    trained: dict[tuple[str, str], TargetRun] = {}
    for target in params.targets:
        runs = {(m, target): distributed[m, target] if distributed is not None else
                train_target(params, m, domains[target], pretrained, device, seed) for m in per_target}
        if "finetune_all" in methods and target == params.targets[0]:
            joint = ({t: distributed["finetune_all", t] for t in params.targets} if distributed is not None
                     else train_finetune_all(params, domains, pretrained, device, seed)[0])
            trained.update({("finetune_all", t): r for t, r in joint.items()})
        if "finetune_all" in methods:
            runs["finetune_all", target] = trained["finetune_all", target]
        measured = evaluate_runs(runs, domains, params.source, device, params.eval_batch_size)
        for (m, _), r in runs.items():
            acc[m][target] = measured[m, target]["target"]
            after[m][target] = measured[m, target]["source"]
            trainable[m][target] = r.trainable
            histories[m, target] = r.history
            trained[m, target] = r
    for m in methods:
        start = METHOD_PLAN[m][0]
        acc[m][params.source] = source_acc.get(start or "plain", math.nan)
    if "finetune_all" in methods:  # the source domain was fine-tuned too
        net = trained["finetune_all", params.targets[0]].net
        acc["finetune_all"][params.source] = domain_accuracy(net, 0, domains[params.source].test, device,
                                                             params.eval_batch_size)
    domain_acc = {}
    if "dompred" in methods:
        series = {t: trained.get(("series", t)) or (distributed["dompred", t] if distributed is not None else
                                                   train_target(params, "series", domains[t], pretrained, device,
                                                                seed)) for t in params.targets}
        routed, domain_acc, (predictor_history, predictor) = run_domain_prediction(
            params, domains, pretrained["series"], series, device, seed)
        acc["dompred"] = {d: routed[d] for d in domains_of(params)}
        extra = count_parameters(predictor) / len(params.targets)
        for t in params.targets:
            after["dompred"][t] = routed[params.source]
            trainable["dompred"][t] = series[t].trainable + int(round(extra))
        histories["dompred", "predictor"] = predictor_history
    decay = {}
    if params.tiny_domain and "series" in methods:
        tiny = domains[params.tiny_domain]
        high = train_target(params, "series", tiny, pretrained, device, seed, wd_adapter=params.wd_adapter_high)
        decay = {"low": acc["series"][params.tiny_domain],
                 "high": domain_accuracy(high.net, high.domain, tiny.test, device, params.eval_batch_size)}
    return ReplicateResult(seed, acc, after, trainable, decay, histories, domain_acc)


def run_domain_prediction(params: ResidualAdaptersParams, domains: Mapping[str, Domain], source: MultiDomainResNet,
                          series: Mapping[str, TargetRun], device: torch.device, seed: int
                          ) -> tuple[dict[str, float], dict[str, float], tuple[Any, MultiDomainResNet]]:
    """The unknown-domain setting ("dom-pred", Ch. 3 §5.2): train the domain predictor, join the
    source network and every target's series-adapter run into one network (domain ``k`` =
    ``[source, *targets][k]``) and route each test image to its predicted domain. Returns
    ({domain: accuracy with the predicted domain}, {domain: domain-prediction accuracy},
    (predictor history, predictor))."""
    predictor, history = train_domain_predictor(params, domains, device, seed)
    joined = join_runs(source, [series[t] for t in params.targets]).to(device)
    routed = RoutedNetwork(predictor, joined, params.image_size)
    acc, dom = {}, {}
    for k, name in enumerate(domains_of(params)):
        r = routed_accuracy(routed, k, domains[name].test, device, params.eval_batch_size)
        acc[name], dom[name] = r["predicted"], r["domain"]
    return acc, dom, (history, predictor)


def domains_of(params: ResidualAdaptersParams) -> list[str]:
    return [params.source, *params.targets]


def scores(params: ResidualAdaptersParams, result: Any, baseline: str = "finetune",
           over: Sequence[str] | None = None, keep: Sequence[str] | None = None,
           e_max: Mapping[str, float] | None = None) -> dict[str, float]:
    """S per row of ``result.acc`` (``acc[row][domain]``, fractions) over the domains ``keep``
    (default: :func:`scored_domains` of ``over`` for this replicate alone; pass the domains scored
    in *every* replicate to compare replicates on one footing).

    ``e_max`` (domain -> E^max as an error fraction): a fixed E^max, e.g. chapter 4's from chapter
    3's fine-tuning; default (``None``) 2 x ``baseline``'s errors of this replicate, the thesis's
    construction for chapter 3 (fine-tuning then scores 250 per domain). A domain the baseline gets
    perfectly right has no per-run E^max and is left out of every row's S."""
    if keep is None:
        keep = scored_domains(params, [result], baseline, over) if e_max is None else \
            list(over if over is not None else domains_of(params))
    keep = list(keep)
    limits = e_max_from_baseline({d: 1.0 - result.acc[baseline][d] for d in keep}) if e_max is None else e_max
    return {m: decathlon_score({d: 1.0 - result.acc[m][d] for d in keep}, limits) for m in result.acc}


def scored_domains(params: ResidualAdaptersParams, results: Sequence[Any], baseline: str = "finetune",
                   over: Sequence[str] | None = None) -> list[str]:
    """The domains of ``over`` (default all) on which ``baseline`` errs in every replicate."""
    names = list(over) if over is not None else domains_of(params)
    return [d for d in names if all(r.acc[baseline][d] < 1.0 for r in results)]


def mean_target_accuracy(params: ResidualAdaptersParams, result: ReplicateResult, method: str) -> float:
    """Mean accuracy over the target domains only (what the verdicts compare: the source column is
    the start network's, the same for methods that share a start)."""
    return float(np.mean([result.acc[method][t] for t in params.targets]))


def mean_accuracy(params: ResidualAdaptersParams, result: Any, method: str) -> float:
    """Mean accuracy over the source and the targets: the thesis's "mean" column (Table 1's Finetune
    76.51 is the mean of its ten values, ImageNet's 59.87 included)."""
    return float(np.mean([result.acc[method][d] for d in domains_of(params)]))


def mean_source_after(params: ResidualAdaptersParams, result: ReplicateResult, method: str) -> float:
    return float(np.mean([result.source_after[method][t] for t in params.targets]))


def per_seed(results: Sequence[ReplicateResult], fn: Any) -> list[float]:
    return [float(fn(r)) for r in results]


def table_rows(params: ResidualAdaptersParams, results: Sequence[ReplicateResult]) -> tuple[list[list[Any]], list[str]]:
    """Table 1 analogue: per method the accuracy (%) of every domain, the mean over all domains (the
    thesis's "mean"), the mean over the targets and S (means over replicates)."""
    headers = ["method", *domains_of(params), "mean", "mean (targets)", "S"]
    rows = []
    all_scores = [scores(params, r) for r in results]
    for m in results[0].acc:
        row: list[Any] = [METHOD_LABELS.get(m, m)]
        row += [100 * float(np.mean([r.acc[m][d] for r in results])) for d in domains_of(params)]
        row.append(100 * float(np.mean([mean_accuracy(params, r, m) for r in results])))
        row.append(100 * float(np.mean([mean_target_accuracy(params, r, m) for r in results])))
        row.append(float(np.mean([s[m] for s in all_scores])))
        rows.append(row)
    return rows, headers


def forgetting_rows(params: ResidualAdaptersParams, results: Sequence[ReplicateResult]
                    ) -> tuple[list[list[Any]], list[str]]:
    """Table 2 analogue: source accuracy (%) after training on each target / target accuracy (%)."""
    headers = ["method", *params.targets]
    rows = []
    for m in results[0].acc:
        if METHOD_PLAN[m][0] is None:
            continue
        row: list[Any] = [METHOD_LABELS.get(m, m)]
        for t in params.targets:
            src = 100 * float(np.mean([r.source_after[m][t] for r in results]))
            tgt = 100 * float(np.mean([r.acc[m][t] for r in results]))
            row.append(f"{src:.1f} / {tgt:.1f}")
        rows.append(row)
    return rows, headers


def parameter_accounts(params: ResidualAdaptersParams, results: Sequence[ReplicateResult],
                       pretrained: Mapping[str, MultiDomainResNet], num_classes: int) -> list[ParameterAccount]:
    """The "#par" column: source network + what each target stores, over one plain network with the
    source's ``num_classes`` classes."""
    base = count_parameters(build_network(params, num_classes))
    out = []
    for m, per_target in results[0].trainable.items():
        start = METHOD_PLAN[m][0]
        source = count_parameters(pretrained[start]) if start is not None else base
        out.append(ParameterAccount(METHOD_LABELS.get(m, m), source, tuple(per_target[t] for t in params.targets),
                                    base))
    return out


#: (id, claim, method a, method b, measure, expected)
CLAIMS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("bn>feature", "BN adaptation beats the frozen feature extractor (mean target accuracy)", "bn", "feature",
     "acc", "higher"),
    ("series>bn", "series adapters beat BN adaptation (mean target accuracy)", "series", "bn", "acc", "higher"),
    ("series>feature", "series adapters beat the feature extractor (mean target accuracy)", "series", "feature",
     "acc", "higher"),
    ("series~finetune", "series adapters' decathlon score S is not shown different from fine-tuning's (the "
     "interval contains 0; not an equivalence test)", "series", "finetune", "S", "no clear difference"),
    ("series>scratch", "pre-training helps: series adapters beat training from scratch (mean target accuracy)",
     "series", "scratch", "acc", "higher"),
    ("forgetting", "adapters keep the source domain, fine-tuning loses it (source accuracy after the targets)",
     "series", "finetune", "source_after", "higher"),
)
#: claims of the thesis's extra rows (decided only where their methods ran, e.g. at full scale)
EXTRA_CLAIMS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("dompred~series", "predicting the domain costs little: dom-pred matches series adapters given the domain "
     "(mean target accuracy)", "dompred", "series", "acc", "no clear difference"),
)


def claim_verdicts(params: ResidualAdaptersParams, results: Sequence[ReplicateResult]) -> list[Verdict]:
    """Paired verdicts over the replicates (same seed = same few-shot sets) for the :data:`CLAIMS`
    and :data:`EXTRA_CLAIMS` whose methods were run, and the decay study on ``tiny_domain``."""
    all_scores = [scores(params, r) for r in results]
    measures = {
        "acc": lambda r, i, m: mean_target_accuracy(params, r, m),
        "S": lambda r, i, m: all_scores[i][m],
        "source_after": lambda r, i, m: mean_source_after(params, r, m),
    }
    out = []
    ran = set(results[0].acc)
    for cid, claim, a, b, measure, expected in CLAIMS + EXTRA_CLAIMS:
        if a in ran and b in ran:
            fn = measures[measure]
            out.append(paired_verdict(cid, claim, [fn(r, i, a) for i, r in enumerate(results)],
                                      [fn(r, i, b) for i, r in enumerate(results)], expected=expected))
    if results[0].decay:
        out.append(paired_verdict(
            "decay-tiny", f"a larger adapter weight decay ({params.wd_adapter_high:g} vs {params.wd_adapter:g}) "
            f"helps on the tiny domain {params.tiny_domain!r}", [r.decay["high"] for r in results],
            [r.decay["low"] for r in results], expected="higher"))
    return out


def aggregate(params: ResidualAdaptersParams, results: Sequence[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {domain: accuracy %, "mean": mean over source and targets % (the thesis's
    column), "mean_targets": mean over the targets %, "S": S}}`` (mean, sd, n over replicates) for
    ``metrics.json``; ids ``mini16/<method>`` at smoke scale, ``decathlon/<method>`` for the thesis's
    protocol."""
    runs: dict[str, list[dict[str, float]]] = {}
    for r in results:
        s = scores(params, r)
        for m in r.acc:
            # the ILSVRC-folders source is the decathlon's ImageNet column
            row = {("imagenet12" if d == "imagenet" else d): 100 * r.acc[m][d] for d in domains_of(params)}
            row["mean"] = 100 * mean_accuracy(params, r, m)
            row["mean_targets"] = 100 * mean_target_accuracy(params, r, m)
            row["S"] = s[m]
            runs.setdefault(experiment_id(params, m), []).append(row)
        if r.decay:
            runs.setdefault(experiment_id(params, f"series-decay{params.wd_adapter_high:g}"), []).append(
                {params.tiny_domain: 100 * r.decay["high"]})
    return summarize_seeds(runs)


def verdict_sentence(v: Verdict, unit: str = "") -> str:
    """What the verdict supports, in one sentence generated from its label and interval."""
    if v.label == "too few replicates":
        return f"*{v.claim}*: not decided, {v.n} replicate(s)."
    interval = v.interval_text("+.3f") + (f" {unit}" if unit else "")
    if v.holds and v.expected in ("no clear difference", "not lower"):
        shown = "different" if v.expected == "no clear difference" else "lower"
        return (f"*{v.claim}*: **not shown {shown}** at this scale (paired difference {interval}, n = {v.n}); "
                "not an equivalence test: the interval bounds the difference the replicates cannot rule out.")
    if v.holds:
        return f"*{v.claim}*: **holds** at this scale (paired difference {interval}, n = {v.n})."
    return (f"*{v.claim}*: **does not hold** at this scale: the verdict is '{v.label}' "
            f"(paired difference {interval}, n = {v.n}).")
