"""The full ILSVRC pipeline of section 3.4: GAP CAM boxes on ILSVRC val, before and after
micro-annotation, with the classification-with-localization protocol.

1. The CAM classifier: ``cam_vgg16`` (GAP's VGG) from ``weights_path``, or trained here for
   ``epochs`` on the train images (softmax cross-entropy through the engine).
2. Per class (``classes``, default all 1000): patterns of its train images (``pattern_layer``
   ``"trunk"`` = conv5_3), Algorithm 3, annotation. The oracle reads the train XML boxes: a
   region lies "on the object" when its centre is inside a box of the class; train images
   without boxes give no evidence. With ``output_dir`` set, the annotation panel of every class
   (``n_show`` images) is written to ``annotation_panels/<wnid>.png`` for a person.
3. Val: each image is resized to ``input_size`` squared; the top-5 classes each get one box,
   from the largest connected component of D^y of the (micro-annotated) CAM upsampled to the
   input size. A box is compared with the ground-truth boxes scaled into the same frame (IoU is
   unchanged by that scaling).

Reported (paper experiment ids where they exist): top-5 localization error before/after, the
number of classes with a distractor cluster and their mean change of per-class accuracy, the
classes with more than two clusters, the classes changed by >= 5 points, speedboat / snowmobile /
flatworm when processed, and the eigenvalue ranking shares at 15% and 50% of the classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from thesislib.data.imagenet import ImageNetLocalization, collate_localization
from thesislib.engine import evaluate
from thesislib.methods.micro_annotation import plots
from thesislib.methods.micro_annotation.annotation import Annotation
from thesislib.methods.micro_annotation.config import MicroAnnotationParams
from thesislib.methods.micro_annotation.data import denormalize, ilsvrc_sets, loader
from thesislib.methods.micro_annotation.full import FullResult, cluster_classes
from thesislib.methods.micro_annotation.metrics import (
    fraction_at,
    localization_error,
    per_class_accuracy,
    ranking_curve,
    top5_localization,
)
from thesislib.methods.micro_annotation.patterns import box_evidence, forward_maps, normalize_patterns
from thesislib.methods.micro_annotation.regions import localize
from thesislib.methods.micro_annotation.train import prepare_model
from thesislib.nn import CAMClassifier

#: ImageNet wnids of the classes the thesis names
NAMED_CLASSES = {"speedboat": "n04273569", "snowmobile": "n04252077", "flatworm": "n01924916"}


def _loader(dataset: Any, config: MicroAnnotationParams) -> DataLoader:
    return loader(dataset, config, collate_localization)


def cluster_ilsvrc_classes(model: CAMClassifier, train: ImageNetLocalization, classes: list[int],
                           config: MicroAnnotationParams, device: torch.device) -> tuple[Annotation, dict[str, Any]]:
    """Steps (i)-(iii) for every class index in ``classes`` (:func:`~.full.cluster_classes`; the
    oracle reads the train boxes); returns the annotation and, per wnid, the number of patterns,
    the eigenvalues and k."""
    size = (config.input_size, config.input_size)

    def source(c: int):
        subset = Subset(train, train.indices_of(c).tolist())
        return lambda: ((images, labels, boxes) for images, labels, _, boxes in _loader(subset, config))

    sources = [(train.wnids[c], c, source(c)) for c in classes]
    return cluster_classes(model, sources, lambda boxes, patterns: box_evidence(patterns, boxes, size),
                           config, device, "ilsvrc")


def evaluate_ilsvrc(model: CAMClassifier, val: Any, annotation: Annotation, wnids: list[str],
                    config: MicroAnnotationParams, device: torch.device, keep_examples: int = 12) -> dict[str, Any]:
    """Top-5 classification with localization on ``val``, with the plain and the micro-annotated
    CAMs, through :func:`thesislib.engine.evaluate` (in order; sharded across DDP ranks and
    gathered, so every rank gets the whole result). Returns per-image correctness ``before`` /
    ``after`` (N,) bool, the ``labels`` (N,) and up to ``keep_examples`` images whose correctness
    changed, with their boxes, for the figure."""
    size = (config.input_size, config.input_size)
    affected = {wnids.index(name): annotation.classes[name] for name in annotation.affected}

    def fn(net: CAMClassifier, batch: Any) -> dict[str, torch.Tensor]:
        images, target, _, gt_boxes = batch
        logits, cams, raw = forward_maps(net, images, config.pattern_layer)  # type: ignore[arg-type]
        phi = normalize_patterns(raw.float())
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices                          # (B, G)
        rows = torch.arange(len(images), device=images.device)
        boxes_b = np.zeros(tuple(top.shape) + (4,))
        boxes_a = np.zeros_like(boxes_b)
        for g in range(top.shape[1]):
            maps = cams[rows, top[:, g]].float()
            after = maps.clone()
            for c, spec in affected.items():
                hit = top[:, g] == c
                if bool(hit.any()):
                    after[hit] = spec.suppress(maps[hit], phi[hit])
            _, boxes_b[:, g] = localize(maps.cpu(), size, config.tau, config.threshold_rule, config.upsample)
            changed = (after != maps).flatten(1).any(dim=1).cpu().numpy()
            boxes_a[:, g] = boxes_b[:, g]
            if changed.any():
                _, boxes_a[changed, g] = localize(after[torch.as_tensor(changed, device=after.device)].cpu(), size,
                                                  config.tau, config.threshold_rule, config.upsample)
        pred, truth = top.cpu().numpy(), target.cpu().numpy()
        return {"before": torch.from_numpy(top5_localization(pred, boxes_b, truth, gt_boxes)),
                "after": torch.from_numpy(top5_localization(pred, boxes_a, truth, gt_boxes)),
                "labels": target, "pred": top, "boxes_before": torch.from_numpy(boxes_b),
                "boxes_after": torch.from_numpy(boxes_a)}

    out = evaluate(model, val, fn, device, batch_size=config.batch_size, collate_fn=collate_localization,
                   num_workers=config.num_workers)
    before, after, labels = out["before"].numpy(), out["after"].numpy(), out["labels"].numpy()
    pred = out["pred"].numpy()
    examples: dict[str, list[Any]] = {"images": [], "before": [], "after": [], "gt": []}
    for i in np.flatnonzero(before != after)[:keep_examples]:
        image, _, _, gt = val[int(i)]
        hit = np.flatnonzero(pred[i] == labels[i])
        g = int(hit[0]) if hit.size else 0
        examples["images"].append(denormalize(image[None])[0])
        examples["before"].append(out["boxes_before"][i, g].numpy())
        examples["after"].append(out["boxes_after"][i, g].numpy())
        examples["gt"].append(gt)
    return {"before": before, "after": after, "labels": labels, "examples": examples}


def run_ilsvrc(config: MicroAnnotationParams, device: torch.device) -> FullResult:
    """The whole ILSVRC experiment (see the module docstring)."""
    train, val = ilsvrc_sets(config)
    wnids = train.wnids
    model = prepare_model(config, len(wnids), device)
    classes = sorted({int(c) for c in np.unique(train.labels)})
    annotation, info = cluster_ilsvrc_classes(model, train, classes, config, device)
    if config.output_dir:
        annotation.save(f"{config.output_dir}/annotation.json")
    ev = evaluate_ilsvrc(model, val, annotation, wnids, config, device)
    return summarize_ilsvrc(config, wnids, annotation, info, ev)


ILSVRC_PROTOCOL: dict[str, Any] = {"input_size": 224, "pattern_layer": "trunk", "tau": 0.2, "threshold_rule": "max",
                                   "rho": 0.7, "min_clusters": 2, "max_clusters": 4}
"""The settings of ``configs/micro_annotation/full_ilsvrc.yaml`` that encode the thesis's run."""


