"""What the notebook orchestrates: the smoke replicates, their summary and verdicts, and the full runs.

Smoke (procedural scenes, :mod:`.data`): one replicate (:func:`run_scene_seed`) trains the CAM
classifier (:func:`prepare_scenes`), extracts the pattern sets of the training images and
clusters them (Algorithm 3), annotates the clusters (:func:`annotate_scenes`: the oracle from
the object masks, or a person's ids) and compares the localization on the test images before
and after step (iv) (:func:`.evaluate.evaluate_scenes`). :func:`summarize` and
:func:`results_record` aggregate replicates; :func:`scene_verdicts` states the headline claims
as paired verdicts over the replicates (:func:`~thesislib.replication.paired_verdict`).

Full scale: :func:`run_full` dispatches on ``data`` to :func:`.ilsvrc.run_ilsvrc` or
:func:`.voc.run_voc`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.data import Scenes
from thesislib.engine import History
from thesislib.methods.micro_annotation.annotation import Annotation, human_annotation, simulated_annotation
from thesislib.methods.micro_annotation.config import MicroAnnotationParams, spectral_config
from thesislib.methods.micro_annotation.data import batches, scene_data
from thesislib.methods.micro_annotation.evaluate import SceneEval, evaluate_scenes, scene_maps, test_accuracy
from thesislib.methods.micro_annotation.full import FullResult
from thesislib.methods.micro_annotation.heatmaps import cluster_heatmaps
from thesislib.methods.micro_annotation.ilsvrc import run_ilsvrc
from thesislib.methods.micro_annotation.model import build_cam_classifier
from thesislib.methods.micro_annotation.patterns import Patterns, extract_patterns, mask_evidence
from thesislib.methods.micro_annotation.spectral import SpectralResult, spectral_clustering
from thesislib.methods.micro_annotation.train import train_cam
from thesislib.methods.micro_annotation.voc import run_voc
from thesislib.nn import CAMClassifier
from thesislib.replication import mean_sd, summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict
from thesislib.repro import seed_everything


@dataclass
class ScenePrep:
    """Everything of one seed up to the clustering. ``patterns``, ``clusterings`` and ``evidence``
    (the oracle's on-object flag of every pattern) are keyed by class name; ``accuracy`` is the
    test accuracy of the classifier (its top class is one of the image's labels)."""

    seed: int
    config: MicroAnnotationParams
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


def prepare_scenes(params: MicroAnnotationParams, seed: int, device: torch.device) -> ScenePrep:
    """One replicate up to step (iii): the seed (set once, :func:`~thesislib.repro.seed_everything`),
    the scenes, the CAM classifier trained through the engine, the pattern sets of the training
    images and Algorithm 3 on every class."""
    seconds: dict[str, float] = {}
    seed_everything(seed)
    t0 = time.perf_counter()
    train, test = scene_data(params, seed)
    names = train.class_names
    model = build_cam_classifier("cam_small", len(names), width=params.cam_width, extra=params.cam_extra).to(device)
    history = train_cam(model, TensorDataset(train.images, train.labels), params, seed, device, multilabel=True)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    accuracy = test_accuracy(model, test, device)
    found = extract_patterns(model, batches(train.images, train.labels), device, tau=params.tau,
                             rule=params.threshold_rule, layer=params.pattern_layer)
    patterns = {names[c]: p for c, p in sorted(found.items())}
    clusterings = {name: spectral_clustering(p.vectors, spectral_config(params, seed)) for name, p in patterns.items()}
    evidence = {name: mask_evidence(p, train.masks == names.index(name) + 1) for name, p in patterns.items()}
    seconds["patterns+clustering"] = time.perf_counter() - t0
    return ScenePrep(seed, params, model, history, train, test, patterns, clusterings, evidence, accuracy, seconds)


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



def annotation_examples(prep: ScenePrep, name: str, n_show: int = 12) -> tuple[Tensor, Tensor, Tensor]:
    """The Fig. 3.2 material of class ``name``: ``n_show`` training images labelled with it (the
    first ones, deterministic), their CAMs (n, h, w) and cluster heatmaps (n, k, h, w) (Eq. 3.1)."""
    c = prep.class_names.index(name)
    idx = torch.nonzero(prep.train.labels[:, c] > 0.5).flatten()[:n_show]
    images = prep.train.images[idx]
    _, cams, phi = scene_maps(prep.model, images, next(prep.model.parameters()).device, prep.config.pattern_layer)
    means = torch.as_tensor(prep.clusterings[name].means, dtype=torch.float32)
    return images, cams[:, c], cluster_heatmaps(phi, means)



def evaluate_prep(prep: ScenePrep, annotation: Annotation, device: torch.device) -> SceneEval:
    """:func:`~.evaluate.evaluate_scenes` on the replicate's test scenes."""
    return evaluate_scenes(prep.model, prep.test, annotation, prep.config, device)


def run_scene_seed(params: MicroAnnotationParams, seed: int,
                   device: torch.device) -> tuple[ScenePrep, Annotation, SceneEval]:
    """One complete replicate with the oracle annotator."""
    prep = prepare_scenes(params, seed, device)
    annotation = annotate_scenes(prep, "simulated")
    return prep, annotation, evaluate_prep(prep, annotation, device)


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


#: The headline claims of the smoke run: (class, metric, expected change after micro-annotation).
#: Boat and train are the classes with a drawn distractor (the thesis's VOC pair).
CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("boat", "on_distractor", "lower"), ("boat", "precision", "higher"), ("boat", "corloc", "higher"),
    ("train", "on_distractor", "lower"), ("train", "precision", "higher"), ("train", "corloc", "higher"),
)
METRIC_LABELS = {"on_distractor": "share of D^y on the distractor", "precision": "cue precision",
                 "corloc": "CorLoc", "pixel_iou": "pixel IoU", "recall": "cue recall"}


def scene_verdicts(evals: Sequence[SceneEval],
                   claims: Sequence[tuple[str, str, str]] = CLAIMS) -> list[Verdict]:
    """One paired verdict per claim: after vs before step (iv), in percentage points, paired by
    replicate (a Student-t 95% interval on the mean change; ``higher`` / ``lower`` only when the
    interval excludes 0)."""
    out = []
    for name, metric, expected in claims:
        rows = [e.metrics[name] for e in evals if name in e.metrics]
        after = [100.0 * r[f"{metric}_after"] for r in rows]
        before = [100.0 * r[f"{metric}_before"] for r in rows]
        word = {"higher": "rises", "lower": "falls"}.get(expected, "does not change")
        out.append(paired_verdict(f"scenes/{name}/{metric}", f"{name}: {METRIC_LABELS[metric]} {word} "
                                  "with micro-annotation (points)", after, before, expected=expected))  # type: ignore[arg-type]
    return out


def run_full(params: MicroAnnotationParams, device: torch.device) -> FullResult:
    """Dispatch on ``params.data``: ``"ilsvrc"`` (:func:`.ilsvrc.run_ilsvrc`) or ``"voc"``
    (:func:`.voc.run_voc`)."""
    if params.data == "ilsvrc":
        return run_ilsvrc(params, device)
    if params.data == "voc":
        return run_voc(params, device)
    raise ValueError(f"run_full handles data='ilsvrc' or 'voc', got {params.data!r} (scenes: run_scene_seed)")
