"""The notebook's experiments: replicates of RotNet + LSD-C variants, the k-means baselines, and the verdicts.

One *replicate* (a seed) pre-trains RotNet on every image, scores k-means (10 restarts) on the raw
pixels and on the RotNet features (Table 2's and Table 6's baselines), then trains every variant of
``params.variants`` (:data:`~thesislib.methods.lsdc.config.VARIANTS`: similarity, space, composition,
consistency) from the same RotNet weights and the same head initialisation, and scores each by ACC,
NMI and ARI on the whole dataset (thesis ch. 7 eq. 9). A variant whose configuration equals one already
run (e.g. ``none`` when the default composition is none) reuses that result.

:data:`CLAIMS` turns the thesis's Tables 4 and 6 into paired verdicts over replicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from thesislib.config import ConfigError, replace
from thesislib.engine import History
from thesislib.eval.clustering import kmeans_cluster_scores, silhouette, size_balance
from thesislib.methods.lsdc.config import VARIANTS, LSDCParams, config_for, experiment_id, variant_config
from thesislib.methods.lsdc.data import LSDCData, load_data
from thesislib.methods.lsdc.evaluate import predict, score_model
from thesislib.methods.lsdc.train import clustering_model, initial_features, median_sq_distance, run_stage
from thesislib.replication.variants import percent_summary, variant_values, variant_verdicts
from thesislib.replication.variants import verdict_sentence as variant_sentence
from thesislib.replication.verdicts import Verdict

BASELINES = ("kmeans-pixels", "kmeans-rotnet")


@dataclass(eq=False)
class ReplicateResult:
    """One replicate: ``metrics[variant] = {"acc", "nmi", "ari"}``, the histories, and (first
    replicate) the trained default network, the data and its cluster assignments for the figures."""

    seed: int
    metrics: dict[str, dict[str, float]]
    seconds: float
    histories: dict[str, History]
    model: nn.Module | None = field(default=None, repr=False)
    data: LSDCData | None = field(default=None, repr=False)
    clusters: Tensor | None = field(default=None, repr=False)
    rotnet_features: Tensor | None = field(default=None, repr=False)
    rotnet_state: dict[str, Tensor] | None = field(default=None, repr=False)   #: (kept) the pre-trained weights
    l2_tau: float = 0.0          #: the L2 variant's τ (the matched rule's value, logged by its run)
    l2_grid: list[GridPoint] = field(default_factory=list)   #: the grid search's points, when it ran


def mean_pos_rate(history: History) -> float:
    """The share of positive pairwise targets over a run's training records (A's diagonal included)."""
    return float(history.get("pos_rate").mean())


def degenerate_l2(results: Sequence[ReplicateResult], batch_size: int) -> bool:
    """True when an L2 run's targets are (nearly) the identity: a mean positive rate below 2 / B, i.e.
    under one other positive per row on average. The ``knn>l2`` claim is withheld then."""
    runs = [r.histories["l2"] for r in results if "l2" in r.histories]
    return any(mean_pos_rate(h) < 2.0 / batch_size for h in runs)


def _scores(s: Any) -> dict[str, float]:
    return {"acc": s.acc, "nmi": s.nmi, "ari": s.ari}


@dataclass(frozen=True)
class GridPoint:
    """One value of the L2 threshold grid: g, τ = g x median, the silhouette and the size balance of its final
    clustering, the criterion (:func:`thesislib.eval.balanced_silhouette`: (silhouette + 1) / 2 x balance),
    its mean positive rate, and its ACC (reported only, never read by the selection)."""

    g: float
    tau: float
    silhouette: float
    balance: float
    criterion: float
    pos_rate: float
    acc: float


def l2_grid_search(params: LSDCParams, data: LSDCData, device: torch.device, state: dict[str, Tensor]
                   ) -> tuple[GridPoint, list[GridPoint], nn.Module, History]:
    """The thesis's grid search for the L2 threshold, without labels (config docstring): for each g of
    ``params.l2_tau_grid`` an L2 run with τ = g x the median squared distance of the initial clean-view
    features, from the pre-trained ``state``; the chosen point maximises the silhouette of argmax p on the
    final features, rescaled to [0, 1] and multiplied by the balance of the K cluster sizes (K is known; the
    silhouette alone prefers merging clusters), the first on ties. Returns (chosen, every point, the chosen
    run's model, history)."""
    if not params.l2_tau_grid:
        raise ValueError("l2_grid_search: l2_tau_grid is empty")
    l2 = variant_config(params, "l2")
    unit = median_sq_distance(initial_features(l2, clustering_model(l2, state), data, device), l2.batch_size)
    points: list[GridPoint] = []
    best: tuple[float, nn.Module, History] | None = None
    for g in params.l2_tau_grid:
        conf = replace(l2, l2_tau=g * unit)
        model, history = run_stage("lsdc", conf, device, data=data if conf.nproc == 1 else None, init=state)
        out = predict(model, data, conf, device)
        clusters = out["probs"].argmax(1)
        s = silhouette(out["features"], clusters, seed=conf.seed)
        balance = size_balance(clusters, data.num_clusters)
        criterion = (s + 1.0) / 2.0 * balance               # thesislib.eval.balanced_silhouette
        points.append(GridPoint(g, g * unit, s, balance, criterion, mean_pos_rate(history),
                                score_model(model, data, conf, device)[0].acc))
        if best is None or criterion > best[0]:
            best = (criterion, model, history)
    chosen = max(points, key=lambda p: p.criterion)       # max keeps the first of equal values
    return chosen, points, best[1], best[2]


def _valid_variant(config: LSDCParams, name: str) -> LSDCParams | None:
    """The variant's parameters, or None where it cannot apply to this data (e.g. RICAP on Reuters-10K)."""
    try:
        return variant_config(config, name)
    except ConfigError:
        return None


def run_replicate(params: LSDCParams, seed: int, device: torch.device, keep: bool = False,
                  data: LSDCData | None = None) -> ReplicateResult:
    """RotNet, the k-means baselines and every variant of ``params.variants`` for replicate ``seed``."""
    config = config_for(params, seed)
    started = time.perf_counter()
    data = data if data is not None else load_data(config)
    local = data if config.nproc == 1 else None     # torchrun processes load the data themselves
    rotnet, h_rot = run_stage(config.pretrain, config, device, data=local)     # RotNet, or the DAE
    state = {k: v.detach().clone() for k, v in rotnet.state_dict().items()}
    metrics: dict[str, dict[str, float]] = {}
    histories = {config.pretrain: h_rot}
    feats = predict(rotnet, data, config, device, head=None)["features"]
    if params.kmeans:
        k = data.num_clusters
        metrics["kmeans-pixels"] = _scores(kmeans_cluster_scores(data.images.float(), data.labels, k, seed))
        metrics["kmeans-rotnet"] = _scores(kmeans_cluster_scores(feats, data.labels, k, seed))
    trained: dict[LSDCParams, str] = {}
    result = ReplicateResult(seed, metrics, 0.0, histories)
    for name in params.variants:
        vconf = variant_config(config, name)
        if vconf in trained:          # same configuration as an earlier variant: same run
            metrics[name] = metrics[trained[vconf]]
            continue
        if vconf.similarity == "l2" and vconf.l2_tau_grid:
            _, result.l2_grid, model, history = l2_grid_search(vconf, data, device, state)
        else:
            model, history = run_stage("lsdc", vconf, device, data=local, init=state)
        scores, clusters = score_model(model, data, vconf, device)
        metrics[name], histories[name] = _scores(scores), history
        if vconf.similarity == "l2":
            result.l2_tau = float(history.get("l2_tau")[-1])
        trained[vconf] = name
        if keep and result.model is None:
            result.model, result.clusters = model, clusters
    for name in VARIANTS:             # variants not run that equal a run one (none = knn when composition is none)
        if name not in metrics and _valid_variant(config, name) in trained:
            metrics[name] = metrics[trained[variant_config(config, name)]]
    if keep:
        result.data, result.rotnet_features, result.rotnet_state = data, feats, state
    result.seconds = time.perf_counter() - started
    return result


def run_replicates(params: LSDCParams, device: torch.device, keep_first: bool = True,
                   report: Callable[[str], None] | None = print) -> list[ReplicateResult]:
    """Every replicate of ``params.seeds`` (the dataset is loaded once); the first keeps its model."""
    data = load_data(params)
    results = []
    for i, seed in enumerate(params.seeds):
        result = run_replicate(params, seed, device, keep=keep_first and i == 0, data=data)
        results.append(result)
        if report is not None:
            shown = ", ".join(f"{k} {v['acc']:.3f}" for k, v in result.metrics.items())
            report(f"seed {seed}: ACC {shown} ({result.seconds:.1f} s)")
    return results


def values(results: Sequence[ReplicateResult], variant: str, metric: str = "acc") -> list[float]:
    return variant_values([r.metrics for r in results], variant, metric)


def aggregate(params: LSDCParams, results: Sequence[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {metric: {"mean", "std", "n"}}}`` for ``metrics.json``, in percent as the thesis."""
    return percent_summary([r.metrics for r in results], {n: experiment_id(params, n) for n in results[0].metrics})


def variant_label(name: str) -> str:
    return {"kmeans-pixels": "k-means on pixels", "kmeans-rotnet": "k-means on RotNet features"}.get(
        name, VARIANTS[name][0] if name in VARIANTS else name)


#: (id, claim, variant a, variant b, expected): a's ACC minus b's ACC, per replicate.
CLAIMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("beats-kmeans-rotnet", "LSD-C (kNN) beats k-means on the same RotNet features (Table 6: 81.7 vs 14.3)",
     "knn", "kmeans-rotnet", "higher"),
    ("beats-kmeans-pixels", "LSD-C (kNN) beats k-means on the raw data (Table 2: 81.7 vs 22.9)",
     "knn", "kmeans-pixels", "higher"),
    ("knn>l2", "kNN beats L2 pseudo-labels (Table 4: 81.7 vs 70.2)", "knn", "l2", "higher"),
    ("knn>cosine", "kNN beats cosine pseudo-labels (Table 4: 81.7 vs 81.1)", "knn", "cosine", "higher"),
    ("knn>sne", "kNN beats SNE pseudo-labels (Table 4: 81.7 vs 81.5)", "knn", "sne", "higher"),
    ("feat>pred", "pseudo-labels from features beat those from predictions (kNN; Table 4: 81.7 vs 64.7)",
     "knn", "pred-knn", "higher"),
    ("ricap>none", "RICAP composition beats none (Table 4: 81.7 vs 53.7)", "ricap", "none", "higher"),
    ("mixup>none", "MixUp composition beats none (Table 4: 75.3 vs 53.7)", "mixup", "none", "higher"),
    ("mse-helps", "the MSE consistency helps (Table 6: 81.7 vs 80.2 without)", "knn", "no-mse", "higher"),
)


def withheld_claims(results: Sequence[ReplicateResult], batch_size: int) -> dict[str, str]:
    """``{claim id: reason}`` for the claims not judged: ``knn>l2`` when the L2 targets degenerate."""
    if degenerate_l2(results, batch_size):
        return {"knn>l2": f"the L2 pseudo-labels were (nearly) the identity: positive rate below 2/B = "
                          f"{2.0 / batch_size:.4f}"}
    return {}


def claim_verdicts(results: Sequence[ReplicateResult], batch_size: int | None = None) -> list[Verdict]:
    """The claims of :data:`CLAIMS` whose two variants were run, as paired verdicts over replicates;
    with ``batch_size``, less the :func:`withheld_claims`."""
    skip = withheld_claims(results, batch_size) if batch_size is not None else {}
    return variant_verdicts([r.metrics for r in results], [c for c in CLAIMS if c[0] not in skip])


def verdict_sentence(v: Verdict) -> str:
    """One sentence per verdict (:func:`thesislib.replication.variants.verdict_sentence`)."""
    return variant_sentence(v, "ACC difference")
