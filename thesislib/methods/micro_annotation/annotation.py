"""Step (iii) of section 3.3: marking each cluster of each class as 'object' or 'distractor'.

The thesis asks a person, who looks at the cluster heatmaps of ~12 training images per class
(Fig. 3.2) and clicks the clusters that show the object: one interaction of a few seconds per
class. Two routes produce an :class:`Annotation` here:

* :func:`human_annotation`: a person's choices, written as ``{"boat": [1]}`` (the distractor
  cluster ids of each class, as numbered in the heatmap figure); :func:`annotation_widget` is an
  optional checkbox panel (needs ``ipywidgets``) that produces the same mapping.
* :func:`simulated_annotation`: an oracle with ground truth. A cluster is 'object' when the
  majority of its member regions lie on the class's ground-truth object (mask or box, see
  :func:`~thesislib.methods.micro_annotation.patterns.region_fraction` and
  :func:`~thesislib.methods.micro_annotation.patterns.region_centres_in_boxes`). This is an upper
  bound on the human protocol, not the thesis's protocol: it never mistakes a part for a
  distractor through ambiguity and it sees every training image, not 12. Like a person, it never
  marks every cluster of a class as a distractor: if no cluster has an on-object majority, the
  cluster with the largest on-object fraction is kept as 'object'.

An :class:`Annotation` stores the cluster means a_C with the flags, so a saved annotation can be
re-applied to new images later (:meth:`Annotation.apply`, JSON via :meth:`Annotation.save` /
:meth:`Annotation.load`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from thesislib.methods.micro_annotation.heatmaps import suppress_scores
from thesislib.methods.micro_annotation.spectral import SpectralResult

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClassAnnotation:
    """The annotated clustering of one class: ``means`` (k, K) cluster means a_C, ``is_object``
    (k,) flags, ``eigenvalues`` (M,) of Algorithm 3, ``source`` ("human" or "simulated") and, for
    the oracle, ``on_object`` (k,) the fraction of each cluster's regions on the object."""

    name: str
    index: int
    means: np.ndarray
    is_object: tuple[bool, ...]
    eigenvalues: tuple[float, ...]
    source: str
    on_object: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.is_object) != len(self.means):
            raise ValueError(f"class {self.name!r}: {len(self.is_object)} flags for {len(self.means)} clusters")
        if not any(self.is_object):
            raise ValueError(f"class {self.name!r}: at least one cluster must be 'object', otherwise the "
                             "class could never be localized")

    @property
    def distractors(self) -> list[int]:
        """Ids of the clusters marked as distractors."""
        return [c for c, obj in enumerate(self.is_object) if not obj]

    @property
    def has_distractor(self) -> bool:
        """True when step (iv) changes this class's maps (the thesis's "affected" classes)."""
        return not all(self.is_object)

    def suppress(self, scores: Tensor, patterns: Tensor) -> Tensor:
        """Step (iv) for this class: scores (B, h, w), patterns (B, K, h, w) -> (B, h, w)."""
        means = torch.as_tensor(self.means, dtype=patterns.dtype, device=patterns.device)
        flags = torch.tensor(self.is_object, dtype=torch.bool, device=patterns.device)
        return suppress_scores(scores, patterns, means, flags)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "index": self.index, "source": self.source,
                "is_object": list(self.is_object), "eigenvalues": list(self.eigenvalues),
                "on_object": None if self.on_object is None else list(self.on_object),
                "means": np.asarray(self.means, dtype=np.float64).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassAnnotation:
        return cls(name=str(data["name"]), index=int(data["index"]), source=str(data["source"]),
                   means=np.asarray(data["means"], dtype=np.float32),
                   is_object=tuple(bool(v) for v in data["is_object"]),
                   eigenvalues=tuple(float(v) for v in data["eigenvalues"]),
                   on_object=None if data.get("on_object") is None else tuple(float(v) for v in data["on_object"]))


