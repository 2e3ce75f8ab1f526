"""Segmentation transfer of a pre-trained conv backbone: an FCN head fine-tuned on VOC2012, scored by mIoU.

The papers' protocol (Jenni Table 3.3, study note 004 §0): the self-supervised conv layers initialise
Long et al.'s **FCN** (FCN-32s, Caffe), fine-tuned on PASCAL VOC2012 segmentation and scored by the
mean IoU on ``val``; ch. 3 trained 100,000 iterations at a fixed learning rate of 1e-4.

Here: :class:`thesislib.nn.fcn.BackboneFCN` (the convolutionalised fc6 / fc7 head and a score layer
on the backbone's conv5 map, upsampled bilinearly; its docstring lists the differences to FCN-32s),
prepared by Krähenbühl et al.'s rescaling (BN folded, the new head initialised within-layer, all
layers rescaled between-layer; :func:`thesislib.eval.transfer.rescale_for_transfer`), trained with
pixel-wise cross-entropy (255 = void ignored) through :func:`thesislib.engine.fit` at a fixed
learning rate (SGD, momentum 0.9), and scored through :func:`thesislib.engine.evaluate` at each
image's original resolution with :class:`thesislib.eval.segmentation.SegmentationConfusion`.
Training images are resized to a fixed square (``size``; FCN trained at the original sizes, batch 1),
a decision that allows batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from thesislib.engine import evaluate, fit, train_config
from thesislib.eval.segmentation import SegmentationConfusion
from thesislib.eval.transfer import rescale_for_transfer

VOID = 255


@dataclass(frozen=True)
class SegmentationTransferConfig:
    """Settings of :func:`finetune_segmentation` (defaults: ch. 3's 100k iterations at a fixed 1e-4)."""

    num_classes: int = 21
    iterations: int = 100_000
    batch_size: int = 1
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    size: int = 320
    rescale: bool = True
    rescale_images: int = 16
    seed: int = 0
    num_workers: int = 0


class _ImageOnly(Dataset):
    """``(image, mask)`` items -> ``(image, 0)`` (the rescaling's training batch needs images only)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.dataset[i][0], 0


def segmentation_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean pixel-wise cross-entropy of ``logits`` (B, K, H, W) against ``mask`` (B, H, W) int64 (255 ignored);
    logits of another size are resized bilinearly to the mask's first."""
    if logits.shape[-2:] != mask.shape[-2:]:
        logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits.float(), mask, ignore_index=VOID)


def finetune_segmentation(model: nn.Module, train_set: Dataset, test_set: Dataset, device: torch.device | str,
                          config: SegmentationTransferConfig = SegmentationTransferConfig(),
                          run: Any = None) -> dict[str, Any]:
    """Fine-tune ``model`` (images (B, 3, H, W) -> scores (B, K, H, W), e.g. :class:`thesislib.nn.fcn.BackboneFCN`)
    and report the mIoU on ``test_set``.

    ``train_set`` items ``(image float (3, S, S), mask int64 (S, S))`` (all the same size); ``test_set``
    items ``(image (3, h, w), mask (H, W))`` at the original resolution of the mask (scores are resized
    to it; evaluated one image at a time). Returns ``{"miou": float, "summary": dict (per-class IoU,
    pixel accuracy), "history", "rescale"}``."""
    device = torch.device(device)
    model = model.to(device)
    rescaled = (rescale_for_transfer(model, _ImageOnly(train_set), config.size, device, config.rescale_images,
                                     config.seed) if config.rescale else None)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)

    def step_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, mask = batch
        return segmentation_loss(net(x), mask.long()), {}

    run = run if run is not None else config
    history = fit(model, opt, train_set, step_fn,
                  train_config(run, batch_size=config.batch_size, iterations=config.iterations, seed=config.seed,
                               log_every=max(1, config.iterations // 20), num_workers=config.num_workers),
                  device)

    def confusion_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        x, mask = batch
        logits = net(x)
        if logits.shape[-2:] != mask.shape[-2:]:
            logits = F.interpolate(logits.float(), size=mask.shape[-2:], mode="bilinear", align_corners=False)
        conf = SegmentationConfusion(config.num_classes, VOID, x.device)
        conf.update(logits.argmax(dim=1), mask.long())
        return conf.matrix.reshape(1, -1)

    per_image = evaluate(model, test_set, confusion_fn, device, batch_size=1)
    total = SegmentationConfusion.from_matrix(per_image.sum(dim=0).view(config.num_classes, config.num_classes),
                                              VOID)
    return {"miou": float(total.mean_iou()), "summary": total.summary(), "history": history, "rescale": rescaled}


class ImageMaskItems(Dataset):
    """Items ``{"image": (3, h, w), "mask": (H, W), ...}`` (e.g. :class:`thesislib.data.voc.VOCSegmentation`
    with :class:`thesislib.data.voc.SegInputTransform`) -> ``(image, mask int64)``, the pairs
    :func:`finetune_segmentation` takes; with ``flip``, mirrored left-right together with probability 1/2
    (torch's global generator, seeded per sample by the engine; only when image and mask have one size)."""

    def __init__(self, dataset: Dataset, flip: bool = False) -> None:
        self.dataset, self.flip = dataset, bool(flip)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.dataset[i]
        image, mask = item["image"], torch.as_tensor(item["mask"], dtype=torch.int64)
        if self.flip and image.shape[-2:] == mask.shape[-2:] and bool(torch.randint(0, 2, ()) == 1):
            image, mask = image.flip(-1), mask.flip(-1)
        return image, mask
