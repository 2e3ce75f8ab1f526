"""What the notebook orchestrates: one replicate (train, probe, spot), the claims and their verdicts.

:func:`run_replicate` trains the autoencoder and damage & repair on the replicate's unlabelled
images, probes every conv layer of the trained C and of a randomly initialised C of the same
architecture (same probe data, same seed), and measures C on held-out corruptions. The claims
(:data:`CLAIMS`) become paired verdicts over the replicates in :func:`claim_verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from thesislib.data.stl10 import STL10_FOLDS
from thesislib.engine import History
from thesislib.eval.streaming_probe import PROBE_PROTOCOL_SIDE, probe_data_stem
from thesislib.methods.spotting_artifacts.config import STL10_TASKS, SpottingArtifactsParams, replicate
from thesislib.methods.spotting_artifacts.data import ChapterData, chapter_data
from thesislib.methods.spotting_artifacts.evaluate import (
    check_transfer_data,
    probe_scores,
    random_discriminator,
    spotting_accuracy,
    transfer_results,
)
from thesislib.methods.spotting_artifacts.model import DamageRepair, Discriminator
from thesislib.methods.spotting_artifacts.train import run_stage
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict
from thesislib.repro import seed_everything

__all__ = ["CLAIMS", "TABLE31_SWITCHES", "ReplicateResult", "ablation_tags", "aggregate", "claim_verdicts",
           "experiment_id", "game_sentences", "random_experiment_id", "run_replicate", "stl10_frozen_tags",
           "summary_sentences", "transfer_experiment_ids", "verdict_sentence"]

CLAIMS: dict[str, str] = {
    "spots-corruption": "C tells held-out repaired corruptions from autoencoded real images above chance (50%)",
    "spots-unrepaired": "C tells the same damage decoded without repair from autoencoded real images "
                        "above chance (50%)",
    "mask-head>chance": "C's mask head ranks kept latent positions of held-out repaired corruptions above "
                        "dropped ones (rank AUC above 0.5)",
}
"""Claim ids and their text; the probes add ``probe:<layer>`` (the self-supervised C's linear probe
beats a randomly initialised C's at that layer, Tables 3.4-3.5's "Ours" vs "Random")."""


def probe_claim(layer: str) -> str:
    return f"a linear probe on {layer} of the self-supervised C beats one on a randomly initialised C"


@dataclass
class ReplicateResult:
    """Everything one replicate measured; ``models`` and ``data`` are kept for the figures."""

    seed: int
    probe_ssl: dict[str, float] = field(default_factory=dict)
    probe_random: dict[str, float] = field(default_factory=dict)
    spotting: dict[str, float] = field(default_factory=dict)
    transfer: dict[str, Any] = field(default_factory=dict)
    ae_history: History | None = None
    dr_history: History | None = None
    gen: DamageRepair | None = None
    disc: Discriminator | None = None
    data: ChapterData | None = None


def run_replicate(params: SpottingArtifactsParams, seed: int, device: torch.device) -> ReplicateResult:
    """Train both stages and evaluate replicate ``seed`` (data split, initialisations and masks all seeded)."""
    rep = replicate(params, seed)
    if rep.transfer:
        check_transfer_data(rep)  # a missing transfer data set is reported before the pre-training
    seed_everything(seed)
    data = chapter_data(rep, seed)
    images = data.unlabelled if rep.nproc == 1 else None
    ae_models, ae_history = run_stage(rep, "ae", device, images=images)
    dr_models, dr_history = run_stage(rep, "dr", device, images=images, autoencoder=ae_models["ae"])
    gen, disc = dr_models["gen"].to(device), dr_models["disc"].to(device)
    result = ReplicateResult(seed, ae_history=ae_history, dr_history=dr_history, gen=gen, disc=disc, data=data)
    result.probe_ssl = probe_scores(rep, disc, data, device, seed, "ssl")
    result.probe_random = probe_scores(rep, random_discriminator(rep, seed), data, device, seed, "random")
    result.spotting = spotting_accuracy(rep, gen, disc, data.test_images.to(device), device, seed)
    if rep.transfer:
        result.transfer = transfer_results(rep, disc, device, seed)
    return result


def claim_verdicts(params: SpottingArtifactsParams, results: list[ReplicateResult]) -> list[Verdict]:
    """The paired verdicts over the replicates (probe claims for every probed layer)."""
    out = [paired_verdict(f"probe:{layer}", probe_claim(layer), [r.probe_ssl[layer] for r in results],
                          [r.probe_random[layer] for r in results], expected="higher")
           for layer in params.probe_layers]
    out.append(paired_verdict("spots-corruption", CLAIMS["spots-corruption"],
                              [r.spotting["acc"] for r in results], 0.5, expected="higher"))
    out.append(paired_verdict("spots-unrepaired", CLAIMS["spots-unrepaired"],
                              [r.spotting["acc_unrepaired"] for r in results], 0.5, expected="higher"))
    if params.mask_head:
        # Baseline 0.5 of the rank AUC: the earlier baseline, accuracy 1 − θ of always answering "kept",
        # was beaten by always answering "dropped" (accuracy θ = 0.7), a head that localises nothing.
        out.append(paired_verdict("mask-head>chance", CLAIMS["mask-head>chance"],
                                  [r.spotting["mask_auc"] for r in results], 0.5, expected="higher"))
    return out


TOO_FEW = "too few replicates"
NO_CONFUSION = ("the thesis designs R so that it cannot confuse C (ch. 3: \"in contrast to other adversarial "
                "schemes, we make sure that the repair network cannot confuse the discriminator\")")


def _undetermined(v: Verdict) -> bool:
    return v.label == TOO_FEW


def verdict_sentence(v: Verdict, fmt: str = "+.3f") -> str:
    """One generated sentence per verdict: the claim, what the interval says, whether it held
    (*undetermined* with fewer than two replicates, e.g. the full configs' single run)."""
    if _undetermined(v):
        return (f"**{v.claim}**: {v.n} replicate(s), no interval: the claim is undetermined (n={v.n}; a verdict "
                "needs 2 or more replicates).")
    state = "holds" if v.holds else "does not hold"
    return (f"**{v.claim}**: mean paired difference {v.interval_text(fmt)} over {v.n} replicates, "
            f"verdict *{v.label}* (expected *{v.expected}*), so the claim {state} at this scale.")


def summary_sentences(verdicts: list[Verdict]) -> list[str]:
    """The notebook's summary of the probe verdicts (Tables 3.4-3.5's effect), generated from them."""
    probes = [v for v in verdicts if v.id.startswith("probe:")]
    held = [v for v in verdicts if v.holds]
    if verdicts and all(_undetermined(v) for v in verdicts):
        n = verdicts[0].n
        return [f"With {n} replicate(s) every claim is undetermined (n={n}): no verdict, reproduced or not, "
                "can be drawn; the per-replicate numbers are in the tables above."]
    lines = [f"{len(held)} of {len(verdicts)} claims hold."]
    probe_held = [v.id.split(":")[1] for v in probes if v.holds]
    probe_lower = [v.id.split(":")[1] for v in probes if v.label == "lower"]
    if probe_held:
        lines.append("The self-supervised C's probe beats the random C's at " + ", ".join(probe_held) + ".")
    elif probes and not any(_undetermined(v) for v in probes):
        lines.append("At no probed layer does the self-supervised C's probe beat the random C's: the thesis's "
                     "central effect (Tables 3.4-3.5) is not reproduced at this scale.")
    if probe_lower:
        lines.append("At " + ", ".join(probe_lower) + " the self-supervised C's probe is *lower* than the random "
                     "C's (the opposite of the thesis's effect).")
    return lines


def game_sentences(verdicts: list[Verdict]) -> list[str]:
    """What the spotting verdicts say about the pretext task and the thesis's condition that R cannot
    confuse C (generated from the verdicts; nothing here claims a cause)."""
    by_id = {v.id: v for v in verdicts}
    unrepaired, repaired = by_id["spots-unrepaired"], by_id["spots-corruption"]
    out = []
    if _undetermined(unrepaired) or _undetermined(repaired):
        out.append(f"Whether C spots damage is undetermined with {repaired.n} replicate(s) (n={repaired.n}).")
    elif unrepaired.holds and not repaired.holds:
        out.append("C learned the pretext task (it tells un-repaired damage from real images above chance), but "
                   "on repaired damage it is not above chance: R confuses C. " + NO_CONFUSION[0].upper()
                   + NO_CONFUSION[1:] + "; that condition fails at this scale.")
    elif unrepaired.holds and repaired.holds:
        out.append("C learned the pretext task and still spots repaired damage above chance: R does not confuse "
                   "C, the thesis's condition.")
    elif repaired.holds:
        out.append("C spots repaired damage above chance but not the same damage decoded without repair.")
    else:
        out.append("C does not tell even un-repaired damage from real images above chance here: the pretext "
                   "task itself is not learned at this scale.")
    mask = by_id.get("mask-head>chance")
    if mask is not None:
        if _undetermined(mask):
            out.append(f"Whether its mask head localises the dropped positions is undetermined (n={mask.n}).")
        elif mask.holds:
            out.append("Its mask head localises the dropped positions above chance.")
        else:
            out.append("Its mask head does not localise the dropped positions above chance (rank AUC not above "
                       "0.5).")
    return out


DROP_ROWS = {0.1: "g-drop-0.1", 0.3: "h-drop-0.3", 0.7: "i-drop-0.7", 0.9: "j-drop-0.9"}
"""Table 3.1's drop-rate rows (the baseline is θ = 0.5)."""
TABLE31_BASE_DROP_RATE = 0.5
"""Table 3.1's baseline θ."""
TABLE31_SWITCHES: dict[str, dict[str, Any]] = {
    "a-input-as-real": {"real_source": "input"}, "b-no-mask": {"mask_head": False},
    "c-local-repair": {"repair": "local"}, "d-3x3-encoder": {"encoder_kernel": 3}, "e-no-gating": {"gated": False},
    "f-no-history": {"history": False}, **{row: {"drop_rate": rate} for rate, row in DROP_ROWS.items()}}
"""Table 3.1's rows (a)-(j): the parameter(s) each ablation sets on the baseline (θ = 0.5, autoencoded reals, mask
head, distributed gated repair, 2x2 encoder, history); ``configs/spotting_artifacts/full_stl10_ablations.yaml``
lists them as ``-p`` lines."""
TABLE31_EPOCHS = 200
"""Table 3.1's supervised transfer: 200 epochs (``fold_epochs``)."""
TABLE31_LR = 1e-3
"""Table 3.1's supervised transfer: Adam lr (``fold_lr``; a decision of full_stl10_ablations.yaml, the thesis gives
none)."""
TABLE31_BATCH = 128
"""Table 3.1's supervised transfer: batch (``fold_batch_size``; a decision, as :data:`TABLE31_LR`)."""


def stl10_frozen_tags(params: SpottingArtifactsParams) -> list[str]:
    """Table 3.1's transfer settings that differ from the protocol recorded under its rows: ``ep<k>``
    (``fold_epochs`` not :data:`TABLE31_EPOCHS`), ``no-rescale`` (``transfer_rescale`` off), ``lr<x>`` (``fold_lr``
    not :data:`TABLE31_LR`), ``bs<k>`` (``fold_batch_size`` not :data:`TABLE31_BATCH`). The pre-training's length
    (``iterations``, ``ae_iterations``) is not tagged, as in every chapter's ids: the record's config names it."""
    tags = [] if params.fold_epochs == TABLE31_EPOCHS else [f"ep{params.fold_epochs}"]
    if not params.transfer_rescale:
        tags.append("no-rescale")
    if params.fold_lr != TABLE31_LR:
        tags.append(f"lr{params.fold_lr:g}")
    if params.fold_batch_size != TABLE31_BATCH:
        tags.append(f"bs{params.fold_batch_size}")
    return tags


def ablation_tags(params: SpottingArtifactsParams, base_drop_rate: float) -> list[str]:
    """Table 3.1's letters for every switch that differs from the baseline (``base_drop_rate`` θ, distributed
    gated repair, mask head, history, autoencoded reals, 2x2 encoder); ``[]`` for the baseline itself."""
    tags = []
    if params.real_source == "input":
        tags.append("a-input-as-real")
    if not params.mask_head:
        tags.append("b-no-mask")
    if params.repair == "local":
        tags.append("c-local-repair")
    elif params.repair == "none":
        tags.append("no-repair")
    if params.encoder_kernel == 3:
        tags.append("d-3x3-encoder")
    if not params.gated:
        tags.append("e-no-gating")
    if not params.history:
        tags.append("f-no-history")
    if params.drop_rate != base_drop_rate:
        tags.append(DROP_ROWS.get(params.drop_rate, f"drop-{params.drop_rate:g}"))
    return tags


def experiment_id(params: SpottingArtifactsParams) -> str:
    """Ids of ``thesislib/replication/spotting_artifacts.yaml``, one per ablation setting so that runs of
    different ablations never share an id. STL-10: ``stl10/ablation-baseline`` (θ = 0.5) or
    ``stl10/ablation-<row>`` (Table 3.1's rows (a)-(j); several switches joined by ``+``, which no
    table row has). ImageNet: ``imagenet/damage-repair`` at the thesis's setting (θ = 0.7), a ``+``-suffix
    per changed switch and per probe protocol other than Table 3.4's (:func:`probe_tags`: ``+reduced-probe`` for the
    cached probe). The smoke id ``digits<size>/...`` cannot collide with them.

    With ``probe_data: places205`` the ImageNet-trained C's probes read Places205: ``places/damage-repair``
    (Table 3.5's row), the same tags.

    A full STL-10 run records the per-layer probes (``probe_conv*``) under this id, and with ``transfer:
    [stl10_frozen]`` Table 3.1's ``stl10_acc`` under :func:`transfer_experiment_ids`' ``stl10_frozen`` id (this id
    at the protocol's 200 epochs); Table 3.2's ten-fold protocol (``transfer: [stl10_folds]``) under its
    ``frozen`` / ``finetuned`` ids."""
    if params.data == "stl10":
        tags = ablation_tags(params, TABLE31_BASE_DROP_RATE)
        return "stl10/ablation-" + ("+".join(tags) if tags else "baseline")
    tags = ablation_tags(params, 0.7)
    stem = f"digits{params.image_size}" if params.data == "smoke" else probe_data_stem(params.data, params.probe_data)
    return f"{stem}/damage-repair" + "".join("+" + t for t in tags + probe_tags(params))


def probe_tags(params: SpottingArtifactsParams) -> list[str]:
    """ImageNet probe protocols other than Table 3.4's: ``reduced-probe`` (``probe_mode: cached``:
    ``probe_per_class`` images per class, resized whole to ``image_size``), ``probe<side>`` (streaming at another
    crop side than :data:`PROBE_PROTOCOL_SIDE`)."""
    if params.data != "imagenet":
        return []
    if params.probe_mode != "streaming":
        return ["reduced-probe"]
    side = params.probe_size or params.image_size
    return [] if side == PROBE_PROTOCOL_SIDE else [f"probe{side}"]


def random_experiment_id(params: SpottingArtifactsParams) -> str | None:
    """The id of the random C's ImageNet probes, Table 3.4's "Random" row: ``imagenet/random`` with the probe
    protocol's tags (:func:`probe_tags`: ``+reduced-probe`` for the cached probe, off the table); ``places/random``
    (Table 3.5's row) with ``probe_data: places205``; None off ImageNet (the smoke and STL-10 random probes stay
    ``random_probe_*`` metrics under :func:`experiment_id`)."""
    if params.data != "imagenet":
        return None
    return probe_data_stem("imagenet", params.probe_data) + "/random" + "".join("+" + t for t in probe_tags(params))


def transfer_experiment_ids(params: SpottingArtifactsParams) -> dict[str, str]:
    """Ids of the transfer results in ``replication/spotting_artifacts.yaml``: ``voc`` -> ``voc/ours`` (Table 3.3,
    C pre-trained on ImageNet at the thesis's setting; ``voc/stl10-pretrained`` for a C trained on STL-10, which
    no table has), ``frozen`` / ``finetuned`` -> ``stl10/folds-<variant>`` (Table 3.2); a ``+``-suffix per switch
    that differs from the thesis's setting (θ = 0.7), as :func:`experiment_id`, and one per protocol switch:
    ``+no-rescale`` (``transfer_rescale`` off: the fine-tuned results without Krähenbühl's rescaling) and
    ``+folds<k>`` (``fold_limit`` k < 10: the mean / SD over k folds, not Table 3.2's ten), so that such runs are
    never recorded beside the thesis's protocol. ``stl10_frozen`` -> Table 3.1's row of the run's ablation
    (:func:`experiment_id`: ``stl10/ablation-baseline`` at θ = 0.5, ``stl10/ablation-<row>`` for one switch of
    :data:`TABLE31_SWITCHES`, an id no table has for anything else), a ``+``-suffix per transfer setting off the
    protocol (:func:`stl10_frozen_tags`: ``+ep<k>``, ``+no-rescale``, ``+lr<x>``, ``+bs<k>``; a key only for data
    stl10, the only data ``stl10_frozen`` runs on)."""
    suffix = "".join("+" + t for t in ablation_tags(params, 0.7))
    rescale = "" if params.transfer_rescale else "+no-rescale"
    folds = f"+folds{params.fold_limit}" if 0 < params.fold_limit < STL10_FOLDS else ""
    voc = "voc/ours" if params.data == "imagenet" else f"voc/{params.data}-pretrained"
    ids = {"voc": voc + suffix + rescale, "frozen": "stl10/folds-frozen" + suffix + folds,
           "finetuned": "stl10/folds-finetuned" + suffix + folds + rescale}
    if params.data == "stl10":
        ids["stl10_frozen"] = experiment_id(params) + "".join("+" + t for t in stl10_frozen_tags(params))
    return ids


def aggregate(params: SpottingArtifactsParams, results: list[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """Mean / std / n over replicates of every metric (the ``metrics.json`` schema ``thesislib record``
    reads; metric names as in ``replication/spotting_artifacts.yaml``: ``probe_<layer>`` in %; the transfer
    results under :func:`transfer_experiment_ids`: ``voc07_cls_map``, ``voc07_det_map``, ``voc12_seg_miou``
    and, per Table 3.2 variant, ``stl10_acc`` (mean over the folds) and ``stl10_acc_sd`` (their SD); Table 3.1's
    ``stl10_acc`` of ``stl10_frozen``, merged into the main id's row when the ids agree). On ImageNet the
    random C's probes are also recorded as ``probe_<layer>`` under :func:`random_experiment_id` (Table 3.4's Random
    row, Table 3.5's with ``probe_data: places205``), besides the ``random_probe_<layer>`` metrics under the main
    id."""
    ids = transfer_experiment_ids(params)
    random_id = random_experiment_id(params)
    runs: dict[str, list[dict[str, float]]] = {}
    for r in results:
        rows: dict[str, dict[str, float]] = {}  # this replicate's metrics per id
        row = rows.setdefault(experiment_id(params), {})
        row.update({f"probe_{k}": 100.0 * v for k, v in r.probe_ssl.items()})
        row.update({f"random_probe_{k}": 100.0 * v for k, v in r.probe_random.items()})
        row.update({f"spot_{k}": v for k, v in r.spotting.items()})
        voc = {k: float(v) for k, v in r.transfer.items() if k not in STL10_TASKS}
        if voc:
            rows.setdefault(ids["voc"], {}).update(voc)
        for variant, folds in r.transfer.get("stl10_folds", {}).items():
            rows.setdefault(ids[variant], {}).update({"stl10_acc": folds["mean"], "stl10_acc_sd": folds["std"]})
        if "stl10_frozen" in r.transfer:
            rows.setdefault(ids["stl10_frozen"], {})["stl10_acc"] = float(r.transfer["stl10_frozen"])
        if random_id is not None and r.probe_random:
            rows.setdefault(random_id, {}).update({f"probe_{k}": 100.0 * v for k, v in r.probe_random.items()})
        for key, metrics in rows.items():
            runs.setdefault(key, []).append(metrics)
    return summarize_seeds(runs)
