"""Localization metrics of thesis chapter 3: box IoU, CorLoc, the ILSVRC top-5 protocol, pixel IoU,
per-class accuracy and the eigenvalue ranking curve of Fig. 3.5(b).

Boxes are (x0, y0, x1, y1) in continuous pixel-edge coordinates (see
:mod:`~thesislib.methods.micro_annotation.regions`); a NaN box (no prediction) overlaps nothing.

* **CorLoc** (per image, class known): the predicted box of the image's class has IoU >= 0.5 with
  one of that class's ground-truth boxes.
* **ILSVRC classification with localization** (section 3.4): up to five (class, box) guesses
  per image; the image counts as correct if one guess has the right class and IoU >= 0.5 with a
  ground-truth box of that class; the error is 1 - accuracy. Per-class localization accuracy
  is the same criterion averaged over the images of each ground-truth class.
* **Pixel IoU** of D^y against ground-truth masks, accumulated over the images of a class
  (sum of intersections / sum of unions, as in the VOC protocol).
* **Eigenvalue ranking** (Fig. 3.5(b)): sort classes by lambda_2 ascending, annotate the first
  fraction x of them, and plot the fraction y of the total improvement that they carry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IOU_THRESHOLD = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) and b (M, 4) -> (N, M); NaN boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.nan_to_num(iou, nan=0.0)


def best_iou(pred: np.ndarray, gt_boxes: Sequence[np.ndarray]) -> np.ndarray:
    """For each image i, the largest IoU of box ``pred[i]`` (4,) with the boxes ``gt_boxes[i]``
    (n_i, 4) -> (B,); 0 when either is missing."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    if len(pred) != len(gt_boxes):
        raise ValueError(f"{len(pred)} predicted boxes but {len(gt_boxes)} ground-truth lists")
    out = np.zeros(len(pred))
    for i, gt in enumerate(gt_boxes):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
        if len(gt):
            out[i] = box_iou(pred[i], gt).max()
    return out


def corloc(pred: np.ndarray, gt_boxes: Sequence[np.ndarray], threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Per-image correct localization (B,) bool: :func:`best_iou` >= ``threshold``."""
    return best_iou(pred, gt_boxes) >= threshold


def top5_localization(pred_classes: np.ndarray, pred_boxes: np.ndarray, gt_class: np.ndarray,
                      gt_boxes: Sequence[np.ndarray], threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """ILSVRC classification-with-localization correctness per image, (B,) bool.

    ``pred_classes`` (B, G) int with G <= 5 guesses, ``pred_boxes`` (B, G, 4), ``gt_class`` (B,),
    ``gt_boxes[i]`` (n_i, 4): the boxes of image i's ground-truth class. A guess is correct if its
    class is the ground-truth class and its box has IoU >= ``threshold`` with one of those boxes.
    """
    pred_classes = np.asarray(pred_classes)
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64)
    gt_class = np.asarray(gt_class)
    if pred_classes.ndim != 2 or pred_classes.shape[1] > 5:
        raise ValueError(f"pred_classes must be (B, G) with G <= 5, got {pred_classes.shape}")
    if pred_boxes.shape != pred_classes.shape + (4,):
        raise ValueError(f"pred_boxes must be {pred_classes.shape + (4,)}, got {pred_boxes.shape}")
    correct = np.zeros(len(pred_classes), dtype=bool)
    for g in range(pred_classes.shape[1]):
        hit = pred_classes[:, g] == gt_class
        if hit.any():
            rows = np.flatnonzero(hit)
            ious = best_iou(pred_boxes[rows, g], [gt_boxes[i] for i in rows])
            correct[rows] |= ious >= threshold
    return correct


def localization_error(correct: np.ndarray) -> float:
    """1 - accuracy, in percent."""
    return 100.0 * (1.0 - float(np.mean(correct)))


def per_class_accuracy(correct: np.ndarray, classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean of ``correct`` over the images of each class, in percent, (num_classes,); NaN where a
    class has no image."""
    classes = np.asarray(classes, dtype=np.int64)
    hits = np.bincount(classes, weights=np.asarray(correct, dtype=np.float64), minlength=num_classes)
    counts = np.bincount(classes, minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * hits / counts


def pixel_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of bool masks pred, gt (B, H, W) accumulated over the batch: sum |P & G| / sum |P | G|."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ")
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else float("nan")


def precision_recall(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Pixel precision |P & G| / |P| and recall |P & G| / |G| accumulated over the batch (the
    quality of foreground cues: how much of a cue lies on the object, how much of it is found)."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    inter = float(np.logical_and(pred, gt).sum())
    p, g = float(pred.sum()), float(gt.sum())
    return (inter / p if p else float("nan")), (inter / g if g else float("nan"))


def ranking_curve(second_eigenvalues: np.ndarray, improvement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 3.5(b): classes sorted by lambda_2 ascending; returns x (C + 1,), the fraction of
    classes annotated (0, 1/C, ..., 1), and y (C + 1,), the cumulative improvement of those
    classes divided by the total improvement of all classes. Raises if the total is not positive
    (there is nothing to distribute)."""
    lam = np.asarray(second_eigenvalues, dtype=np.float64)
    gain = np.asarray(improvement, dtype=np.float64)
    if lam.shape != gain.shape or lam.ndim != 1:
        raise ValueError("second_eigenvalues and improvement must be (C,) arrays of equal length")
    total = gain.sum()
    if not total > 0:
        raise ValueError(f"the total improvement is {total:.4g}; the ranking curve needs a positive total")
    order = np.argsort(lam, kind="stable")
    x = np.arange(len(lam) + 1) / len(lam)
    y = np.concatenate([[0.0], np.cumsum(gain[order]) / total])
    return x, y


def fraction_at(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """The curve's y at annotated fraction ``at`` (linear interpolation between classes)."""
    return float(np.interp(at, x, y))