@dataclass(frozen=True)
class Annotation:
    """The micro-annotation of a set of classes, keyed by class name; ``meta`` records how the
    patterns were made (layer, tau, rule, ...), so that a reloaded annotation is applied to the
    same kind of patterns."""

    classes: dict[str, ClassAnnotation]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def affected(self) -> list[str]:
        """Names of the classes with at least one distractor cluster."""
        return [name for name, a in self.classes.items() if a.has_distractor]

    def apply(self, scores: Tensor, patterns: Tensor, class_names: Sequence[str]) -> Tensor:
        """Step (iv) on all classes: CAMs (B, C, h, w) and patterns (B, K, h, w) -> (B, C, h, w);
        classes without a distractor cluster (or not annotated) are returned unchanged."""
        out = scores.clone()
        for name in self.affected:
            if name not in class_names:
                continue
            c = list(class_names).index(name)
            out[:, c] = self.classes[name].suppress(scores[:, c], patterns)
        return out

    def distractors(self) -> dict[str, list[int]]:
        """The ``{"class": [cluster ids]}`` form a person writes (classes with distractors only)."""
        return {name: a.distractors for name, a in self.classes.items() if a.has_distractor}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT_VERSION, "meta": self.meta,
                "classes": [a.to_dict() for a in self.classes.values()]}
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Annotation:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
            classes = [ClassAnnotation.from_dict(c) for c in data["classes"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a readable micro-annotation file: {err}") from err
        return cls({a.name: a for a in classes}, dict(data.get("meta", {})))


def check_class_names(given: Sequence[str], known: Sequence[str]) -> None:
    """A ``KeyError`` naming the entries of ``given`` that are not clustered classes."""
    unknown = [n for n in given if n not in known]
    if unknown:
        raise KeyError(f"unknown class name(s) {unknown}; clustered classes are: {', '.join(known)}")


def human_annotation(clusterings: Mapping[str, SpectralResult], distractors: Mapping[str, Sequence[int]],
                     class_index: Mapping[str, int] | None = None, meta: Mapping[str, Any] | None = None) -> Annotation:
    """A person's annotation: ``distractors`` maps a class name to the ids of its distractor
    clusters (every other cluster, and every class not named, is 'object')."""
    names = list(clusterings)
    check_class_names(list(distractors), names)
    classes = {}
    for i, name in enumerate(names):
        result = clusterings[name]
        ids = [int(c) for c in distractors.get(name, [])]
        bad = [c for c in ids if not 0 <= c < result.k]
        if bad:
            raise ValueError(f"class {name!r} has clusters 0..{result.k - 1}; cannot mark {bad} as distractors")
        flags = tuple(c not in ids for c in range(result.k))
        classes[name] = ClassAnnotation(name, (class_index or {}).get(name, i), result.means.astype(np.float32),
                                        flags, tuple(float(v) for v in result.eigenvalues), "human")
    return Annotation(classes, dict(meta or {}))


def majority_flags(labels: np.ndarray, on_object: np.ndarray, k: int) -> tuple[tuple[bool, ...], tuple[float, ...]]:
    """The oracle's rule: cluster c is 'object' iff more than half of its members with known
    evidence lie on the object; if none qualifies, the cluster with the largest fraction is
    'object'; a cluster without evidence stays 'object'. ``on_object`` (N,) in {0, 1} or NaN."""
    on_object = np.asarray(on_object, dtype=np.float64)
    known = np.isfinite(on_object)
    hits = np.bincount(labels[known], weights=on_object[known], minlength=k)
    counts = np.bincount(labels[known], minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = hits / counts
    flags = np.where(counts > 0, fraction > 0.5, True)
    if not flags.any():
        flags[int(np.nanargmax(fraction))] = True
    return tuple(bool(f) for f in flags), tuple(float(f) for f in fraction)


def simulated_annotation(clusterings: Mapping[str, SpectralResult], on_object: Mapping[str, np.ndarray],
                         class_index: Mapping[str, int] | None = None,
                         meta: Mapping[str, Any] | None = None) -> Annotation:
    """The ground-truth oracle (an upper bound on the human protocol): ``on_object[name]`` (N,)
    says for every pattern of the class whether its region lies on the class's object (1), off
    it (0) or is unknown (NaN, e.g. a training image without boxes); see :func:`majority_flags`."""
    names = list(clusterings)
    check_class_names(list(on_object), names)
    classes = {}
    for i, name in enumerate(names):
        result = clusterings[name]
        evidence = on_object.get(name)
        if evidence is None:
            raise KeyError(f"no ground-truth evidence for class {name!r}")
        if len(evidence) != len(result.labels):
            raise ValueError(f"class {name!r}: {len(evidence)} evidence values for {len(result.labels)} patterns")
        flags, fraction = majority_flags(result.labels, evidence, result.k)
        classes[name] = ClassAnnotation(name, (class_index or {}).get(name, i), result.means.astype(np.float32),
                                        flags, tuple(float(v) for v in result.eigenvalues), "simulated", fraction)
    return Annotation(classes, dict(meta or {}))


def annotation_widget(clusterings: Mapping[str, SpectralResult]) -> tuple[Any, Any]:
    """A checkbox panel for a person (needs ``ipywidgets``): one row per class, one box per
    cluster, ticked = distractor. Returns ``(widget, read)``; ``read()`` gives the
    ``{"class": [ids]}`` mapping for :func:`human_annotation`. Without ipywidgets, write that
    mapping by hand in the notebook's ``distractors`` parameter instead."""
    try:
        import ipywidgets as widgets
    except ImportError as err:
        raise ImportError("the checkbox panel needs ipywidgets (pip install ipywidgets); or write the "
                          "distractor cluster ids into the `distractors` parameter, e.g. {'boat': [1]}") from err
    boxes: dict[str, list[Any]] = {}
    rows = []
    for name, result in clusterings.items():
        boxes[name] = [widgets.Checkbox(value=False, description=f"cluster {c}", indent=False)
                       for c in range(result.k)]
        rows.append(widgets.HBox([widgets.Label(f"{name}: distractor clusters"), *boxes[name]]))
    panel = widgets.VBox(rows)

    def read() -> dict[str, list[int]]:
        return {name: [c for c, box in enumerate(bs) if box.value] for name, bs in boxes.items()
                if any(box.value for box in bs)}

    return panel, read
