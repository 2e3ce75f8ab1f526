"""Chapter 4's replicates: methods and placements on every target, the joint SVD compression (with
fine-tuning at K = C/2 and a sweep of K without), the training-data curve, S and the verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from thesislib.eval.decathlon import count_parameters, decathlon_score, e_max_from_baseline
from thesislib.methods.parallel_adapters.config import ParallelAdaptersParams
from thesislib.methods.parallel_adapters.data import fraction_of, load_domains
from thesislib.methods.parallel_adapters.train import compress, finetune_compressed, train_methods
from thesislib.methods.residual_adapters.config import METHOD_LABELS, experiment_id
from thesislib.methods.residual_adapters.evaluate import domain_accuracy, evaluate_runs
from thesislib.methods.residual_adapters.train import train_target
from thesislib.nn.resnet26_adapters import MultiDomainResNet
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict

LABELS = {**METHOD_LABELS, "parallel-early": "Parallel (early)", "parallel-mid": "Parallel (mid)",
          "parallel-late": "Parallel (late)", "parallel-half": "Parallel (half)", "parallel-svd": "Parallel SVD"}


@dataclass
class Ch4Result:
    """One replicate: ``acc[row][target]`` (fractions) for every method, placement and ``parallel-svd``;
    ``trainable[row]`` (mean per target); ``sweep[K/C]`` mean target accuracy right after the cut;
    ``curve[method][fraction]`` accuracy on ``fraction_domain``; ``spectra`` (first replicate's)."""

    seed: int
    acc: dict[str, dict[str, float]]
    trainable: dict[str, float]
    sweep: dict[float, float]
    curve: dict[str, dict[float, float]]
    spectra: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


def run_replicate(params: ParallelAdaptersParams, seed: int, pretrained: Mapping[str, MultiDomainResNet],
                  device: torch.device) -> Ch4Result:
    """Everything of one replicate (module docstring)."""
    domains = load_domains(params, seed)
    targets = [domains[t] for t in params.targets]
    runs = train_methods(params, domains, pretrained, device, seed)
    measured = evaluate_runs(runs, domains, None, device, params.eval_batch_size)
    acc: dict[str, dict[str, float]] = {}
    trainable: dict[str, list[int]] = {}
    for (row, t), r in runs.items():
        acc.setdefault(row, {})[t] = measured[row, t]["target"]
        trainable.setdefault(row, []).append(r.trainable)
    parallel_runs = [runs["parallel", t] for t in params.targets]
    plain = pretrained["plain"]
    sweep = {}
    spectra: dict[str, torch.Tensor] = {}
    for f in params.svd_sweep:
        net, s = compress(plain, parallel_runs, f)
        spectra = spectra or s
        sweep[f] = float(np.mean([domain_accuracy(net, k + 1, d.test, device, params.eval_batch_size)
                                  for k, d in enumerate(targets)]))
    net, _ = compress(plain, parallel_runs, params.svd_fraction)
    tuned = finetune_compressed(params, net, targets, device, seed)
    acc["parallel-svd"] = {t: domain_accuracy(r.net, r.domain, domains[t].test, device, params.eval_batch_size)
                           for t, r in zip(params.targets, tuned)}
    basis = sum(count_parameters([c.basis.weight]) for c in net.domain_convs() if c.basis is not None)
    trainable["parallel-svd"] = [r.trainable + basis / len(tuned) for r in tuned]
    curve: dict[str, dict[float, float]] = {}
    if params.fraction_domain:
        dom = domains[params.fraction_domain]
        for m in params.fraction_methods:
            curve[m] = {1.0: acc[m][params.fraction_domain]}
            for f in params.fractions:
                r = train_target(params, m, fraction_of(dom, f, seed), pretrained, device, seed)
                curve[m][f] = domain_accuracy(r.net, r.domain, dom.test, device, params.eval_batch_size)
    return Ch4Result(seed, acc, {k: float(np.mean(v)) for k, v in trainable.items()}, sweep, curve, spectra)


def mean_acc(params: ParallelAdaptersParams, r: Ch4Result, row: str) -> float:
    return float(np.mean([r.acc[row][t] for t in params.targets]))


def scores(params: ParallelAdaptersParams, r: Ch4Result, baseline: str = "finetune") -> dict[str, float]:
    """S over the targets with E^max = 2 x this replicate's fine-tuning errors (targets the baseline
    gets perfectly right are left out)."""
    keep = [t for t in params.targets if r.acc[baseline][t] < 1.0]
    e_max = e_max_from_baseline({t: 1.0 - r.acc[baseline][t] for t in keep})
    return {row: decathlon_score({t: 1.0 - r.acc[row][t] for t in keep}, e_max) for row in r.acc}


def table_rows(params: ParallelAdaptersParams, results: Sequence[Ch4Result]) -> tuple[list[list[Any]], list[str]]:
    """Table 1 analogue: accuracy (%) per target, mean, S, and trainable parameters per target."""
    headers = ["model", *params.targets, "mean", "S", "trainable / target"]
    s = [scores(params, r) for r in results]
    rows = []
    for row in results[0].acc:
        vals = [100 * float(np.mean([r.acc[row][t] for r in results])) for t in params.targets]
        rows.append([LABELS.get(row, row), *vals, 100 * float(np.mean([mean_acc(params, r, row) for r in results])),
                     float(np.mean([x[row] for x in s])), int(round(results[0].trainable[row]))])
    return rows, headers


#: (id, claim, row a, row b, measure, expected)
CLAIMS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("parallel>series-posthoc", "parallel adapters beat series adapters added to the same plain network "
     "(plug-and-play; mean target accuracy)", "parallel", "series_posthoc", "acc", "higher"),
    ("parallel>finetune", "parallel adapters beat fine-tuning in S (3412 vs 3096)", "parallel", "finetune", "S",
     "higher"),
    ("all>early", "adapters in all stages beat the early stage only", "parallel", "parallel-early", "acc", "higher"),
    ("all>mid", "adapters in all stages beat the middle stage only", "parallel", "parallel-mid", "acc", "higher"),
    ("late>early", "the late stage matters more than the early one", "parallel-late", "parallel-early", "acc",
     "higher"),
    ("all>half", "adapting both convolutions of a unit beats adapting the second only", "parallel", "parallel-half",
     "acc", "higher"),
    ("svd~parallel", "the joint SVD at K = C/2 keeps the accuracy of the uncompressed adapters", "parallel-svd",
     "parallel", "acc", "no clear difference"),
)


