"""What the notebook orchestrates: one replicate of both experiments, the claims and their verdicts.

:func:`run_replicate` trains every part of the replicate (each a separate engine run), evaluates
test bits/dim, and draws the samples the claims need: X̂ ~ p(X̂) and plain X ~ p(X) for the
recognisability score, colourings of real test X̂ at variance reduction 0 and with MAP. The
claims (:data:`CLAIMS`) become paired verdicts over the replicates in :func:`claim_verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from thesislib.methods.pixelcnn_aux.config import PixelCNNAuxParams, experiment_id, replicate
from thesislib.methods.pixelcnn_aux.data import ImageSplit, gray_images, pyramid_images
from thesislib.methods.pixelcnn_aux.evaluate import (
    PyramidBpd,
    bits_of,
    classify_digits,
    digit_classifier,
    neighbour_difference,
    part_nats,
    pyramid_bpd,
    sample_part,
    two_part_bpd,
)
from thesislib.methods.pixelcnn_aux.model import PartModel
from thesislib.methods.pixelcnn_aux.train import part_items, run_part
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict
from thesislib.repro import seed_everything

__all__ = ["CLAIMS", "ReplicateResult", "aggregate", "claim_verdicts", "run_replicate", "verdict_sentence"]

GRAY_SHARE_LIMIT = 0.25
"""The note's coarse assertion: the grayscale part carries under 25 % of the bound's bits (thesis: 15 %)."""

CLAIMS: dict[str, str] = {
    "gray-share<0.25": "the 4-bit grayscale part carries under 25% of the bound's bits (thesis: 0.459 / 2.98 = 15%)",
    "bound>plain": "the two-part bound is above the plain PixelCNN's bpd (thesis: 2.98 vs 2.92)",
    "recognisable:two-stage>plain": "X̂ samples of the two-stage model are more recognisable digits than the "
                                    "gray of plain PixelCNN samples (mean top probability)",
    "map<vr0:noise": "MAP colourings have less pixel noise than samples at variance reduction 0",
}
"""Claim ids and their text; the pyramid adds, per doubling to side s, ``pyramid-bound-falls:<s>`` (the
whole pyramid's bound per dim, the note's reading of Table 4.2) and ``pyramid-term-falls:<s>`` (the
level's own conditional term per dim; the thesis does not say which it tabulates)."""


@dataclass
class ReplicateResult:
    """Everything one replicate measured; ``samples`` holds uint8 images for the figures."""

    seed: int
    gray: dict[str, float] = field(default_factory=dict)
    pyramid: PyramidBpd | None = None
    recognisable: dict[str, float] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    models: dict[str, PartModel] = field(default_factory=dict)
    samples: dict[str, torch.Tensor] = field(default_factory=dict)
    final_loss: dict[str, float] = field(default_factory=dict)


def _train(params: PixelCNNAuxParams, name: str, split: ImageSplit, device: torch.device,
           result: ReplicateResult) -> PartModel:
    model, history = run_part(params, name, device, images=split.train if params.nproc == 1 else None)
    model = model.to(device)
    result.models[name] = model
    result.final_loss[name] = float(history.last().get("loss", float("nan")))
    return model


def _grayscale(params: PixelCNNAuxParams, split: ImageSplit, device: torch.device, result: ReplicateResult) -> None:
    nats = {}
    for name in ("plain", "gray", "color"):
        model = _train(params, name, split, device, result)
        nats[name] = part_nats(model, part_items(params, name, split.test), device, params.eval_batch_size)
    dims = 3 * params.gray_side ** 2
    bound = two_part_bpd(nats["gray"], nats["color"], dims)
    result.gray = {"plain": bits_of(nats["plain"], dims), "gray": bound.auxiliary, "color": bound.conditional,
                   "bound": bound.total, "gray_share": bound.auxiliary_share,
                   "gray_own_bpd": bits_of(nats["gray"], params.gray_side ** 2)}
    generator = torch.Generator(device=device).manual_seed(10_000 + result.seed)
    n = params.n_samples
    gray_samples = sample_part(result.models["gray"], n, generator)
    result.samples["gray"] = gray_samples
    result.samples["gray_colour"] = sample_part(result.models["color"], n, generator, aux=gray_samples)
    result.samples["plain"] = sample_part(result.models["plain"], n, generator)
    test = split.test if isinstance(split.test, torch.Tensor) else torch.stack([split.test[i] for i in range(n)])
    real = test[: min(n, 16)]
    real_gray = part_items(params, "color", real)
    aux = torch.stack([real_gray[i]["aux"] for i in range(len(real))])
    result.samples["real"], result.samples["real_gray"] = real, aux
    vr0 = sample_part(result.models["color"], len(real), generator, aux=aux)
    map_ = sample_part(result.models["color"], len(real), generator, aux=aux, map=True)
    result.samples["colour_vr0"], result.samples["colour_map"] = vr0, map_
    result.noise = {"vr0": float(neighbour_difference(vr0).mean()), "map": float(neighbour_difference(map_).mean()),
                    "real": float(neighbour_difference(real).mean())}
    if split.train_labels is not None and params.data == "smoke":
        train_gray = torch.stack([part_items(params, "gray", split.train)[i]["x"] for i in range(len(split.train))])
        clf = digit_classifier(train_gray, split.train_labels, seed=result.seed)
        p_two, p_plain = classify_digits(clf, gray_samples), classify_digits(clf, result.samples["plain"])
        p_real = classify_digits(clf, test)
        thr = params.recognisable_p
        result.recognisable = {"two_stage": float(p_two.mean()), "plain": float(p_plain.mean()),
                               "real_test": float(p_real.mean()),
                               "two_stage_frac": float((p_two > thr).mean()),
                               "plain_frac": float((p_plain > thr).mean()),
                               "real_test_frac": float((p_real > thr).mean())}


def _pyramid(params: PixelCNNAuxParams, split: ImageSplit, device: torch.device, result: ReplicateResult) -> None:
    nats = []
    for name in params.pyramid_parts():
        model = _train(params, name, split, device, result)
        nats.append(part_nats(model, part_items(params, name, split.test), device, params.eval_batch_size))
    result.pyramid = pyramid_bpd(nats, params.pyramid_sides)


def run_replicate(params: PixelCNNAuxParams, seed: int, device: torch.device) -> ReplicateResult:
    """Train and evaluate every part of the chosen experiments in replicate ``seed``."""
    rep = replicate(params, seed)
    seed_everything(seed)
    result = ReplicateResult(seed)
    if "grayscale" in rep.experiments:
        _grayscale(rep, gray_images(rep, seed), device, result)
    if "pyramid" in rep.experiments:
        _pyramid(rep, pyramid_images(rep, seed), device, result)
    return result


def claim_verdicts(params: PixelCNNAuxParams, results: list[ReplicateResult]) -> list[Verdict]:
    """The paired verdicts of :data:`CLAIMS` (those the run's experiments and data support)."""
    out: list[Verdict] = []
    if "grayscale" in params.experiments:
        g = [r.gray for r in results]
        out.append(paired_verdict("gray-share<0.25", CLAIMS["gray-share<0.25"], [x["gray_share"] for x in g],
                                  GRAY_SHARE_LIMIT, expected="lower"))
        out.append(paired_verdict("bound>plain", CLAIMS["bound>plain"], [x["bound"] for x in g],
                                  [x["plain"] for x in g], expected="higher"))
        if all(r.recognisable for r in results):
            out.append(paired_verdict("recognisable:two-stage>plain", CLAIMS["recognisable:two-stage>plain"],
                                      [r.recognisable["two_stage"] for r in results],
                                      [r.recognisable["plain"] for r in results], expected="higher"))
        out.append(paired_verdict("map<vr0:noise", CLAIMS["map<vr0:noise"], [r.noise["map"] for r in results],
                                  [r.noise["vr0"] for r in results], expected="lower"))
    if "pyramid" in params.experiments:
        sides = params.pyramid_sides
        for k in range(1, len(sides)):
            cid = f"pyramid-bound-falls:{sides[k]}"
            text = (f"the pyramid's bound in bits/dim falls from {sides[k - 1]}x{sides[k - 1]} to "
                    f"{sides[k]}x{sides[k]} (Table 4.2)")
            out.append(paired_verdict(cid, text, [r.pyramid.bound[k] for r in results],
                                      [r.pyramid.bound[k - 1] for r in results], expected="lower"))
            cid = f"pyramid-term-falls:{sides[k]}"
            text = (f"the conditional term per dim falls from {sides[k - 1]}x{sides[k - 1]} to "
                    f"{sides[k]}x{sides[k]} (Table 4.2, read per level)")
            out.append(paired_verdict(cid, text, [r.pyramid.conditional[k] for r in results],
                                      [r.pyramid.conditional[k - 1] for r in results], expected="lower"))
    return out


def verdict_sentence(v: Verdict, fmt: str = "+.3f") -> str:
    """One generated sentence per verdict: the claim, what the interval says, whether it held."""
    state = "holds" if v.holds else "does not hold"
    return (f"**{v.claim}**: mean paired difference {v.interval_text(fmt)} over {v.n} replicates, "
            f"verdict *{v.label}* (expected *{v.expected}*), so the claim {state} at this scale.")


def aggregate(params: PixelCNNAuxParams, results: list[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """Per experiment id, mean / std / n over replicates of every metric (the ``metrics.json``
    schema that ``thesislib record`` reads; metric names as in ``replication/pixelcnn_aux.yaml``)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for r in results:
        if r.gray:
            row = {"bpd_bound": r.gray["bound"], "bpd_gray": r.gray["gray"], "bpd_color": r.gray["color"],
                   "bpd_plain": r.gray["plain"], "gray_share": r.gray["gray_share"]}
            row.update({f"recognisable_{k}": v for k, v in r.recognisable.items()})
            runs.setdefault(experiment_id(params, "grayscale"), []).append(row)
        if r.pyramid is not None:
            row = {f"bpd_{s}": b for s, b in zip(r.pyramid.sides, r.pyramid.bound, strict=True)}
            row.update({f"bpd_cond_{s}": b for s, b in zip(r.pyramid.sides, r.pyramid.conditional, strict=True)})
            runs.setdefault(experiment_id(params, "pyramid"), []).append(row)
    return summarize_seeds(runs)

