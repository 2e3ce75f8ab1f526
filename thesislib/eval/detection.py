"""Detection transfer of a pre-trained conv backbone: torchvision's Faster R-CNN on VOC07, and the VOC07 AP.

The papers' protocol (Jenni Table 3.3, study note 004 §0): the self-supervised conv layers initialise
**Fast R-CNN** (Girshick 2015; Caffe, selective-search proposals, RoI max-pooling 6x6, fc6/fc7),
fine-tuned on VOC2007 ``trainval`` with multi-scale training (shorter side in {480, 576, 688, 864,
1200}) and single-scale testing (600), scored by the VOC2007 detection mAP on ``test``.

**What differs here** (so numbers are comparable only in trend): the detector is torchvision's
:class:`~torchvision.models.detection.FasterRCNN`, i.e. Fast R-CNN's head plus a *learned* region
proposal network (RPN) on the same conv5 map instead of precomputed selective-search proposals, and
RoIAlign (bilinear, 2 samples per bin) instead of RoI max-pooling. Kept as in Fast R-CNN: one
feature map at conv5 (stride 16 for AlexNet), a 6x6 RoI grid, two hidden fc layers (``representation``
units, 4096 in the paper) and the multi-scale / single-scale sizes (torchvision draws a random
``min_size`` per image in training and uses ``test_scale`` in testing). The backbone's conv layers are
prepared by Krähenbühl et al.'s rescaling (:func:`thesislib.nn.rescaling.krahenbuhl_rescale` on the
backbone's conv5 output: BN folded, layers rescaled between-layer); the new detection heads keep
torchvision's initialisation (the papers rescaled the whole Fast R-CNN net, whose output is one tensor;
Faster R-CNN's is a loss dict, a decision).

Pieces: :func:`voc_detection_ap` (the devkit's ``VOCevaldet``: greedy matching at IoU >= 0.5, difficult
objects ignored, 11-point AP by default), :func:`transfer_faster_rcnn` (the detector around a backbone),
:func:`finetune_detection` (training through :func:`thesislib.engine.fit`, scoring through
:func:`thesislib.engine.evaluate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign, box_iou

from thesislib.engine import evaluate, fit, train_config
from thesislib.eval.transfer import rescale_inputs
from thesislib.nn.rescaling import krahenbuhl_rescale

APKind = Literal["voc07", "area"]
MAX_DETECTIONS = 100


def interpolated_ap(recall: torch.Tensor, precision: torch.Tensor, kind: APKind = "voc07") -> float:
    """AP from a precision / recall curve (float (D,), in rank order).

    ``"voc07"``: (1/11) Σ_{t ∈ {0, 0.1, .., 1}} max_{recall ≥ t} precision (0 where no rank reaches t);
    ``"area"``: the area under the monotone precision envelope (VOC2010+)."""
    if recall.numel() == 0:
        return 0.0
    r, p = recall.double(), precision.double()
    if kind == "voc07":
        total = 0.0
        for t in torch.linspace(0, 1, 11, dtype=torch.float64):
            reach = r >= t - 1e-12
            total += float(p[reach].max()) if bool(reach.any()) else 0.0
        return total / 11
    if kind != "area":
        raise ValueError(f"kind must be 'voc07' or 'area', got {kind!r}")
    mrec = torch.cat([torch.zeros(1, dtype=torch.float64), r, torch.ones(1, dtype=torch.float64)])
    mpre = torch.cat([torch.zeros(1, dtype=torch.float64), p, torch.zeros(1, dtype=torch.float64)])
    mpre = mpre.flip(0).cummax(0).values.flip(0)
    step = torch.nonzero(mrec[1:] != mrec[:-1]).flatten()
    return float(((mrec[step + 1] - mrec[step]) * mpre[step + 1]).sum())


def voc_detection_ap(detections: Sequence[dict[str, torch.Tensor]], ground_truth: Sequence[dict[str, torch.Tensor]],
                     num_classes: int = 20, iou_threshold: float = 0.5, kind: APKind = "voc07") -> dict[str, Any]:
    """Per-class AP and mAP of ``detections`` against ``ground_truth`` (one dict per image, same order).

    ``detections[i]``: ``boxes`` (D, 4) (x1, y1, x2, y2), ``scores`` (D,), ``labels`` (D,) in 1..num_classes;
    ``ground_truth[i]``: ``boxes`` (G, 4), ``labels`` (G,), ``difficult`` (G,) bool. Boxes in continuous
    pixel coordinates (the devkit's inclusive ``+1`` widths are :func:`thesislib.data.voc07.parse_boxes`'s
    ``xmin - 1``). Per class, detections over all images in descending score are matched to the
    object of highest IoU in their image (matched before or not) when that IoU >= ``iou_threshold``
    (the devkit's ``ovmax >= minoverlap``): a match to a difficult object counts as neither TP nor FP,
    a match to an object already detected is a FP (a duplicate), and below the threshold a FP.
    Recall divides by the non-difficult objects. Returns ``{"ap": float64 (num_classes,) (NaN for a class
    without non-difficult objects), "map": float (mean over the others)}``."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection lists for {len(ground_truth)} images")
    aps = torch.full((num_classes,), math.nan, dtype=torch.float64)
    for c in range(1, num_classes + 1):
        gts = [(g["boxes"][g["labels"] == c].double(), g["difficult"][g["labels"] == c].bool()) for g in ground_truth]
        npos = sum(int((~d).sum()) for _, d in gts)
        if npos == 0:
            continue
        img, scores, boxes = [], [], []
        for i, det in enumerate(detections):
            keep = det["labels"] == c
            img += [i] * int(keep.sum())
            scores.append(det["scores"][keep].double())
            boxes.append(det["boxes"][keep].double())
        score = torch.cat(scores) if scores else torch.zeros(0, dtype=torch.float64)
        box = torch.cat(boxes) if boxes else torch.zeros(0, 4, dtype=torch.float64)
        order = torch.sort(score, descending=True, stable=True).indices.tolist()
        used = [torch.zeros(len(d), dtype=torch.bool) for _, d in gts]
        tp, fp = [], []
        for j in order:
            g_boxes, g_diff = gts[img[j]]
            best, k = (0.0, -1)
            if len(g_boxes):
                ious = box_iou(box[j:j + 1], g_boxes)[0]
                best, k = float(ious.max()), int(ious.argmax())
            if best >= iou_threshold:
                if bool(g_diff[k]):
                    continue
                hit = not bool(used[img[j]][k])
                used[img[j]][k] = True
                tp.append(1.0 if hit else 0.0)
                fp.append(0.0 if hit else 1.0)
            else:
                tp.append(0.0)
                fp.append(1.0)
        ctp = torch.tensor(tp, dtype=torch.float64).cumsum(0)
        cfp = torch.tensor(fp, dtype=torch.float64).cumsum(0)
        precision = ctp / (ctp + cfp).clamp_min(1e-300)
        aps[c - 1] = interpolated_ap(ctp / npos, precision, kind)
    return {"ap": aps, "map": float(aps.nanmean())}