def ilsvrc_deviations(config: MicroAnnotationParams, annotation: Annotation) -> list[str]:
    """How a ``cam_vgg16`` ILSVRC run departs from the thesis's (empty: it follows it): a class or
    image subset, a GAP network trained here instead of loaded, the oracle instead of a person, or
    other settings than :data:`ILSVRC_PROTOCOL`. Such a run's ids carry them in brackets
    (``ilsvrc/gap-vgg[oracle]+micro``), so it can never fill the paper's rows."""
    out = [f"{k}={getattr(config, k)}" for k, v in ILSVRC_PROTOCOL.items() if getattr(config, k) != v]
    if config.classes:
        out.append(f"classes={len(config.classes)}")
    for name in ("max_train_per_class", "max_val"):
        if getattr(config, name):
            out.append(f"{name}={getattr(config, name)}")
    if config.epochs > 0:
        out.append("trained-here")
    if any(entry.source == "simulated" for entry in annotation.classes.values()):
        out.append("oracle")
    return out


def summarize_ilsvrc(config: MicroAnnotationParams, wnids: list[str], annotation: Annotation,
                     info: dict[str, Any], ev: dict[str, Any]) -> FullResult:
    """Metrics, table and figures of an ILSVRC run."""
    n = len(wnids)
    acc_b = per_class_accuracy(ev["before"], ev["labels"], n)
    acc_a = per_class_accuracy(ev["after"], ev["labels"], n)
    gain = acc_a - acc_b
    evaluated = np.isfinite(gain)
    affected = np.array([w in annotation.classes and annotation.classes[w].has_distractor for w in wnids])
    dev = ilsvrc_deviations(config, annotation) if config.arch == "cam_vgg16" else []   # other archs: never paper ids
    tag = f"[{','.join(dev)}]" if dev else ""
    prefix = f"ilsvrc/gap-vgg{tag}" if config.arch == "cam_vgg16" else f"ilsvrc/{config.arch}"
    err_b, err_a = localization_error(ev["before"]), localization_error(ev["after"])
    mean_gain = float(np.nanmean(gain[affected & evaluated])) if (affected & evaluated).any() else float("nan")
    more_than_2 = sum(1 for v in info.values() if v["k"] > 2)
    changed = int((np.abs(gain[evaluated]) >= 5).sum())
    experiments: dict[str, dict[str, float]] = {
        prefix: {"top5_loc_error": err_b},
        f"{prefix}+micro": {"top5_loc_error": err_a},
        f"{prefix}+micro/affected": {"n_classes": float(affected.sum()), "loc_accuracy_gain": mean_gain},
        f"{prefix}+micro/more-than-2-clusters": {"n_classes": float(more_than_2)},
        f"{prefix}+micro/changed-5": {"n_classes": float(changed)},
    }
    for name, wnid in NAMED_CLASSES.items():
        if wnid in wnids and evaluated[wnids.index(wnid)]:
            c = wnids.index(wnid)
            experiments[f"{prefix}/{name}"] = {"loc_accuracy": float(acc_b[c])}
            experiments[f"{prefix}+micro/{name}"] = {"loc_accuracy": float(acc_a[c]),
                                                     "loc_accuracy_gain": float(gain[c])}
    clustered = [w for w in wnids if info.get(w, {}).get("k", 0) > 0 and evaluated[wnids.index(w)]]
    lam2 = np.array([info[w]["eigenvalues"][1] for w in clustered])
    gains = np.nan_to_num(np.array([gain[wnids.index(w)] for w in clustered]))
    curve = None
    if len(clustered) and gains.sum() > 0:
        curve = ranking_curve(lam2, gains)
        for at in (15, 50):
            ranking = (f"ilsvrc/eigen-ranking{tag}" if config.arch == "cam_vgg16"
                       else f"ilsvrc/{config.arch}-eigen-ranking")
            experiments[f"{ranking}/{at}pct"] = {"improvement_share": 100 * fraction_at(*curve, at / 100)}
    table = [["images evaluated", len(ev["labels"])], ["classes clustered", len(clustered)],
             ["top-5 localization error, CAM (%)", round(err_b, 2)],
             ["top-5 localization error, CAM + micro-annotation (%)", round(err_a, 2)],
             ["classes with a distractor cluster", int(affected.sum())],
             ["mean change of their accuracy (points)", round(mean_gain, 2)],
             ["classes with more than 2 clusters", more_than_2], ["classes changed by >= 5 points", changed]]
    per_class = {"wnids": wnids, "accuracy_before": acc_b, "accuracy_after": acc_a, "gain": gain,
                 "affected": affected, "info": info}
    fns = []
    big = [i for i in np.flatnonzero(evaluated) if abs(gain[i]) >= 5]
    if big:
        fns.append(lambda: plots.gain_bars([wnids[i] for i in big], gain[big]))
    if curve is not None:
        fns.append(lambda: plots.ranking_plot(*curve))
    ex = ev["examples"]
    if ex["images"]:
        fns.append(lambda: plots.before_after_boxes(torch.stack(ex["images"]), np.array(ex["before"]),
                                                      np.array(ex["after"]), ex["gt"], title="ILSVRC val"))
    return FullResult(experiments, table, ["quantity", "value"], annotation, per_class, fns)
