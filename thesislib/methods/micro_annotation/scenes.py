"""The smoke pipeline on procedural scenes with co-occurring distractors (study note 2.6(a)).

Data: :func:`~thesislib.data.distractor_scenes` (a boat always on water, a train always on rails,
a car and a ball anywhere; one object per image, 32x32, image-level labels only; the object
masks and the distractor bands are used for evaluation and by the oracle annotator only).

One seed runs the whole method: train the CAM classifier (:func:`prepare_scenes`), extract the
pattern sets of the training images and cluster them (Algorithm 3), annotate the clusters
(:func:`annotate_scenes`: the oracle from the object masks, or a person's ids), and compare the
localization on the test images before and after step (iv) (:func:`evaluate_scenes`). The
evaluation is "class known" (CorLoc): each test image is localized for its own class.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.data import Scenes, distractor_scenes, generate_scenes
from thesislib.engine import History
from thesislib.methods.micro_annotation.annotation import Annotation, human_annotation, simulated_annotation
from thesislib.methods.micro_annotation.config import MicroAnnotationConfig
from thesislib.methods.micro_annotation.heatmaps import cluster_heatmaps
from thesislib.methods.micro_annotation.metrics import corloc, pixel_iou, precision_recall
from thesislib.methods.micro_annotation.patterns import (
    Patterns,
    extract_patterns,
    forward_maps,
    mask_evidence,
    normalize_patterns,
    region_fraction,
)
from thesislib.methods.micro_annotation.regions import component_boxes, localize
from thesislib.methods.micro_annotation.spectral import SpectralResult, spectral_clustering
from thesislib.methods.micro_annotation.train import build_cam_classifier, cam_train_config
from thesislib.nn import CAMClassifier
from thesislib.nn.cam_training import train_cam_classifier
from thesislib.replication import mean_sd, summarize_seeds
from thesislib.repro import seed_everything

#: a region "lies on" the object when at least this fraction of its pixels are object pixels


@dataclass
class ScenePrep:
    """Everything of one seed up to the clustering. ``patterns``, ``clusterings`` and ``evidence``
    (the oracle's on-object flag of every pattern) are keyed by class name; ``accuracy`` is the
    test accuracy of the classifier (its top class is one of the image's labels)."""

    seed: int
    config: MicroAnnotationConfig
    model: CAMClassifier
    history: History
    train: Scenes
    test: Scenes
    patterns: dict[str, Patterns]
    clusterings: dict[str, SpectralResult]
    evidence: dict[str, np.ndarray]
    accuracy: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names


@dataclass
class SceneEval:
    """Per-class localization before and after step (iv) on the test images of each class.

    ``metrics[name]`` holds ``corloc``, ``pixel_iou``, ``precision`` (share of D^y on the object),
    ``recall`` (share of the object covered) and ``on_distractor`` (share of D^y on the
    distractor band), each with the suffix ``_before`` / ``_after`` / ``_bound``, and ``images``.
    ``_bound`` is the best that deleting regions can do: every region that does not touch the
    ground-truth object is set to -inf (a ground-truth "annotation" at the region level), which
    tells whether a poor box is due to distractors or to a map that misses parts of the object.
    ``examples[name]`` keeps the test indices, score maps, regions and boxes for the figures."""

    metrics: dict[str, dict[str, float]]
    examples: dict[str, dict[str, Any]]


def scene_data(config: MicroAnnotationConfig, seed: int) -> tuple[Scenes, Scenes]:
    """Training and test scenes of one seed (independent streams of ``seed``)."""
    scene_cfg = distractor_scenes()
    train = generate_scenes(scene_cfg, config.n_train, seed=np.random.default_rng([seed, 0]))
    test = generate_scenes(scene_cfg, config.n_test, seed=np.random.default_rng([seed, 1]))
    return train, test


def batches(images: Tensor, labels: Tensor, size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, labels) in chunks of ``size`` (inference batches)."""
    for lo in range(0, len(images), size):
        yield images[lo:lo + size], labels[lo:lo + size]


def prepare_scenes(config: MicroAnnotationConfig, seed: int, device: torch.device,
                   progress: str = "auto") -> ScenePrep:
    """Seed, data, CAM classifier training (engine), pattern sets, Algorithm 3 for every class."""
    seconds: dict[str, float] = {}
    seed_everything(seed)
    t0 = time.perf_counter()
    train, test = scene_data(config, seed)
    names = train.class_names
    model = build_cam_classifier("cam_small", len(names), width=config.cam_width, extra=config.cam_extra)
    history = train_cam_classifier(model, TensorDataset(train.images, train.labels), cam_train_config(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=seed, multilabel=True,
        progress=progress), device)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = torch.cat([forward_maps(model, x.to(device))[0].cpu() for x, _ in batches(test.images, test.labels)])
    accuracy = float(test.labels.gather(1, logits.argmax(dim=1, keepdim=True)).mean())
    found = extract_patterns(model, batches(train.images, train.labels), device, tau=config.tau,
                             rule=config.threshold_rule, layer=config.pattern_layer)
    patterns = {names[c]: p for c, p in sorted(found.items())}
    clusterings = {name: spectral_clustering(p.vectors, config.spectral(seed)) for name, p in patterns.items()}
    evidence = {}
    for name, p in patterns.items():
        evidence[name] = mask_evidence(p, train.masks == names.index(name) + 1)
    seconds["patterns+clustering"] = time.perf_counter() - t0
    return ScenePrep(seed, config, model, history, train, test, patterns, clusterings, evidence, accuracy, seconds)


def annotate_scenes(prep: ScenePrep, annotator: str = "simulated",
                    distractors: Mapping[str, Sequence[int]] | None = None) -> Annotation:
    """``"simulated"``: the mask oracle (:func:`~thesislib.methods.micro_annotation.annotation.simulated_annotation`);
    ``"human"``: the cluster ids a person wrote into ``distractors``."""
    index = {name: i for i, name in enumerate(prep.class_names)}
    cfg = prep.config
    meta = {"pattern_layer": cfg.pattern_layer, "tau": cfg.tau, "threshold_rule": cfg.threshold_rule,
            "seed": prep.seed, "data": "scenes", "annotator": annotator}
    if annotator == "simulated":
        return simulated_annotation(prep.clusterings, prep.evidence, index, meta)
    if annotator == "human":
        return human_annotation(prep.clusterings, distractors or {}, index, meta)
    raise ValueError(f"annotator must be 'simulated' or 'human', got {annotator!r}")


@torch.no_grad()
def scene_maps(model: CAMClassifier, images: Tensor, device: torch.device,
               layer: str = "trunk") -> tuple[Tensor, Tensor]:
    """CAMs (B, C, h, w) and normalised patterns (B, K, h, w) of ``images``, on the CPU."""
    model.eval()
    cams, phis = [], []
    for lo in range(0, len(images), 256):
        _, cam, raw = forward_maps(model, images[lo:lo + 256].to(device), layer)  # type: ignore[arg-type]
        cams.append(cam.float().cpu())
        phis.append(normalize_patterns(raw).cpu())
    return torch.cat(cams), torch.cat(phis)


def evaluate_scenes(prep: ScenePrep, annotation: Annotation, device: torch.device) -> SceneEval:
    """Localize every test image for its own class(es) with the plain and the micro-annotated
    maps and compare (CorLoc, pixel IoU, cue precision / recall, share on the distractor)."""
    cfg, test = prep.config, prep.test
    cams, phi = scene_maps(prep.model, test.images, device, cfg.pattern_layer)
    size = tuple(test.images.shape[-2:])
    metrics: dict[str, dict[str, float]] = {}
    examples: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(prep.class_names):
        idx = torch.nonzero(test.labels[:, c] > 0.5).flatten()
        if len(idx) == 0:
            continue
        before = cams[idx, c]
        spec = annotation.classes.get(name)
        after = spec.suppress(before, phi[idx]) if spec is not None and spec.has_distractor else before
        gt_t = test.masks[idx] == c + 1
        gt = gt_t.numpy()
        bound = before.masked_fill(region_fraction(gt_t, tuple(before.shape[-2:])) == 0, float("-inf"))
        gt_boxes = [component_boxes(m) for m in gt]
        band = test.distractor[idx].numpy()
        row: dict[str, float] = {"images": float(len(idx))}
        ex: dict[str, Any] = {"index": idx.numpy(), "gt_boxes": gt_boxes}
        for tag, maps in (("before", before), ("after", after), ("bound", bound)):
            regions, boxes = localize(maps, size, cfg.tau, cfg.threshold_rule, cfg.upsample)  # type: ignore[arg-type]
            regions = regions.numpy()
            precision, recall = precision_recall(regions, gt)
            row[f"corloc_{tag}"] = float(corloc(boxes, gt_boxes).mean())
            row[f"pixel_iou_{tag}"] = pixel_iou(regions, gt)
            row[f"precision_{tag}"] = precision
            row[f"recall_{tag}"] = recall
            row[f"on_distractor_{tag}"] = float(np.logical_and(regions, band).sum() / max(regions.sum(), 1))
            if tag != "bound":
                ex[f"maps_{tag}"], ex[f"regions_{tag}"], ex[f"boxes_{tag}"] = maps, regions, boxes
        metrics[name], examples[name] = row, ex
    return SceneEval(metrics, examples)


def annotation_examples(prep: ScenePrep, name: str, n_show: int = 12) -> tuple[Tensor, Tensor, Tensor]:
    """The Fig. 3.2 material of class ``name``: ``n_show`` training images labelled with it (the
    first ones, deterministic), their CAMs (n, h, w) and cluster heatmaps (n, k, h, w) (Eq. 3.1)."""
    c = prep.class_names.index(name)
    idx = torch.nonzero(prep.train.labels[:, c] > 0.5).flatten()[:n_show]
    images = prep.train.images[idx]
    cams, phi = scene_maps(prep.model, images, next(prep.model.parameters()).device, prep.config.pattern_layer)
    means = torch.as_tensor(prep.clusterings[name].means, dtype=torch.float32)
    return images, cams[:, c], cluster_heatmaps(phi, means)


def run_scene_seed(config: MicroAnnotationConfig, seed: int, device: torch.device,
                   progress: str = "auto") -> tuple[ScenePrep, Annotation, SceneEval]:
    """One complete seed with the oracle annotator."""
    prep = prepare_scenes(config, seed, device, progress)
    annotation = annotate_scenes(prep, "simulated")
    return prep, annotation, evaluate_scenes(prep, annotation, device)


METRICS = ("corloc", "pixel_iou", "precision", "recall", "on_distractor")


def summarize(evals: Sequence[SceneEval]) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and sample standard deviation over seeds (:func:`~thesislib.replication.mean_sd`, the
    statistic ``metrics.json`` records; NaN seeds left out, NaN sd for one seed) of every per-class
    metric."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name in evals[0].metrics:
        keys = [k for k in evals[0].metrics[name] if k != "images"]
        out[name] = {}
        for key in keys:
            values = np.array([e.metrics[name][key] for e in evals if name in e.metrics], dtype=np.float64)
            finite = values[~np.isnan(values)]
            out[name][key] = mean_sd(finite) if finite.size else (math.nan, math.nan)
    return out


def results_record(evals: Sequence[SceneEval]) -> dict[str, dict[str, dict[str, float]]]:
    """``experiments`` for :func:`~thesislib.notebook.save_run`: ``scenes/<class>/gap``,
    ``scenes/<class>/gap+micro`` and ``scenes/<class>/gap+region-oracle`` (the deletion bound of
    :class:`SceneEval`) with ``{metric: {"mean", "std", "n"}}`` (fractions in percent)."""
    runs: dict[str, list[dict[str, float]]] = {}
    for name in summarize(evals):
        for tag, exp in (("before", "gap"), ("after", "gap+micro"), ("bound", "gap+region-oracle")):
            runs[f"scenes/{name}/{exp}"] = [
                {metric: 100.0 * e.metrics[name][f"{metric}_{tag}"] for metric in METRICS
                 if f"{metric}_{tag}" in e.metrics[name] and not np.isnan(e.metrics[name][f"{metric}_{tag}"])}
                for e in evals if name in e.metrics]
    return summarize_seeds({eid: seeds for eid, seeds in runs.items() if seeds and seeds[0]})