class _Backbone(nn.Module):
    """``backbone`` with the ``out_channels`` attribute torchvision's detectors read (one dry pass)."""

    def __init__(self, backbone: nn.Module, in_channels: int = 3, probe_size: int = 64) -> None:
        super().__init__()
        self.body = backbone
        was = backbone.training
        backbone.eval()
        with torch.no_grad():
            self.out_channels = int(backbone(torch.zeros(1, in_channels, probe_size, probe_size)).shape[1])
        backbone.train(was)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@dataclass(frozen=True)
class DetectionConfig:
    """The detector and its fine-tuning (defaults: Fast R-CNN's VOC07 protocol as the papers ran it).

    ``scales`` / ``test_scale``: shorter image side in training (one drawn per image) and testing;
    ``max_size`` the longer-side cap; ``anchor_sizes`` / ``aspect_ratios`` the RPN anchors on the conv5
    map; ``representation`` the width of the two fc layers; SGD (momentum 0.9, ``weight_decay``),
    learning rate ``lr`` divided by 10 after 2/3 of ``iterations``; ``image_mean`` / ``image_std``: the
    detector's normalisation of [0, 1] images (0.5 / 0.5: the [-1, 1] range ch. 3's C was trained on)."""

    num_classes: int = 20
    scales: tuple[int, ...] = (480, 576, 688, 864, 1200)
    test_scale: int = 600
    max_size: int = 2000
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    roi_size: int = 6
    representation: int = 4096
    iterations: int = 150_000
    batch_size: int = 2
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    rescale: bool = True
    rescale_images: int = 16
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    kind: APKind = "voc07"
    seed: int = 0
    num_workers: int = 0


