"""SEC at test time (thesis Fig. 2.3): probabilities, the CRF-refined segmentation and mIoU.

:func:`predict_probs` upscales the network's class probabilities to the image, :func:`predict`
refines them with the dense CRF (unaries ``-log max(p, 1e-5)``, as the released demo) and takes
the argmax, :func:`evaluate` accumulates the confusion matrix over an evaluation set without and
with the CRF. Nothing here depends on how the network was trained.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from thesislib.crf import DenseCRFParams, dense_crf, unary_from_probabilities
from thesislib.eval.segmentation import SegmentationConfusion
from thesislib.methods.sec.data import TensorItems

__all__ = ["evaluate", "predict", "predict_probs"]



@torch.no_grad()
def predict_probs(model: nn.Module, images: Tensor, device: torch.device,
                  out_size: tuple[int, int] | None = None) -> Tensor:
    """Class probabilities (B, K, H, W) of network inputs (B, 3, S, S), upscaled bilinearly (corners
    aligned, as the released demo's ``zoom(order=1)``) to ``out_size`` when given."""
    was_training = model.training
    model.eval()
    try:
        probs = torch.softmax(model(images.to(device)).float(), dim=1)
    finally:
        model.train(was_training)
    if out_size is not None and tuple(probs.shape[-2:]) != tuple(out_size):
        probs = F.interpolate(probs, size=tuple(out_size), mode="bilinear", align_corners=True)
    return probs


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, device: torch.device, crf: DenseCRFParams | None = None, *,
            rgb: Tensor | None = None, out_size: tuple[int, int] | None = None,
            crf_method: str = "auto") -> Tensor:
    """Test-time segmentation (Fig. 2.3), (B, H, W) int64 labels.

    The probabilities are upscaled to the image size (``out_size``, or ``rgb``'s size), then, when
    ``crf`` is given (SEC: ``DenseCRFParams.sec_test()``), refined by the dense CRF on the
    (B, 3, H, W) 0-255 image ``rgb`` with unaries ``-log max(p, 1e-5)``; the label is the argmax.
    """
    if out_size is None and rgb is not None:
        out_size = tuple(rgb.shape[-2:])
    probs = predict_probs(model, images, device, out_size)
    if crf is None:
        return probs.argmax(dim=1)
    if rgb is None:
        raise ValueError("the test-time CRF needs the images (rgb)")
    q = dense_crf(unary_from_probabilities(probs), rgb.to(device).float(), crf, method=crf_method)
    return q.argmax(dim=1)


def _summary(confusion: SegmentationConfusion, suffix: str) -> dict[str, Any]:
    iou = confusion.iou()
    return {f"miou{suffix}": float(confusion.mean_iou()) * 100.0,
            f"fg_fraction{suffix}": float(confusion.foreground_fraction()) * 100.0,
            f"pixel_acc{suffix}": float(confusion.pixel_accuracy()) * 100.0,
            f"iou{suffix}": [float(v) * 100.0 for v in iou.tolist()]}


@torch.no_grad()
def evaluate(model: nn.Module, eval_set: Dataset, device: torch.device, crf: DenseCRFParams | None = None, *,
             num_labels: int, batch_size: int = 50, crf_method: str = "auto") -> dict[str, Any]:
    """mIoU (%) over ``eval_set`` (items with ``image``, ``rgb``, ``mask``), without and (when
    ``crf`` is given) with the test-time CRF: ``miou``, ``fg_fraction`` (% of pixels predicted as
    a foreground class, ignore pixels included), ``pixel_acc``, ``iou`` (per class, NaN for a
    class absent from truth and prediction), and the same keys with ``_crf``.

    Items of different sizes (VOC) are evaluated one at a time, equal sizes in batches.
    """
    plain = SegmentationConfusion(num_labels, device=device)
    refined = SegmentationConfusion(num_labels, device=device) if crf is not None else None
    loader = DataLoader(eval_set, batch_size=batch_size if isinstance(eval_set, TensorItems) else 1, shuffle=False)
    for batch in loader:
        masks = batch["mask"].to(device)
        probs = predict_probs(model, batch["image"], device, tuple(masks.shape[-2:]))
        plain.update(probs.argmax(dim=1), masks)
        if refined is not None:
            q = dense_crf(unary_from_probabilities(probs), batch["rgb"].to(device).float(), crf, method=crf_method)
            refined.update(q.argmax(dim=1), masks)
    out = _summary(plain, "")
    if refined is not None:
        out.update(_summary(refined, "_crf"))
    return out