def claim_verdicts(params: ParallelAdaptersParams, results: Sequence[Ch4Result]) -> list[Verdict]:
    """Paired verdicts over the replicates for the :data:`CLAIMS` whose rows ran, and the
    small-data claim of Fig. 4c (parallel adapters beat fine-tuning at the smallest share)."""
    s = [scores(params, r) for r in results]
    out = []
    for cid, claim, a, b, measure, expected in CLAIMS:
        if a not in results[0].acc or b not in results[0].acc:
            continue
        if measure == "S":
            va, vb = [x[a] for x in s], [x[b] for x in s]
        else:
            va, vb = [mean_acc(params, r, a) for r in results], [mean_acc(params, r, b) for r in results]
        out.append(paired_verdict(cid, claim, va, vb, expected=expected))
    curve = results[0].curve
    if "parallel" in curve and "finetune" in curve and params.fractions:
        f = min(params.fractions)
        out.append(paired_verdict(
            "small-data", f"with {f:.0%} of {params.fraction_domain}'s training images parallel adapters beat "
            "fine-tuning (Fig. 4c)", [r.curve["parallel"][f] for r in results],
            [r.curve["finetune"][f] for r in results], expected="higher"))
    return out


def aggregate(params: ParallelAdaptersParams, results: Sequence[Ch4Result]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {target: accuracy %, "mean": %, "S": S}}`` (mean, sd, n over replicates)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for r in results:
        s = scores(params, r)
        for row in r.acc:
            entry = {t: 100 * r.acc[row][t] for t in params.targets}
            entry.update(mean=100 * mean_acc(params, r, row), S=s[row])
            runs.setdefault(experiment_id(params, row), []).append(entry)
    return summarize_seeds(runs)
