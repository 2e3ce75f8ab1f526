"""What the full-scale pipelines (:mod:`.ilsvrc`, :mod:`.voc`) share: the per-class clustering with
its annotation, and the result object the notebook displays (the CAM classifier: :func:`.train.prepare_model`).

Per class (one pass over the training images labelled with it, so memory holds one class's
patterns at a time): extract A^y (:func:`~.patterns.extract_patterns`), run Algorithm 3, and
annotate the clusters with the configured annotator:

* ``annotation_file`` set: the saved annotation of that class (e.g. made by a person earlier);
* ``annotator="human"``: ``distractors[name]``, the ids a person read off the heatmap panels
  (written to ``<output_dir>/annotation_panels/<name>.png`` by an earlier run);
* ``annotator="simulated"``: the ground-truth oracle (an upper bound on the human protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from thesislib.methods.micro_annotation import plots
from thesislib.methods.micro_annotation.annotation import Annotation, ClassAnnotation, check_class_names, majority_flags
from thesislib.methods.micro_annotation.config import MicroAnnotationParams, human_distractors, spectral_config
from thesislib.methods.micro_annotation.data import denormalize
from thesislib.methods.micro_annotation.heatmaps import cluster_heatmaps
from thesislib.methods.micro_annotation.patterns import Patterns, extract_patterns, forward_maps, normalize_patterns
from thesislib.methods.micro_annotation.spectral import SpectralResult, spectral_clustering
from thesislib.nn import CAMClassifier


@dataclass
class FullResult:
    """A full run's outcome: ``experiments`` in the results schema (paper ids where the run
    measures a paper number), a summary ``table`` with ``headers``, the ``annotation``, per-class
    arrays in ``per_class`` and figure builders (:meth:`figures`)."""

    experiments: dict[str, dict[str, float]]
    table: list[list[Any]]
    headers: list[str]
    annotation: Annotation
    per_class: dict[str, Any]
    figure_fns: list[Callable[[], Figure]] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [fn() for fn in self.figure_fns]


def annotate_class(config: MicroAnnotationParams, name: str, index: int, result: SpectralResult,
                   evidence: np.ndarray | None, saved: Annotation | None) -> ClassAnnotation:
    """The configured annotator's decision for one class (see the module docstring)."""
    eigen = tuple(float(v) for v in result.eigenvalues)
    if saved is not None:
        if name not in saved.classes:
            raise KeyError(f"the annotation file has no class {name!r}")
        entry = saved.classes[name]
        if np.asarray(entry.means).shape != result.means.shape:
            raise ValueError(f"class {name!r}: the saved annotation has {len(entry.means)} clusters of dimension "
                             f"{np.asarray(entry.means).shape[1]}, this clustering {result.means.shape}")
        return entry
    if config.annotator == "human":
        ids = human_distractors(config).get(name, [])
        if any(not 0 <= c < result.k for c in ids):
            raise ValueError(f"class {name!r} has clusters 0..{result.k - 1}; cannot mark {ids}")
        return ClassAnnotation(name, index, result.means.astype(np.float32),
                               tuple(c not in ids for c in range(result.k)), eigen, "human")
    if evidence is None:
        raise ValueError(f"class {name!r}: the oracle needs ground truth (boxes or masks) for its training images")
    flags, fraction = majority_flags(result.labels, evidence, result.k)
    return ClassAnnotation(name, index, result.means.astype(np.float32), flags, eigen, "simulated", fraction)


@torch.no_grad()
def panel_material(model: CAMClassifier, images: Tensor, means: np.ndarray, device: torch.device,
                   layer: str) -> Tensor:
    """Cluster heatmaps (n, k, h, w) of (normalised) ``images`` for the annotation panel."""
    _, _, raw = forward_maps(model, images.to(device), layer)  # type: ignore[arg-type]
    return cluster_heatmaps(normalize_patterns(raw), torch.as_tensor(means, device=device)).cpu()


