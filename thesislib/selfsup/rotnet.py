"""RotNet self-supervised pre-training (Gidaris et al. 2018; Rebuffi thesis Fig. 2.1, ch. 5 §4, ch. 6
App. B, ch. 7 App. A): predict which of the rotations {0°, 90°, 180°, 270°} was applied to an image,
with cross-entropy on a linear 4-way head (ch. 6 footnote 1).

Released schedule (:class:`RotNetConfig` defaults; semisup_scarse ``rotNet.py``): SGD with Nesterov
momentum 0.9, weight decay 5e-4, lr 0.1 divided by 5 at epochs 60, 120 and 160, batch 128 (of
original images; each step sees the 4 rotations of each), 200 epochs, on the whole dataset with the
labels ignored. Training goes through :func:`thesislib.engine.fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.engine import History, MultiStep, TrainConfig, fit, make_scheduler, steps_per_epoch

HEAD = "rotation"


@dataclass(frozen=True)
class RotNetConfig:
    """Optimiser and schedule of RotNet pre-training (released code defaults; milestones in epochs)."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    milestones: tuple[int, ...] = (60, 120, 160)
    gamma: float = 0.2


def rotate_batch(x: Tensor) -> tuple[Tensor, Tensor]:
    """x (B, C, H, W) -> the four rotations (4B, C, H, W), ordered [0°, 90°, 180°, 270°] blocks, and
    their labels (4B,) in {0, 1, 2, 3} (k quarter turns counter-clockwise, ``torch.rot90``)."""
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotate_batch needs square images (B, C, H, H), got {tuple(x.shape)}")
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels


def rotation_step_fn(head: str = HEAD, transform: Callable[[Tensor], Tensor] | None = None):
    """Engine step: the batch's first element holds images (B, C, H, W) (labels, if any, are ignored);
    ``transform`` (augmentation and normalisation of the batch) is applied before rotating; loss = CE
    of ``head`` on the 4 rotations; metric ``rot_acc``."""

    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        xr, yr = rotate_batch(transform(x) if transform is not None else x)
        logits = model(xr)[head]
        loss = F.cross_entropy(logits, yr)
        return loss, {"rot_acc": (logits.argmax(1) == yr).float().mean()}
    return step


def train_rotnet(model: nn.Module, dataset: Dataset, engine: TrainConfig, device: torch.device,
                 config: RotNetConfig = RotNetConfig(), head: str = HEAD,
                 transform: Callable[[Tensor], Tensor] | None = None) -> History:
    """Pre-train ``model`` (a multi-head network with a 4-way ``head``) on ``dataset`` by rotation
    prediction through the engine; the milestones are epochs of ``engine.batch_size`` batches."""
    if head not in getattr(model, "heads", {}):
        raise ValueError(f"train_rotnet: the model has no {head!r} head (heads: {list(getattr(model, 'heads', {}))})")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                          nesterov=config.nesterov)
    spe = steps_per_epoch(len(dataset), engine.batch_size, engine.drop_last)
    sched = make_scheduler(opt, MultiStep(tuple(m * spe for m in config.milestones), config.gamma))
    return fit(model, opt, dataset, rotation_step_fn(head, transform), engine, device, scheduler=sched)
