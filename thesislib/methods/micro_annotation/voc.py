"""The VOC half of section 3.4: micro-annotated localization cues for SEC on PASCAL VOC 2012.

The thesis clusters the patterns of the 20 VOC classes, annotates them (boat and train had
significant distractors), and *retrains SEC on the improved localization score maps*. This module
produces and measures those maps; retraining SEC on them is the SEC chapter's step: its
``foreground_cue_file`` parameter takes the ``.npz`` written here (step 4), see
``configs/micro_annotation/full_voc.yaml``.

1. The CAM classifier (``cam_vgg16`` by default at full scale): ``weights_path`` and/or trained
   here on *trainaug* with image-level labels (one sigmoid per class).
2. Per class: patterns of the trainaug images labelled with it (the first
   ``max_train_per_class`` of them when set), Algorithm 3, annotation. The
   oracle reads the trainaug masks (a region is on the object when at least half of its pixels
   are): an upper bound on the human protocol, and the masks are never used for training.
3. Cue quality on *val* (class known, as SEC's cues use the image labels): D^y of every present
   class at the input resolution against the ground-truth mask (void pixels excluded), before
   and after step (iv): precision, recall and IoU per class.
4. With ``output_dir``: ``cues_before.npz`` / ``cues_after.npz`` for every trainaug image, a
   uint8 ``cue_size`` x ``cue_size`` map (0 = no cue, c = VOC class c; where classes overlap, the
   one with the larger score relative to its maximum), i.e. SEC's foreground cues at its
   41 x 41 score-map resolution, plus ``annotation.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from thesislib.data.voc import VOCSegmentation
from thesislib.engine import evaluate, get_rank
from thesislib.methods.micro_annotation.annotation import Annotation
from thesislib.methods.micro_annotation.config import MicroAnnotationParams
from thesislib.methods.micro_annotation.data import FOREGROUND, loader, voc_sets
from thesislib.methods.micro_annotation.full import FullResult, cluster_classes
from thesislib.methods.micro_annotation.patterns import forward_maps, mask_evidence, normalize_patterns
from thesislib.methods.micro_annotation.regions import threshold_regions, upsample_scores
from thesislib.methods.micro_annotation.train import prepare_model
from thesislib.nn import CAMClassifier

CUE_SIZE = 41


def _loader(dataset: Any, config: MicroAnnotationParams) -> DataLoader:
    return loader(dataset, config)


def cluster_voc_classes(model: CAMClassifier, train: VOCSegmentation, classes: list[int], config: MicroAnnotationParams,
                        device: torch.device) -> tuple[Annotation, dict[str, Any]]:
    """Steps (i)-(iii) for the foreground classes ``classes`` (0 = aeroplane .. 19 = tvmonitor;
    :func:`~.full.cluster_classes`, the oracle reads the trainaug masks)."""
    def source(c: int):
        members = np.flatnonzero(train.labels[:, c])
        kept = members[: config.max_train_per_class] if config.max_train_per_class else members
        subset = Subset(train, kept.tolist())
        return lambda: ((b["image"], b["labels"], b["mask"] == c + 1) for b in _loader(subset, config))

    sources = [(FOREGROUND[c], c, source(c)) for c in classes]
    return cluster_classes(model, sources, lambda masks, patterns: mask_evidence(patterns, torch.stack(masks)),
                           config, device, "voc")


@torch.no_grad()
def voc_maps(model: CAMClassifier, images: torch.Tensor, labels: torch.Tensor, annotation: Annotation,
             config: MicroAnnotationParams, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """CAMs of the present classes (B, 20, h, w) before and after step (iv) (absent classes: -inf)."""
    _, cams, raw = forward_maps(model, images.to(device), config.pattern_layer)  # type: ignore[arg-type]
    cams = cams.float()
    present = (labels.to(device) > 0.5)[:, :, None, None]
    before = cams.masked_fill(~present, float("-inf"))
    after = annotation.apply(before, normalize_patterns(raw.float()), FOREGROUND)
    return before, after


def cue_maps(scores: torch.Tensor, size: int, config: MicroAnnotationParams) -> np.ndarray:
    """(B, 20, h, w) scores -> uint8 (B, size, size): 0 or the VOC class (1..20) of the cue."""
    b, c = scores.shape[:2]
    up = upsample_scores(scores.flatten(0, 1), (size, size), config.upsample).view(b, c, size, size)
    regions = threshold_regions(up, config.tau, config.threshold_rule)
    top = up.masked_fill(~torch.isfinite(up), float("-inf")).amax(dim=(2, 3), keepdim=True)
    relative = torch.where(regions, up / top.abs().clamp(min=1e-12), torch.full_like(up, float("-inf")))
    best = relative.argmax(dim=1)
    return torch.where(regions.any(dim=1), best + 1, torch.zeros_like(best)).to(torch.uint8).cpu().numpy()


def evaluate_voc(model: CAMClassifier, val: Any, annotation: Annotation, config: MicroAnnotationParams,
                 device: torch.device) -> dict[str, np.ndarray]:
    """Per-class pixel counts (20,) of D^y against the ground truth on ``val``, before/after:
    ``inter``, ``pred``, ``gt`` and ``union`` (void pixels excluded). Per-image counts (N, 20) come
    from :func:`thesislib.engine.evaluate` (sharded across DDP ranks and gathered) and are summed."""
    size = (config.input_size, config.input_size)

    def fn(net: CAMClassifier, batch: Any) -> dict[str, torch.Tensor]:
        labels, mask = batch["labels"], batch["mask"]
        before, after = voc_maps(net, batch["image"], labels, annotation, config, mask.device)
        valid = mask != 255
        present = (labels > 0.5)[:, :, None, None]
        gt = (mask[:, None] == torch.arange(1, 21, device=mask.device)[None, :, None, None]) & valid[:, None] & present
        out = {}
        for tag, maps in (("before", before), ("after", after)):
            b, c = maps.shape[:2]
            up = upsample_scores(maps.flatten(0, 1), size, config.upsample).view(b, c, *size)
            pred = threshold_regions(up, config.tau, config.threshold_rule) & valid[:, None] & present
            out[f"inter_{tag}"] = (pred & gt).sum(dim=(2, 3))
            out[f"pred_{tag}"] = pred.sum(dim=(2, 3))
            out[f"gt_{tag}"] = gt.sum(dim=(2, 3))
            out[f"union_{tag}"] = (pred | gt).sum(dim=(2, 3))
        return out

    per_image = evaluate(model, val, fn, device, batch_size=config.batch_size, num_workers=config.num_workers)
    return {key: value.sum(dim=0).double().numpy() for key, value in per_image.items()}


def write_cues(model: CAMClassifier, train: VOCSegmentation, annotation: Annotation, config: MicroAnnotationParams,
               device: torch.device) -> tuple[Path, Path]:
    """SEC's foreground cues for every trainaug image, before and after micro-annotation: uint8
    (N, ``CUE_SIZE``, ``CUE_SIZE``) maps from :func:`thesislib.engine.evaluate` (in dataset order,
    sharded across DDP ranks and gathered), written by rank 0 as ``cues_{before,after}.npz`` keyed
    by image id; returns the two paths."""
    def fn(net: CAMClassifier, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        before, after = voc_maps(net, batch["image"], batch["labels"], annotation, config, batch["image"].device)
        return (torch.from_numpy(cue_maps(before, CUE_SIZE, config)),
                torch.from_numpy(cue_maps(after, CUE_SIZE, config)))

    cues = evaluate(model, train, fn, device, batch_size=config.batch_size, num_workers=config.num_workers)
    paths = (Path(config.output_dir) / "cues_before.npz", Path(config.output_dir) / "cues_after.npz")
    if get_rank() == 0:
        for path, maps in zip(paths, cues):
            np.savez_compressed(path, **{image_id: cue for image_id, cue in zip(train.ids, maps.numpy())})
    return paths


def run_voc(config: MicroAnnotationParams, device: torch.device) -> FullResult:
    """The whole VOC cue experiment (see the module docstring)."""
    train, val, classes = voc_sets(config)
    model = prepare_model(config, 20, device)
    annotation, info = cluster_voc_classes(model, train, classes, config, device)
    counts = evaluate_voc(model, val, annotation, config, device)
    if config.output_dir:
        annotation.save(Path(config.output_dir) / "annotation.json")
        write_cues(model, train, annotation, config, device)
    return summarize_voc(config, annotation, info, counts, classes)


def summarize_voc(config: MicroAnnotationParams, annotation: Annotation, info: dict[str, Any],
                  counts: dict[str, np.ndarray], classes: list[int]) -> FullResult:
    """Cue precision / recall / IoU per class and averaged, before and after."""
    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * a / b

    stats = {t: {"cue_precision": ratio(counts[f"inter_{t}"], counts[f"pred_{t}"]),
                 "cue_recall": ratio(counts[f"inter_{t}"], counts[f"gt_{t}"]),
                 "pixel_iou": ratio(counts[f"inter_{t}"], counts[f"union_{t}"])} for t in ("before", "after")}
    prefix = f"voc12/{config.arch}-cues"
    experiments: dict[str, dict[str, float]] = {}
    for t, exp in (("before", prefix), ("after", f"{prefix}+micro")):
        experiments[exp] = {k: float(np.nanmean(v[classes])) for k, v in stats[t].items()}
        for c in classes:
            experiments[f"{exp}/{FOREGROUND[c]}"] = {k: float(v[c]) for k, v in stats[t].items()}
    table = [[FOREGROUND[c], info.get(FOREGROUND[c], {}).get("k", 0),
              ", ".join(map(str, annotation.classes[FOREGROUND[c]].distractors))
              if FOREGROUND[c] in annotation.classes else "–",
              round(stats["before"]["cue_precision"][c], 1), round(stats["after"]["cue_precision"][c], 1),
              round(stats["before"]["pixel_iou"][c], 1), round(stats["after"]["pixel_iou"][c], 1)] for c in classes]
    headers = ["class", "k", "distractor clusters", "cue precision, CAM", "cue precision, micro",
               "pixel IoU, CAM", "pixel IoU, micro"]
    per_class = {"stats": stats, "info": info}
    return FullResult(experiments, table, headers, annotation, per_class, [])