def cluster_class(model: CAMClassifier, batches: Iterable[tuple[Tensor, Tensor]], index: int, device: torch.device,
                  config: MicroAnnotationParams) -> tuple[Patterns | None, SpectralResult | None]:
    """A^y of class ``index`` over ``batches`` and Algorithm 3 on it; ``(patterns, result)`` or
    ``(patterns, None)`` when the class has fewer patterns than ``max_clusters``."""
    found = extract_patterns(model, batches, device, tau=config.tau, rule=config.threshold_rule,
                             layer=config.pattern_layer, classes=[index])
    patterns = found.get(index)
    if patterns is None or len(patterns) < config.max_clusters:
        return patterns, None
    return patterns, spectral_clustering(patterns.vectors, spectral_config(config, config.seed))


def save_panel(output_dir: str, name: str, images: Tensor, heatmaps: Tensor) -> Path | None:
    """Write the Fig. 3.2 panel of a class to ``<output_dir>/annotation_panels/<name>.png``."""
    if not output_dir:
        return None
    path = Path(output_dir) / "annotation_panels" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plots.annotation_panel(images, heatmaps, f"{name}: one heatmap per cluster")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def load_saved(config: MicroAnnotationParams) -> Annotation | None:
    return Annotation.load(config.annotation_file) if config.annotation_file else None


#: One class to cluster: (name, class index, a function giving its batches: images, labels and one
#: ground truth per image, e.g. its boxes or its object mask)
ClassSource = tuple[str, int, Callable[[], Iterable[tuple[Tensor, Tensor, Sequence[Any]]]]]



def _recording(batches: Iterable[tuple[Tensor, Tensor, Any]], truth: list[Any], shown: list[Tensor],
               n_show: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(images, labels)`` from ``(images, labels, ground truth)`` batches, appending the ground
    truths to ``truth`` and the first ``n_show`` images to ``shown`` on the way."""
    for images, labels, gt in batches:
        truth.extend(gt)
        if sum(len(s) for s in shown) < n_show:
            shown.append(images[:n_show])
        yield images, labels

def cluster_classes(model: CAMClassifier, sources: Sequence[ClassSource],
                    evidence: Callable[[list[Any], Patterns], np.ndarray | None], config: MicroAnnotationParams,
                    device: torch.device, data: str) -> tuple[Annotation, dict[str, Any]]:
    """Steps (i)-(iii) for every class of ``sources``: its patterns (one pass over its batches),
    Algorithm 3, the configured annotator's decision (``evidence(ground truths in image order,
    patterns)``: the oracle's on-object value per pattern, or None without ground truth) and,
    with ``output_dir``, its annotation panel. Returns the annotation and, per class, the number
    of patterns, k and the eigenvalues. A person's ``distractors`` naming a class that is not
    clustered is an error."""
    saved = load_saved(config)
    if config.annotator == "human" and saved is None:
        check_class_names(list(human_distractors(config)), [name for name, _, _ in sources])
    entries: dict[str, ClassAnnotation] = {}
    info: dict[str, Any] = {}
    for name, index, class_batches in sources:
        truth: list[Any] = []
        shown: list[Tensor] = []

        patterns, result = cluster_class(model, _recording(class_batches(), truth, shown, config.n_show),
                                         index, device, config)
        if patterns is None or result is None:
            info[name] = {"patterns": 0 if patterns is None else len(patterns), "k": 0, "eigenvalues": []}
            continue
        entries[name] = annotate_class(config, name, index, result, evidence(truth, patterns), saved)
        info[name] = {"patterns": len(patterns), "k": result.k, "eigenvalues": result.eigenvalues.tolist()}
        images = torch.cat(shown)[: config.n_show]
        save_panel(config.output_dir, name, denormalize(images),
                   panel_material(model, images, result.means, device, config.pattern_layer))
    meta = {"data": data, "pattern_layer": config.pattern_layer, "tau": config.tau,
            "threshold_rule": config.threshold_rule, "arch": config.arch, "seed": config.seed}
    return Annotation(entries, meta), info

