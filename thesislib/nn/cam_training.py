"""Training a CAM classifier on image-level labels, through the shared engine.

SEC's localizer (thesis section 2.3.1) and micro-annotation's GAP network (section 3.4) are both
:class:`~thesislib.nn.cam.CAMClassifier` s trained from image-level labels only. The loss is on
the pooled class scores S (B, C) (GAP for the CAM nets):

* ``loss="bce"``: multi-label, one sigmoid per class, the binary cross-entropy
  L = -(1 / (B C)) sum_{b,c} [y_bc log sigma(S_bc) + (1 - y_bc) log(1 - sigma(S_bc))] on multi-hot
  labels y (B, C) (SEC; micro-annotation on scenes and VOC);
* ``loss="ce"``: single-label softmax cross-entropy on class indices (B,) (micro-annotation on
  ILSVRC).

Reported per step: ``acc`` (the top-scoring class is one of the image's labels, or equals the
label) and, for ``"bce"``, ``label_acc`` (the fraction of (image, class) pairs whose sign of S
agrees with the label). The optimiser is Adam or SGD with momentum at a fixed learning rate; the
loop, AMP, checkpoints and DDP are :func:`thesislib.engine.fit`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.engine import History, TrainConfig, fit, train_config


@dataclass(frozen=True)
class CAMTrainConfig:
    """How a CAM classifier is trained (:func:`train_cam_classifier`).

    Length: ``iterations`` optimiser steps when set (the epochs follow), else ``epochs`` passes.
    ``log_every``: steps between history records; ``None`` logs once per epoch for an epoch-based
    run and every ``min(50, iterations)`` steps for an iteration-based one. ``checkpoint_dir``:
    checkpoints there, resuming from the newest one. ``weight_decay`` is the optimiser's (L2).
    """

    epochs: int = 1
    iterations: int | None = None
    batch_size: int = 32
    loss: Literal["bce", "ce"] = "bce"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    amp: bool = True
    num_workers: int = 0
    log_every: int | None = None
    checkpoint_dir: str | None = None
    progress: str = "auto"

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "ce"):
            raise ValueError(f"loss must be 'bce' or 'ce', got {self.loss!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be >= 1 or None, got {self.iterations}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")

    def train_config(self, num_items: int) -> TrainConfig:
        """The engine's :class:`~thesislib.engine.TrainConfig` for a training set of ``num_items``
        (through :func:`thesislib.engine.train_config`: ``iterations`` steps, else ``epochs``)."""
        steps_per_epoch = max(1, -(-num_items // self.batch_size))
        if self.iterations is not None:
            length = {"iterations": self.iterations}
            log_every = self.log_every or max(1, min(50, self.iterations))
        else:
            length = {"epochs": self.epochs}
            log_every = self.log_every or steps_per_epoch
        return train_config(self, batch_size=self.batch_size, checkpoint_dir=self.checkpoint_dir,
                            log_every=log_every, **length)


def cam_classifier_step(loss: Literal["bce", "ce"]) -> Callable[[nn.Module, Any], tuple[Tensor, dict[str, Tensor]]]:
    """The engine's ``step_fn`` for a batch that is a dict with ``image`` (B, 3, H, W) and
    ``labels``, or a sequence (images, labels, ...): ``"bce"`` on multi-hot labels (B, C),
    ``"ce"`` on class indices (B,); returns (loss, {``acc``[, ``label_acc``]}) (module doc)."""
    if loss not in ("bce", "ce"):
        raise ValueError(f"loss must be 'bce' or 'ce', got {loss!r}")

    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        images, labels = (batch["image"], batch["labels"]) if isinstance(batch, Mapping) else (batch[0], batch[1])
        logits = model(images).float()
        if loss == "bce":
            labels = labels.float()
            value = F.binary_cross_entropy_with_logits(logits, labels)
            acc = labels.gather(1, logits.argmax(dim=1, keepdim=True)).mean()
            label_acc = ((logits > 0) == (labels > 0.5)).float().mean()
            return value, {"acc": acc.detach(), "label_acc": label_acc.detach()}
        value = F.cross_entropy(logits, labels.long())
        return value, {"acc": (logits.argmax(dim=1) == labels).float().mean().detach()}
    return step


def train_cam_classifier(model: nn.Module, train_set: Dataset, config: CAMTrainConfig, device: torch.device, *,
                         collate_fn: Callable[[list[Any]], Any] | None = None) -> History:
    """Fit a CAM classifier (any images -> class scores (B, C) network) on the image-level labels
    of ``train_set`` (items (image, label, ...) or dicts with ``image`` and ``labels``) with
    :func:`cam_classifier_step` and ``config``'s optimiser through :func:`thesislib.engine.fit`;
    returns the engine's :class:`~thesislib.engine.History`. The model is left on ``device``, in
    eval mode."""
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                                            weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    history = fit(model, optimizer, train_set, cam_classifier_step(config.loss),
                  config.train_config(len(train_set)), device, collate_fn=collate_fn)  # type: ignore[arg-type]
    model.eval()
    return history
