"""Evaluation of the smoke run: localization before and after step (iv) on the test scenes.

:func:`scene_maps` runs the CAM classifier over images through :func:`thesislib.engine.evaluate`
(eval mode, in order, sharded across DDP ranks when there are several); :func:`evaluate_scenes`
localizes every test image for its own class ("class known", CorLoc) with the plain CAM, the
micro-annotated CAM and the deletion bound, and measures CorLoc, pixel IoU, cue precision /
recall and the share of D^y on the distractor band. The full runs' evaluations (top-5
localization on ILSVRC val, cue quality on VOC val) live in :mod:`.ilsvrc` and :mod:`.voc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.data import Scenes
from thesislib.engine import evaluate
from thesislib.methods.micro_annotation.annotation import Annotation
from thesislib.methods.micro_annotation.config import MicroAnnotationParams
from thesislib.methods.micro_annotation.metrics import corloc, pixel_iou, precision_recall
from thesislib.methods.micro_annotation.patterns import forward_maps, normalize_patterns, region_fraction
from thesislib.methods.micro_annotation.regions import component_boxes, localize
from thesislib.nn import CAMClassifier


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



def scene_maps(model: CAMClassifier, images: Tensor, device: torch.device,
               layer: str = "trunk") -> tuple[Tensor, Tensor, Tensor]:
    """Class scores (B, C), CAMs (B, C, h, w) and normalised patterns (B, K, h, w) of ``images``,
    on the CPU (:func:`thesislib.engine.evaluate`, batches of 256)."""
    def fn(net: CAMClassifier, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        logits, cam, raw = forward_maps(net, batch[0], layer)  # type: ignore[arg-type]
        return logits.float(), cam.float(), normalize_patterns(raw.float())
    return evaluate(model, TensorDataset(images), fn, device, batch_size=256)


def test_accuracy(model: CAMClassifier, test: Scenes, device: torch.device) -> float:
    """Share of test scenes whose top-scoring class is one of their labels."""
    logits, _, _ = scene_maps(model, test.images, device)
    return float(test.labels.gather(1, logits.argmax(dim=1, keepdim=True)).mean())


def evaluate_scenes(model: CAMClassifier, test: Scenes, annotation: Annotation, params: MicroAnnotationParams,
                    device: torch.device) -> SceneEval:
    """Localize every test image for its own class(es) with the plain and the micro-annotated
    maps and compare (CorLoc, pixel IoU, cue precision / recall, share on the distractor)."""
    cfg = params
    _, cams, phi = scene_maps(model, test.images, device, cfg.pattern_layer)
    size = tuple(test.images.shape[-2:])
    metrics: dict[str, dict[str, float]] = {}
    examples: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(test.class_names):
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

