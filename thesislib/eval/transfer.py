"""Fine-tuning transfer to PASCAL VOC 2007 classification (Krähenbühl et al.'s framework; Jenni Tables 3.3, 4.x).

Protocol (study note 004 §0): the self-supervised conv layers initialise the network, the fc
layers are new, and *everything* is fine-tuned on ``trainval`` with a multi-label sigmoid
cross-entropy; training sees random crops (and flips), testing averages the sigmoid scores of
``n_test_crops`` random crops per image (10 in the papers); the metric is the VOC2007 11-point mAP
over the 20 classes with the ``difficult`` entries left out per class.

Pieces:

* :class:`RandomCropItems`: items ``(image (C, H, W), labels)`` -> a random ``crop`` x ``crop``
  window, mirrored left-right with probability 1/2 (drawn from torch's global generator, which the
  engine seeds per sample);
* :class:`MultiCropItems`: the test side: ``n`` random crops per image, stacked (n, C, crop, crop),
  their positions fixed by ``(seed, index)`` so the score does not depend on batch or rank;
* :func:`voc07_map`: 11-point mAP of (N, 20) scores against {-1, 0, 1} labels, 0 = ignored;
* :func:`finetune_multilabel`: train through :func:`thesislib.engine.fit`, score through
  :func:`thesislib.engine.evaluate`.

Not implemented here (stated in the chapters): Krähenbühl et al.'s data-dependent rescaling of
the transferred weights, and the Fast R-CNN / FCN transfer of the papers (the full-scale configs
use torchvision's detection and segmentation models instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from thesislib.engine import evaluate, fit, train_config
from thesislib.eval.multilabel import mean_ap


def _crop_at(image: torch.Tensor, crop: int, top: int, left: int) -> torch.Tensor:
    return image[..., top:top + crop, left:left + crop]


def _check_size(image: torch.Tensor, crop: int) -> None:
    if image.shape[-1] < crop or image.shape[-2] < crop:
        raise ValueError(f"image {tuple(image.shape[-2:])} is smaller than the crop {crop}")


class RandomCropItems(Dataset):
    """``dataset`` items ``(image (C, H, W), target)`` with the image cut to a random ``crop`` x ``crop`` window
    and, with ``flip`` (default), mirrored left-right with probability 1/2 (both draws from torch's global
    generator, which the engine seeds per sample)."""

    def __init__(self, dataset: Dataset, crop: int, flip: bool = True) -> None:
        self.dataset, self.crop, self.flip = dataset, int(crop), bool(flip)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, target = self.dataset[index]
        _check_size(image, self.crop)
        top = int(torch.randint(0, image.shape[-2] - self.crop + 1, ()))
        left = int(torch.randint(0, image.shape[-1] - self.crop + 1, ()))
        out = _crop_at(image, self.crop, top, left)
        if self.flip and bool(torch.randint(0, 2, ()) == 1):
            out = out.flip(-1)
        return out, target


class MultiCropItems(Dataset):
    """``dataset`` items ``(image (C, H, W), target)`` -> ``(crops (n, C, crop, crop), target)``.

    Crop positions come from a generator seeded with ``seed * 1_000_003 + index``: the same crops
    for an item whatever the batch, rank or call order.
    """

    deterministic = True

    def __init__(self, dataset: Dataset, crop: int, n: int = 10, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.dataset, self.crop, self.n, self.seed = dataset, int(crop), int(n), int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, target = self.dataset[index]
        _check_size(image, self.crop)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        tops = torch.randint(0, image.shape[-2] - self.crop + 1, (self.n,), generator=gen).tolist()
        lefts = torch.randint(0, image.shape[-1] - self.crop + 1, (self.n,), generator=gen).tolist()
        return torch.stack([_crop_at(image, self.crop, t, c) for t, c in zip(tops, lefts)]), target


def voc07_map(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """VOC2007 11-point mAP (0-dim float64) of ``scores`` (N, C) against ``labels`` (N, C) in {-1, 0, 1}.

    Entries labelled 0 (difficult) are left out of their class's ranking: moving them below every
    other score with a negative label is exactly that, since the precision at every positive and
    every recall level is unchanged by items ranked after the last positive.
    """
    if scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} differ")
    labels = labels.to(scores.device)
    masked = scores.double().masked_fill(labels == 0, float("-inf"))
    return mean_ap(masked, (labels > 0).to(torch.int64), kind="voc07")


def masked_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean sigmoid cross-entropy over the entries with label != 0 (labels in {-1, 0, 1}, (B, C))."""
    valid = (labels != 0).to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, (labels > 0).to(logits.dtype), reduction="none")
    return (loss * valid).sum() / valid.sum().clamp_min(1.0)


@dataclass(frozen=True)
class TransferConfig:
    """Settings of :func:`finetune_multilabel` (the papers: SGD, 80k iterations, 10 test crops)."""

    iterations: int = 80_000
    batch_size: int = 10
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-6
    crop: int = 227
    n_test_crops: int = 10
    seed: int = 0


def finetune_multilabel(model: nn.Module, train_set: Dataset, test_set: Dataset, device: torch.device | str,
                        config: TransferConfig = TransferConfig(), run: Any = None) -> dict[str, Any]:
    """Fine-tune ``model`` (images (B, C, crop, crop) -> logits (B, K)) and report the VOC07 test mAP.

    ``train_set`` / ``test_set`` yield ``(image (C, H, W) float, labels (K,) in {-1, 0, 1})`` with
    H, W >= ``config.crop``. Training: random crops and flips (:class:`RandomCropItems`), :func:`masked_bce`,
    SGD with momentum and a cosine-decayed learning rate, through :func:`thesislib.engine.fit` (``run``
    supplies the chapter's run fields: seed, device options, progress). Testing: the mean sigmoid
    of ``n_test_crops`` fixed random crops (:class:`MultiCropItems`) through :func:`thesislib.engine.evaluate`.
    Returns ``{"map": float, "scores": (N, K) float32, "labels": (N, K), "history": History}``.
    """
    device = torch.device(device)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.iterations))

    def step_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        return masked_bce(net(x), y), {}

    run = run if run is not None else config
    history = fit(model, opt, RandomCropItems(train_set, config.crop), step_fn,
                  train_config(run, batch_size=config.batch_size, iterations=config.iterations,
                               seed=config.seed, log_every=max(1, config.iterations // 10)),
                  device, scheduler=sched)

    def score_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        crops, y = batch
        b, n = crops.shape[:2]
        probs = torch.sigmoid(net(crops.flatten(0, 1)).float()).view(b, n, -1).mean(dim=1)
        return probs, torch.as_tensor(y)

    scores, labels = evaluate(model, MultiCropItems(test_set, config.crop, config.n_test_crops, config.seed),
                              score_fn, device, batch_size=max(1, 64 // config.n_test_crops))
    return {"map": float(voc07_map(scores, labels)), "scores": scores, "labels": labels, "history": history}
