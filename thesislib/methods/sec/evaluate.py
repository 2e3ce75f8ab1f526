"""SEC at test time (thesis Fig. 2.3): probabilities, the CRF-refined segmentation, mIoU, cue quality.

:func:`predict_probs` upscales the network's class probabilities to the image, :func:`predict`
refines them with the dense CRF (unaries ``-log max(p, 1e-5)``, as the released demo) and takes
the argmax, :func:`evaluate` sums per-image confusion matrices over an evaluation set without and
with the CRF through :func:`thesislib.engine.evaluate` (sharded across torchrun processes and
gathered). :func:`evaluate_config` uses a run's test-time settings, :func:`flat_metrics` puts the
result in the results schema, :func:`cue_stats` measures the cues against the training masks.
Nothing here depends on how the network was trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.crf import DenseCRFParams, dense_crf, unary_from_probabilities
from thesislib.engine import evaluate as engine_evaluate
from thesislib.eval.segmentation import SegmentationConfusion
from thesislib.methods.sec.config import SECParams
from thesislib.methods.sec.cues import cue_statistics, downsample_masks
from thesislib.methods.sec.data import SECData, TensorItems
from thesislib.methods.sec.localization import CueMaps

__all__ = ["cue_stats", "evaluate", "evaluate_config", "flat_metrics", "predict", "predict_probs"]


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


def _confusions(pred: Tensor, masks: Tensor, num_labels: int) -> tuple[Tensor, Tensor]:
    """Per image: the (K, K) confusion matrix (truth x prediction, ignore pixels left out) and the
    (K,) histogram of predicted labels over all pixels; (B, K, K) and (B, K) int64."""
    matrices, hists = [], []
    for p, m in zip(pred, masks):
        conf = SegmentationConfusion(num_labels, device=p.device)
        conf.update(p, m)
        matrices.append(conf.matrix)
        hists.append(torch.bincount(p.reshape(-1), minlength=num_labels)[:num_labels])
    return torch.stack(matrices), torch.stack(hists)


def _summary(matrix: Tensor, hist: Tensor, suffix: str) -> dict[str, Any]:
    """mIoU, foreground fraction, pixel accuracy and per-class IoU (%) of a summed confusion."""
    cm = matrix.double()
    tp = cm.diagonal()
    iou = tp / (cm.sum(0) + cm.sum(1) - tp)            # 0/0 = NaN: a class absent from both
    h = hist.double()
    return {f"miou{suffix}": float(iou.nanmean()) * 100.0,
            f"fg_fraction{suffix}": float(1.0 - h[0] / h.sum()) * 100.0,
            f"pixel_acc{suffix}": float(tp.sum() / cm.sum()) * 100.0,
            f"iou{suffix}": [float(v) * 100.0 for v in iou.tolist()]}


@torch.no_grad()
def evaluate(model: nn.Module, eval_set: Dataset, device: torch.device, crf: DenseCRFParams | None = None, *,
             num_labels: int, batch_size: int = 50, crf_method: str = "auto") -> dict[str, Any]:
    """mIoU (%) over ``eval_set`` (items with ``image``, ``rgb``, ``mask``), without and (when
    ``crf`` is given) with the test-time CRF: ``miou``, ``fg_fraction`` (% of pixels predicted as
    a foreground class, ignore pixels included), ``pixel_acc``, ``iou`` (per class, NaN for a
    class absent from truth and prediction), and the same keys with ``_crf``.

    Runs through :func:`thesislib.engine.evaluate` (eval mode, no gradients; under torchrun each
    process takes every W-th image and the per-image confusions are gathered, so every process
    returns the same numbers). Items of different sizes (VOC) are evaluated one at a time, equal
    sizes in batches of ``batch_size``. ``model`` is the plain network, not its DDP wrapper.
    """
    def fn(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, ...]:
        masks = batch["mask"]
        probs = torch.softmax(net(batch["image"]).float(), dim=1)
        if tuple(probs.shape[-2:]) != tuple(masks.shape[-2:]):
            probs = F.interpolate(probs, size=tuple(masks.shape[-2:]), mode="bilinear", align_corners=True)
        out = _confusions(probs.argmax(dim=1), masks, num_labels)
        if crf is not None:
            q = dense_crf(unary_from_probabilities(probs), batch["rgb"].float(), crf, method=crf_method)
            out += _confusions(q.argmax(dim=1), masks, num_labels)
        return out

    size = batch_size if isinstance(eval_set, TensorItems) else 1
    parts = engine_evaluate(model, eval_set, fn, device, batch_size=size, amp=False)
    out = _summary(parts[0].sum(0), parts[1].sum(0), "")
    if crf is not None:
        out.update(_summary(parts[2].sum(0), parts[3].sum(0), "_crf"))
    return out


def evaluate_config(model: nn.Module, data: SECData, params: SECParams, device: torch.device) -> dict[str, Any]:
    """:func:`evaluate` with the run's test-time CRF settings (``test_crf``, ``test_crf_method``)."""
    return evaluate(model, data.test, device, params.test_crf_params() if params.test_crf else None,
                    num_labels=data.num_labels, batch_size=params.eval_batch_size, crf_method=params.test_crf_method)


def flat_metrics(evaluation: dict[str, Any], class_names: Sequence[str]) -> dict[str, float]:
    """Metrics of one run in the results schema: ``miou``, ``fg_fraction``, ``pixel_acc`` and
    ``iou_<class>`` after the test-time CRF when it ran (the thesis's protocol), ``miou_nocrf``
    and ``fg_fraction_nocrf`` before it."""
    crf = "_crf" if "miou_crf" in evaluation else ""
    out = {"miou": evaluation[f"miou{crf}"], "fg_fraction": evaluation[f"fg_fraction{crf}"],
           "pixel_acc": evaluation[f"pixel_acc{crf}"], "miou_nocrf": evaluation["miou"],
           "fg_fraction_nocrf": evaluation["fg_fraction"]}
    for name, value in zip(class_names, evaluation[f"iou{crf}"]):
        if not math.isnan(value):
            out[f"iou_{name}"] = value
    return out


def cue_stats(cues: CueMaps, data: SECData, limit: int = 500) -> dict[str, float]:
    """:func:`~thesislib.methods.sec.cues.cue_statistics` against the training masks (scenes:
    all images; VOC: the first ``limit``), downsampled to the mask by nearest neighbour."""
    n = len(cues) if data.kind == "scenes" else min(limit, len(cues))
    side = cues.cues.shape[-1]
    if data.kind == "scenes":
        masks = downsample_masks(data.train_masks(), (side, side))
    else:
        masks = torch.stack([downsample_masks(m[None], (side, side))[0] for m in data.train_masks(range(n))])
    return cue_statistics(cues.cues[:n], masks[:n])
