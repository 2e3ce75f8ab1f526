"""Chaining with SEC at smoke scale: retrain SEC (thesis chapter 2) on micro-annotated cues.

The VOC experiment of section 3.4 regenerates SEC's localization cues from the micro-annotated
score maps and retrains SEC; boat and train, the classes with distractors, gain 10-18 IoU points.
Here the same is done on the distractor scenes of one seed, with the SEC library
(:mod:`thesislib.methods.sec`):

* cues, as in SEC (:mod:`thesislib.methods.sec.cues`): foreground = D^y of every present class
  (CAM > 0.2 max) at the 16 x 16 mask resolution, background = the 10% least salient locations
  (gradient saliency of the same CAM classifier), conflicts dropped; "before" from the plain
  CAMs, "after" from the CAMs with the distractor regions at -inf (step iv). Only the
  foreground part changes;
* two SEC networks (the small FCN, seed, expand and constrain losses) trained with identical
  settings, one on each cue set, and evaluated on the test scenes (mIoU and per-class IoU,
  without the test-time CRF).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thesislib.methods.micro_annotation.annotation import Annotation
from thesislib.methods.micro_annotation.evaluate import scene_maps
from thesislib.methods.micro_annotation.experiments import ScenePrep
from thesislib.methods.sec.cues import (
    background_cues,
    combine_cues,
    cue_statistics,
    downsample_masks,
    foreground_cues,
    saliency_map,
)
from thesislib.methods.sec.data import SECData, scene_items
from thesislib.methods.sec.train import evaluate_config, sec_config, train_sec


@dataclass
class SecChain:
    """Cue label maps (N, 16, 16) uint8 before/after (0 = background, c = class c, 255 = none),
    their statistics against the training masks, and the SEC evaluations on the test scenes
    (``miou``, per-class ``iou`` with background first, in percent)."""

    cues_before: Tensor
    cues_after: Tensor
    cue_stats: dict[str, dict[str, float]]
    evaluation: dict[str, dict[str, Any]]
    class_names: tuple[str, ...]
    seconds: float

    def iou(self, name: str, tag: str) -> float:
        """IoU (%) of class ``name`` for the SEC model trained on the ``tag`` cues."""
        return float(self.evaluation[tag]["iou"][1 + self.class_names.index(name)])


def scene_cues(prep: ScenePrep, annotation: Annotation, device: torch.device, tau: float = 0.2,
               bg_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """SEC cue maps of the training scenes from the plain and from the micro-annotated CAMs."""
    images, labels = prep.train.images, prep.train.labels
    _, cams, phi = scene_maps(prep.model, images, device, prep.config.pattern_layer)
    after = annotation.apply(cams, phi, prep.class_names)
    saliency = torch.cat([saliency_map(prep.model, images[lo:lo + 256].to(device), labels[lo:lo + 256].to(device),
                                       layer="input", classes="all", size=tuple(cams.shape[-2:]), median=True).cpu()
                          for lo in range(0, len(images), 256)])
    background = background_cues(saliency, bg_fraction)
    return (combine_cues(foreground_cues(cams, labels, tau), background),
            combine_cues(foreground_cues(after, labels, tau), background))


def retrain_sec(prep: ScenePrep, annotation: Annotation, device: torch.device, *, iterations: int = 200,
                batch_size: int = 16, lr: float = 1e-3, seed: int | None = None) -> SecChain:
    """Train SEC on the plain and on the micro-annotated cues of ``prep``'s scenes and evaluate both
    (SEC's training CRF and weight decay as in the chapter's original setting: permutohedral, 5e-4)."""
    started = time.perf_counter()
    before, after = scene_cues(prep, annotation, device, prep.config.tau)
    size = int(prep.train.images.shape[-1])
    config = sec_config({"data": "scenes", "n_train": len(prep.train), "n_test": len(prep.test), "image_size": size,
                         "iterations": iterations, "batch_size": batch_size, "optimizer": "adam", "lr": lr,
                         "crf_method": "permutohedral", "weight_decay": 5e-4,
                         "test_crf": False, "seed": prep.seed if seed is None else seed})
    if config.mask_side != before.shape[-1]:
        raise ValueError(f"SEC's masks are {config.mask_side} wide but the cues {before.shape[-1]}")
    data = SECData("scenes", scene_items(prep.train, config.normalization, False),
                   scene_items(prep.test, config.normalization, True), ("background",) + prep.class_names, size,
                   config.normalization, prep.train, prep.test)
    masks = downsample_masks(prep.train.masks, tuple(before.shape[-2:]))
    stats, evaluation = {}, {}
    for tag, cues in (("before", before), ("after", after)):
        stats[tag] = cue_statistics(cues, masks)
        model, _ = train_sec(config, cues, device, data)
        evaluation[tag] = evaluate_config(model, data, config, device)
    return SecChain(before, after, stats, evaluation, prep.class_names, time.perf_counter() - started)
