"""The notebook's experiments: replicates of AutoNovel's three steps, its ablations, the k-means
baselines, and the verdicts.

One *replicate* (a seed): RotNet on every training image; the supervised step on the labelled
classes from the RotNet weights, and from scratch (for w/o S.S. and Table 2 row 1's baseline);
k-means on the unlabelled images' raw pixels, on the features of the network trained from scratch
(Table 2 row 1) and on those of the RotNet + supervised network (row 5, "k-means w/ S.S."); then the
joint step of every variant of ``params.variants`` (Table 1, Fig. 4), each scored by ACC / NMI / ARI of
head 2 on the unlabelled training images. With I.L., also Table 4's test accuracies of head 1.

OmniGlot (Table 3, :func:`run_alphabets`): the metric-learning step once on the background alphabets,
then per evaluation alphabet the joint step of every variant and k-means on the metric features, each
scored on that alphabet's characters; ``metrics[name]`` is the mean over the alphabets (the thesis's
number) and ``metrics[f"{name}@{alphabet}"]`` each alphabet's scores. ImageNet (Table 3, :func:`run_subsets`): the
supervised step once on the 882 labelled classes, then per 30-class subset (A, B, C) k-means on its features and
the joint step, ``metrics[name]`` the mean over the subsets and ``metrics[f"{name}@{subset}"]`` each subset's.

C^u unknown (App. E, Table 6; ``num_novel`` estimate or report): per split, :func:`estimate_step` estimates it
with DTC's method (:func:`class_number`) from the supervised step's features (OmniGlot: the metric step's, per
alphabet) of the labelled and the unlabelled training images, before the k-means baselines and the joint steps,
and (estimate only) gives them the estimate (:func:`estimated_config`). Only the data paths of
:data:`~thesislib.methods.autonovel.config.ESTIMATED_DATA` have this step (elsewhere estimate is a config error and
report does nothing). The estimates are kept in ``ReplicateResult.estimates`` and :func:`aggregate` records them
under ``<data>/estimated-k``; the runs' ids carry ``-estimated-k`` only when every replicate trained with them.

:data:`CLAIMS` turns Tables 1 and 2 and Fig. 4 into paired verdicts over replicates.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from thesislib.config import replace
from thesislib.data.omniglot import omniglot_split_dir
from thesislib.data.roots import dataset_dir
from thesislib.engine import History
from thesislib.eval.class_number import ClassNumberEstimate, estimate_num_classes
from thesislib.eval.clustering import kmeans_cluster_scores
from thesislib.methods.autonovel.config import (
    IMAGENET_SUBSETS,
    VARIANTS,
    AutoNovelParams,
    config_for,
    estimates_cu,
    experiment_id,
    variant_config,
)
from thesislib.methods.autonovel.data import (
    NovelData,
    NovelImageNet,
    load_data,
    load_imagenet,
    replace_split,
    with_alphabet,
)
from thesislib.methods.autonovel.evaluate import incremental_scores, novel_scores, outputs
from thesislib.methods.autonovel.train import metric_to_supervised, run_stage
from thesislib.replication import summarize_seeds
from thesislib.replication.variants import percent_summary, variant_values, variant_verdicts
from thesislib.replication.variants import verdict_sentence as variant_sentence
from thesislib.replication.verdicts import Verdict

BASELINES = {"kmeans-pixels": "k-means on raw pixels", "kmeans-scratch": "k-means, network trained on labelled only",
             "kmeans-selfsup": "k-means w/ S.S. (RotNet + supervised features)"}


@dataclass(eq=False)
class ReplicateResult:
    seed: int
    metrics: dict[str, dict[str, float]]
    seconds: float
    histories: dict[str, History]
    model: nn.Module | None = field(default=None, repr=False)
    il_model: nn.Module | None = field(default=None, repr=False)
    data: NovelData | None = field(default=None, repr=False)
    sup_features: Tensor | None = field(default=None, repr=False)
    n_alphabets: int = 0          #: OmniGlot: the evaluation alphabets the mean ACC is over (20 in the release)
    #: ``num_novel`` estimate / report: DTC's estimate of C^u ("" or, OmniGlot, per alphabet) and the true C^u
    estimates: dict[str, ClassNumberEstimate] = field(default_factory=dict, repr=False)
    true_num_new: dict[str, int] = field(default_factory=dict)
    #: ``num_novel`` estimate: the heads of some split were sized by the estimate (:func:`estimate_step`)
    used_estimate: bool = False


def _s(s: Any) -> dict[str, float]:
    return {"acc": s.acc, "nmi": s.nmi, "ari": s.ari}


#: The evaluation alphabets of the OmniGlot release (Table 3's 89.1 is their mean ACC).
OMNIGLOT_EVALUATION_ALPHABETS = 20


def evaluation_alphabets(params: AutoNovelParams) -> list[str]:
    """``params.alphabet``, or every evaluation alphabet on disk (20 in the release), sorted; warns when the
    folder holds another number (a partial download: the mean is then not Table 3's)."""
    if params.alphabet:
        return [params.alphabet]
    folder = omniglot_split_dir("evaluation", dataset_dir("omniglot", data_root=params.data_root))
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(found) != OMNIGLOT_EVALUATION_ALPHABETS:
        warnings.warn(f"OmniGlot: {len(found)} evaluation alphabets in {folder}, the release has "
                      f"{OMNIGLOT_EVALUATION_ALPHABETS}: the mean ACC is over {len(found)} alphabets and is not "
                      "comparable with Table 3", stacklevel=2)
    return found


def probe_classes(params: AutoNovelParams, classes: Tensor) -> Tensor:
    """The labelled classes the estimate of C^u draws as anchors + probes: ``estimate_labelled_classes`` of the
    ``classes`` (K,) at random (seeded by ``params.seed``), or all of them (0, or not fewer than K). The per-split
    paths draw them before computing features (only those images are read); :func:`class_number` draws the same."""
    n = params.estimate_labelled_classes
    if 0 < n < len(classes):
        return classes[torch.randperm(len(classes), generator=torch.Generator().manual_seed(params.seed))[:n]]
    return classes


def class_number(params: AutoNovelParams, labelled: Tensor, labels: Tensor, unlabelled: Tensor,
                 device: torch.device) -> ClassNumberEstimate:
    """DTC's estimate of C^u (:func:`thesislib.eval.class_number.estimate_num_classes`) from the features (N, D) of
    the labelled images with their classes (N,) and those (M, D) of the unlabelled ones, under the ``estimate_*``
    parameters; ``estimate_labelled_classes`` > 0 first draws that many labelled classes (:func:`probe_classes`;
    features of an earlier draw pass through unchanged)."""
    y = labels.cpu()
    classes = torch.unique(y)
    keep = probe_classes(params, classes)
    if len(keep) < len(classes):
        rows = torch.isin(y, keep)
        labelled, y = labelled[rows.to(labelled.device)], y[rows]
    candidates = min(params.estimate_candidates, len(unlabelled) + 1)   # c <= M new clusters always fit
    if candidates < params.estimate_candidates:
        warnings.warn(f"estimating C^u: only {candidates} of the {params.estimate_candidates} candidate numbers of new "
                      "clusters fit the probe and unlabelled images", stacklevel=2)
    return estimate_num_classes(unlabelled, labelled, y, range(candidates),
                                anchor_fraction=params.estimate_anchor_fraction, min_size=params.estimate_min_size,
                                seed=params.seed, n_init=params.estimate_n_init,
                                silhouette_sample=params.estimate_silhouette_sample, device=device)


def estimated_config(config: AutoNovelParams, estimate: ClassNumberEstimate | None) -> AutoNovelParams:
    """With ``num_novel`` estimate, ``config`` whose C^u (``n_new_classes``) is the estimate: head 2, the I.L.
    extension of head 1 and the k-means baselines get that many clusters; otherwise ``config`` unchanged."""
    if config.num_novel != "estimate" or estimate is None:
        return config
    return replace(config, n_new_classes=estimate.k)


def estimate_step(conf: AutoNovelParams, result: ReplicateResult, key: str, labelled: Tensor, labels: Tensor,
                  unlabelled: Tensor, device: torch.device) -> AutoNovelParams:
    """One split's C^u step, before its k-means baselines and joint steps: when :func:`estimates_cu` (``num_novel``
    estimate / report on a wired data path), DTC's estimate (:func:`class_number`) from the features (N, D) of the
    labelled images, their classes (N,) and the features (M, D) of the split's unlabelled images, recorded in
    ``result.estimates[key]`` beside the true ``conf.num_new``; returns ``conf`` with C^u the estimate (estimate:
    ``result.used_estimate`` set) or unchanged (report, or nothing estimated). ``conf.num_new`` must be the split's
    true C^u on entry."""
    if not estimates_cu(conf):
        return conf
    est = class_number(conf, labelled, labels, unlabelled, device)
    result.estimates[key], result.true_num_new[key] = est, conf.num_new
    if conf.num_novel != "estimate":
        return conf
    result.used_estimate = True
    return estimated_config(conf, est)


def run_alphabets(config: AutoNovelParams, device: torch.device, data: NovelData | None = None) -> ReplicateResult:
    """One OmniGlot replicate (module docstring): metric step, then each evaluation alphabet in turn."""
    started = time.perf_counter()
    background = with_alphabet(data if data is not None else load_data(config), replace(config, alphabet=""))
    metric, h_metric = run_stage("metric", config, device, data=background if config.nproc == 1 else None)
    result = ReplicateResult(config.seed, {}, 0.0, {"metric": h_metric})
    alphabets = evaluation_alphabets(config)
    result.n_alphabets = len(alphabets)
    probes = None
    if estimates_cu(config):        # the background characters the estimate of C^u probes, one draw per replicate
        x_l, y_l = background.labelled_set.tensors
        rows = torch.isin(y_l, probe_classes(config, torch.unique(y_l)))
        probes = (x_l[rows], y_l[rows])

    def alphabet_data(alphabet: str) -> tuple[AutoNovelParams, NovelData]:
        d = with_alphabet(background, replace(config, alphabet=alphabet))
        y_u = d.unlabelled("train")[1]
        return replace(config, alphabet=alphabet, n_new_classes=int(y_u.max()) + 1), d

    _per_split(result, config, device, alphabets, alphabet_data, metric,
               lambda conf: metric_to_supervised(conf, metric.state_dict()), probes)
    result.seconds = time.perf_counter() - started
    return result


def _per_split(result: ReplicateResult, config: AutoNovelParams, device: torch.device, splits: Sequence[str],
               split_data: Callable[[str], tuple[AutoNovelParams, Any]], features_model: nn.Module,
               joint_init: Callable[[AutoNovelParams], dict[str, Tensor]],
               probes: tuple[Any, Tensor] | None = None) -> None:
    """For each unlabelled split (an OmniGlot alphabet, an ImageNet subset) in turn: k-means on
    ``features_model``'s features of its images and the joint step of every variant from ``joint_init``, each
    scored on the split's images; ``result.metrics[f"{name}@{split}"]`` per split and ``[name]`` the mean over
    the splits (Table 3's numbers).

    C^u unknown (Table 6): ``probes`` = (the labelled images the estimate probes, a tensor (N, ...) or a dataset
    of (network input, class), their classes (N,)), None when C^u is not estimated. Their features are computed
    once; per split, before its k-means and joint steps, :func:`estimate_step` estimates the split's C^u from them
    and the split's unlabelled features (``conf.num_new``, the split's true C^u, recorded beside it) under the
    key ``split`` and, with ``num_novel`` estimate, sizes that split's heads and k-means by it."""
    per: dict[str, list[dict[str, float]]] = {}
    feats_l = outputs(features_model, probes[0], config, device)["features"] if probes is not None else None
    for split in splits:
        conf, d = split_data(split)
        x_u, y_u = d.unlabelled("train")
        feats = outputs(features_model, x_u, conf, device)["features"] if config.kmeans or probes is not None else None
        if probes is not None:
            conf = estimate_step(conf, result, split, feats_l, probes[1], feats, device)
        local = d if conf.nproc == 1 else None
        state = joint_init(conf)
        found: dict[str, dict[str, float]] = {}
        if config.kmeans:
            found["kmeans-scratch"] = _s(kmeans_cluster_scores(feats, y_u, conf.num_new, conf.seed))
        for name in config.variants:
            model, history = run_stage("joint", variant_config(conf, name), device, data=local, init=state)
            found[name] = _s(novel_scores(model, d, variant_config(conf, name), device)[0])
            result.histories[f"{name}@{split}"] = history
        for name, scores in found.items():
            result.metrics[f"{name}@{split}"] = scores
            per.setdefault(name, []).append(scores)
    for name, rows in per.items():
        result.metrics[name] = {m: sum(r[m] for r in rows) / len(rows) for m in rows[0]}


def run_subsets(config: AutoNovelParams, device: torch.device, data: NovelImageNet | None = None
                ) -> ReplicateResult:
    """One ImageNet replicate (Table 3): no step 1; the supervised step from scratch on the 882 labelled classes
    (every stage trained: the released code's starting point, an ImageNet-882 classifier), once; then, for
    each 30-class subset (``config.subset``, or A, B and C in turn), k-means on the supervised features (Table 3
    row 1) and the joint step of every variant from the supervised weights (stages 1-3 frozen), scored on
    the subset's train images. ``metrics[name]`` is the mean over the subsets. C^u unknown (Table 6,
    :func:`estimates_cu`): ``estimate_labelled_classes`` of the 882 classes drawn once (DTC: 82 classes held out
    from its classifier), and per subset DTC's estimate from their and the subset's supervised features, before
    the subset's k-means and joint steps (:func:`_per_split`)."""
    started = time.perf_counter()
    subsets = [config.subset] if config.subset else list(IMAGENET_SUBSETS)
    labelled = load_imagenet(config, "") if data is None else replace_split(data, [])
    sup, h_sup = run_stage("supervised", replace(config, subset=""), device,
                           data=labelled if config.nproc == 1 else None, init=None)
    state = {k: v.detach().clone() for k, v in sup.state_dict().items()}
    result = ReplicateResult(config.seed, {}, 0.0, {"supervised": h_sup})
    probes = None
    if estimates_cu(config):        # DTC's 82 probed classes: here drawn from the 882 (centre crops), once
        probes = labelled.labelled_eval(probe_classes(config, torch.arange(config.n_labelled_classes)))

    def subset_data(subset: str) -> tuple[AutoNovelParams, NovelImageNet]:
        conf = replace(config, subset=subset)
        return conf, load_imagenet(conf, check_new=True)      # conf.num_new: the subset's true C^u

    _per_split(result, config, device, subsets, subset_data, sup, lambda conf: state, probes)
    result.seconds = time.perf_counter() - started
    return result


def run_replicate(params: AutoNovelParams, seed: int, device: torch.device, keep: bool = False,
                  data: NovelData | None = None) -> ReplicateResult:
    """Every step, baseline and variant of replicate ``seed`` (module docstring)."""
    config = config_for(params, seed)
    if config.data == "omniglot":
        return run_alphabets(config, device, data)
    if config.data == "imagenet":
        return run_subsets(config, device, data)
    started = time.perf_counter()
    data = data if data is not None else load_data(config)
    local = data if config.nproc == 1 else None     # torchrun processes load the data themselves
    rot, h_rot = run_stage("rotnet", config, device, data=local)
    sup, h_sup = run_stage("supervised", config, device, data=local, init=rot.state_dict())
    scratch, h_scr = run_stage("supervised", variant_config(config, "no-selfsup"), device, data=local, init=None)
    states = {True: {k: v.detach().clone() for k, v in sup.state_dict().items()},
              False: {k: v.detach().clone() for k, v in scratch.state_dict().items()}}
    result = ReplicateResult(seed, {}, 0.0, {"rotnet": h_rot, "supervised": h_sup, "supervised-scratch": h_scr})
    x_u, y_u = data.unlabelled("train")
    sup_feats = outputs(sup, x_u, config, device)["features"]
    if estimates_cu(config):      # App. E: C^u estimated from the supervised step's features (DTC)
        x_l, y_l = data.labelled_set.tensors
        config = estimate_step(config, result, "", outputs(sup, x_l, config, device)["features"], y_l, sup_feats,
                               device)
    if params.kmeans:
        k = config.num_new
        result.metrics["kmeans-pixels"] = _s(kmeans_cluster_scores(x_u.float(), y_u, k, seed))
        result.metrics["kmeans-scratch"] = _s(kmeans_cluster_scores(outputs(scratch, x_u, config, device)["features"],
                                                                    y_u, k, seed))
        result.metrics["kmeans-selfsup"] = _s(kmeans_cluster_scores(sup_feats, y_u, k, seed))
    for name in params.variants:
        vconf = variant_config(config, name)
        model, history = run_stage("joint", vconf, device, data=local, init=states[vconf.selfsup])
        scores, _ = novel_scores(model, data, vconf, device)
        result.metrics[name] = _s(scores)
        result.histories[name] = history
        if vconf.incremental:
            result.metrics[f"{name}-test"] = incremental_scores(model, data, vconf, device)
            if keep:
                result.il_model = model
        if keep and name == params.variants[0]:
            result.model = model
    if keep:
        result.data, result.sup_features = data, sup_feats
    result.seconds = time.perf_counter() - started
    return result


def run_replicates(params: AutoNovelParams, device: torch.device, keep_first: bool = True,
                   report: Callable[[str], None] | None = print) -> list[ReplicateResult]:
    data = load_data(params)
    results = []
    for i, seed in enumerate(params.seeds):
        r = run_replicate(params, seed, device, keep=keep_first and i == 0, data=data)
        results.append(r)
        if report is not None:
            shown = ", ".join(f"{k} {v['acc']:.3f}" for k, v in r.metrics.items() if "acc" in v)
            report(f"seed {seed}: ACC {shown} ({r.seconds:.1f} s)")
    return results


def values(results: Sequence[ReplicateResult], name: str, metric: str = "acc") -> list[float]:
    return variant_values([r.metrics for r in results], name, metric)


def aggregate(params: AutoNovelParams, results: Sequence[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {metric: {"mean", "std", "n"}}}`` for ``metrics.json``, in percent as the thesis; with C^u
    estimated (``num_novel`` estimate / report), also ``<data>/estimated-k``: the estimate ``num_new``, the true
    ``true_num_new`` and ``abs_error`` (numbers of classes, OmniGlot: means over the alphabets). The ids end in
    ``-estimated-k`` only when the replicates' heads were sized by the estimate (``used_estimate``; a mix is an
    error)."""
    estimated = all(r.used_estimate for r in results)
    if not estimated and any(r.used_estimate for r in results):
        raise ValueError("aggregate: some replicates trained with the estimated C^u and some with the known one")
    out = percent_summary([r.metrics for r in results],
                          {n: experiment_id(params, n, estimated) for n in results[0].metrics})
    if all(r.estimates for r in results):
        out[f"{params.data}/estimated-k"] = summarize_seeds({"k": [estimate_summary(r) for r in results]})["k"]
    return out


def estimate_summary(result: ReplicateResult) -> dict[str, float]:
    """One replicate's estimated C^u, the true C^u and the absolute error (means over OmniGlot's alphabets)."""
    keys = list(result.estimates)
    est = [result.estimates[k].k for k in keys]
    true = [result.true_num_new[k] for k in keys]
    return {"num_new": sum(est) / len(keys), "true_num_new": sum(true) / len(keys),
            "abs_error": sum(abs(a - b) for a, b in zip(est, true, strict=True)) / len(keys)}


def estimate_rows(results: Sequence[ReplicateResult]) -> list[list[Any]]:
    """One row per replicate and split (``""`` on the unsplit paths; OmniGlot's alphabets, ImageNet's subsets):
    seed, split, estimated C^u, true C^u, the candidates c maximising the probe ACC and the silhouette, the chosen
    candidate, its probe ACC and its silhouette (the columns of :data:`ESTIMATE_COLUMNS`)."""
    return [[r.seed, key, e.k, r.true_num_new[key], e.candidates[e.acc_index], e.candidates[e.cvi_index],
             e.candidates[e.chosen], e.probe_acc[e.chosen], e.silhouette[e.chosen]]
            for r in results for key, e in r.estimates.items()]


#: the header of :func:`estimate_rows`
ESTIMATE_COLUMNS = ("seed", "split", "estimated C^u", "true C^u", "c at max probe ACC", "c at max silhouette",
                    "chosen c", "probe ACC", "silhouette")


def label(name: str) -> str:
    return BASELINES.get(name) or (VARIANTS[name][0] if name in VARIANTS else name)


#: (id, claim, a, b, expected): a's ACC minus b's ACC on the unlabelled images, per replicate.
CLAIMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("bce-essential", "the ranking-statistics BCE is essential (Table 1 CIFAR-10: 90.4 vs 26.2 w/o BCE)",
     "full", "no-bce", "higher"),
    ("mse-helps", "the consistency helps (Table 1: 90.4 vs 82.6 w/o Con)", "full", "no-mse", "higher"),
    ("ce-helps", "the labelled CE in the joint step helps (Table 1: 90.4 vs 84.7 w/o CE)", "full", "no-ce", "higher"),
    ("selfsup-helps", "RotNet self-supervision helps (Table 1: 90.4 vs 89.4 w/o S.S.)", "full", "no-selfsup",
     "higher"),
    ("il-helps", "incremental learning helps the clustering (Table 1: 91.7 vs 90.4)", "il", "full", "higher"),
    ("beats-kmeans-selfsup", "AutoNovel beats k-means on the same self-supervised + supervised features "
     "(Table 2: 90.4 vs 72.5)", "full", "kmeans-selfsup", "higher"),
    ("beats-kmeans-scratch", "AutoNovel beats k-means on a network trained on the labelled classes only "
     "(Table 2: 90.4 vs 65.5)", "full", "kmeans-scratch", "higher"),
    ("k5>k1", "k = 5 beats k = 1 in the ranking statistics (Fig. 4: every k but 1 is stable)", "full", "k1", "higher"),
)


def claim_verdicts(results: Sequence[ReplicateResult]) -> list[Verdict]:
    """The claims of :data:`CLAIMS` whose two variants were run, as paired verdicts over replicates."""
    return variant_verdicts([r.metrics for r in results], CLAIMS)


def verdict_sentence(v: Verdict) -> str:
    """One sentence per verdict (:func:`thesislib.replication.variants.verdict_sentence`)."""
    return variant_sentence(v, "ACC difference")