def transfer_faster_rcnn(backbone: nn.Module, config: DetectionConfig = DetectionConfig(),
                         in_channels: int = 3) -> FasterRCNN:
    """torchvision's Faster R-CNN on ``backbone`` (images (B, C, H, W) -> one conv map (B, C5, H5, W5)).

    One feature level (``"0"``), anchors ``anchor_sizes`` x ``aspect_ratios`` at every conv5 position,
    RoIAlign to ``roi_size`` x ``roi_size``, two fc layers of ``representation`` units, ``num_classes`` + 1
    outputs (0 = background)."""
    body = _Backbone(backbone, in_channels)
    anchors = AnchorGenerator(sizes=(tuple(config.anchor_sizes),), aspect_ratios=(tuple(config.aspect_ratios),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=config.roi_size, sampling_ratio=2)
    head = TwoMLPHead(body.out_channels * config.roi_size ** 2, config.representation)
    predictor = FastRCNNPredictor(config.representation, config.num_classes + 1)
    return FasterRCNN(body, num_classes=None, min_size=tuple(config.scales), max_size=config.max_size,
                      image_mean=list(config.image_mean), image_std=list(config.image_std),
                      rpn_anchor_generator=anchors, box_roi_pool=pool, box_head=head, box_predictor=predictor,
                      box_detections_per_img=MAX_DETECTIONS)


def collate_detection(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list, list]:
    """``[(image, target), ...]`` -> ``([images], [targets])`` (images of different sizes stay a list)."""
    return [b[0] for b in batch], [b[1] for b in batch]


def _ground_truth(dataset: Dataset) -> list[dict[str, torch.Tensor]]:
    """Targets of every item of ``dataset`` (items ``(image, target)``); a
    :class:`~thesislib.data.voc07.VOC2007Detection` (or a Subset of one) answers from its parsed
    annotations without decoding the images."""
    base, idx = dataset, None
    if isinstance(dataset, torch.utils.data.Subset):
        base, idx = dataset.dataset, list(dataset.indices)
    objects = getattr(base, "objects", None)
    if objects is not None:
        picked = objects if idx is None else [objects[i] for i in idx]
        return [{"boxes": torch.as_tensor(o.boxes), "labels": torch.as_tensor(o.labels),
                 "difficult": torch.as_tensor(o.difficult)} for o in picked]
    return [dataset[i][1] for i in range(len(dataset))]  # type: ignore[arg-type]


def rescale_backbone(backbone: nn.Module, train_set: Dataset, device: torch.device, n_images: int,
                     size: int, seed: int, image_mean: Sequence[float], image_std: Sequence[float]) -> dict[str, Any]:
    """Krähenbühl et al.'s rescaling of a conv backbone alone (output: its conv map) on ``n_images``
    training images resized to ``size`` x ``size`` and normalised as the detector does."""
    mean = torch.tensor(image_mean).view(-1, 1, 1)
    std = torch.tensor(image_std).view(-1, 1, 1)

    def resize(image: torch.Tensor, _: torch.Generator) -> torch.Tensor:
        image = nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear",
                                          align_corners=False)[0]
        return (image - mean) / std

    batch = rescale_inputs(train_set, n_images, seed, resize).to(device)
    return krahenbuhl_rescale(backbone.to(device), batch, seed=seed)


def finetune_detection(model: FasterRCNN, train_set: Dataset, test_set: Dataset, device: torch.device | str,
                       config: DetectionConfig = DetectionConfig(), run: Any = None) -> dict[str, Any]:
    """Fine-tune ``model`` (from :func:`transfer_faster_rcnn`) on ``train_set`` and score ``test_set``.

    Items ``(image float (3, H, W) in [0, 1], {"boxes", "labels"[, "difficult"]})``
    (:class:`thesislib.data.voc07.VOC07DetectionInput`). With ``config.rescale`` the backbone is rescaled
    first (:func:`rescale_backbone`). Training: the sum of torchvision's four losses (RPN objectness and
    box regression, classifier and box regression), SGD, through :func:`thesislib.engine.fit`.
    Testing at ``test_scale`` through :func:`thesislib.engine.evaluate`, :func:`voc_detection_ap`.
    Returns ``{"map": float, "ap": (num_classes,), "history", "rescale"}``."""
    device = torch.device(device)
    model = model.to(device)
    rescaled = None
    if config.rescale:
        rescaled = rescale_backbone(model.backbone.body, train_set, device, config.rescale_images, config.test_scale,
                                    config.seed, config.image_mean, config.image_std)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, 2 * config.iterations // 3)], gamma=0.1)

    def step_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        losses = net(list(images), targets)
        return sum(losses.values()), {k: v.detach() for k, v in losses.items()}

    run = run if run is not None else config
    history = fit(model, opt, train_set, step_fn,
                  train_config(run, batch_size=config.batch_size, iterations=config.iterations, seed=config.seed,
                               log_every=max(1, config.iterations // 20), num_workers=config.num_workers,
                               channels_last=False),
                  device, scheduler=sched, collate_fn=collate_detection)
    model.transform.min_size = (config.test_scale,)

    def detect_fn(net: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        images, _ = batch
        out = net(list(images))
        n = len(out)
        boxes = torch.zeros(n, MAX_DETECTIONS, 4, device=images[0].device)
        scores = torch.full((n, MAX_DETECTIONS), -1.0, device=images[0].device)
        labels = torch.zeros(n, MAX_DETECTIONS, dtype=torch.int64, device=images[0].device)
        for i, o in enumerate(out):
            k = min(MAX_DETECTIONS, len(o["scores"]))
            boxes[i, :k], scores[i, :k], labels[i, :k] = o["boxes"][:k], o["scores"][:k], o["labels"][:k]
        return {"boxes": boxes, "scores": scores, "labels": labels}

    res = evaluate(model, test_set, detect_fn, device, batch_size=max(1, config.batch_size),
                   collate_fn=collate_detection, amp=False)
    valid = res["scores"] >= 0
    detections = [{"boxes": res["boxes"][i][valid[i]], "scores": res["scores"][i][valid[i]],
                   "labels": res["labels"][i][valid[i]]} for i in range(valid.shape[0])]
    ap = voc_detection_ap(detections, _ground_truth(test_set), config.num_classes, kind=config.kind)
    return {"map": ap["map"], "ap": ap["ap"], "history": history, "rescale": rescaled}
