"""Linear probes on frozen features: extract features once, then fit a softmax-regression head.

The protocol of the representation-learning chapters (e.g. Jenni ch. 3-4, Rebuffi ch. 8):
freeze the network, read out a layer's activations, standardise each feature with the
training-set mean and standard deviation, and train a linear classifier (multinomial
logistic regression) on top. The probe's accuracy measures how linearly decodable the
labels are from that layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.engine import IndexDataset, collate_indices, evaluate, fit, train_config


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of :func:`linear_probe` (recorded in its result for provenance)."""

    epochs: int = 100
    lr: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 256
    seed: int = 0
    optimizer: Literal["sgd", "lbfgs"] = "sgd"
    momentum: float = 0.9


class Standardize(nn.Module):
    """``(x - mean) / std`` per feature, with fixed buffers ``mean``, ``std`` of shape (D,)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@torch.no_grad()
def extract_features(model_fn: Callable[[torch.Tensor], torch.Tensor],
                     dataset: torch.utils.data.Dataset, device: torch.device | str,
                     batch_size: int = 256, num_workers: int = 0,
                     store_device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model_fn`` over ``dataset`` in order and collect its outputs.

    ``dataset`` yields ``(input, target)``; ``model_fn`` maps an input batch (B, ...) on
    ``device`` to features (B, ...), flattened here to (B, D) and cast to float32. Returns
    ``(features (N, D) float32, targets (N, ...))`` on ``store_device`` (CPU by default, so
    large feature sets do not fill GPU memory; pass the GPU to keep them there). An
    ``nn.Module`` is put in eval mode for the pass and restored afterwards.
    """
    device = torch.device(device)
    module = model_fn if isinstance(model_fn, nn.Module) else nn.Identity()

    def fn(_: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = batch
        out = model_fn(inputs)
        return out.reshape(out.shape[0], -1).float(), torch.as_tensor(targets)

    feats, labels = evaluate(module, dataset, fn, device, batch_size=batch_size, num_workers=num_workers, amp=False,
                             shard=False)
    return feats.to(store_device), labels.to(store_device)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start:start + batch_size])
            correct += (logits.argmax(dim=1) == y[start:start + batch_size]).sum()
    return float(correct) / max(1, x.shape[0])


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, device: torch.device | str, epochs: int = 100,
                 lr: float | None = None, weight_decay: float = 0.0, batch_size: int = 256,
                 seed: int = 0, optimizer: Literal["sgd", "lbfgs"] = "sgd",
                 num_classes: int | None = None) -> dict[str, Any]:
    """Fit a standardised linear classifier on frozen features and report its accuracy.

    ``train_x`` (N, D), ``test_x`` (M, D) float; ``train_y`` (N,), ``test_y`` (M,) int64 in
    0..C-1 (C = ``num_classes`` or 1 + the largest label seen). Features are standardised
    with the training mean and std (constant features are left at 0). The classifier
    W x + b starts at zero (the loss is convex, so no random init is needed) and minimises
    cross-entropy + ``weight_decay``/2 ||W||^2 (the bias is not decayed):

    * ``optimizer="sgd"``: trained through :func:`thesislib.engine.fit` (the engine's seeded
      epoch order from ``seed``), mini-batches of ``batch_size``, momentum 0.9, cosine-decayed
      learning rate from ``lr`` (default 0.1) to 0 over ``epochs`` epochs;
    * ``optimizer="lbfgs"``: full-batch L-BFGS with strong-Wolfe line search for ``epochs``
      iterations, initial step ``lr`` (default 1.0).

    Deterministic for a fixed seed on a given device. Returns ``{"train_acc": float,
    "test_acc": float, "model": nn.Sequential(Standardize, Linear)`` (on ``device``, taking
    raw features), ``"config": ProbeConfig}``.
    """
    if optimizer not in ("sgd", "lbfgs"):
        raise ValueError(f"optimizer must be 'sgd' or 'lbfgs', got {optimizer!r}")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D, got {tuple(train_x.shape)} "
                         f"and {tuple(test_x.shape)}")
    if train_y.shape != (train_x.shape[0],) or test_y.shape != (test_x.shape[0],):
        raise ValueError("labels must be (N,) matching the features")
    config = ProbeConfig(epochs=int(epochs), lr=float(lr if lr is not None else
                                                     (0.1 if optimizer == "sgd" else 1.0)),
                         weight_decay=float(weight_decay), batch_size=int(batch_size),
                         seed=int(seed), optimizer=optimizer)
    device = torch.device(device)
    xtr = train_x.to(device, torch.float32)
    ytr = train_y.to(device, torch.int64)
    xte = test_x.to(device, torch.float32)
    yte = test_y.to(device, torch.int64)
    if num_classes is None:
        num_classes = int(max(int(train_y.max()), int(test_y.max()) if test_y.numel() else 0)) + 1

    mean = xtr.double().mean(dim=0)
    std = xtr.double().std(dim=0, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    standardize = Standardize(mean.float(), std.float())
    linear = nn.Linear(xtr.shape[1], num_classes).to(device)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
    model = nn.Sequential(standardize, linear).to(device)
    z = standardize(xtr)

    if optimizer == "sgd":
        opt = torch.optim.SGD([{"params": [linear.weight], "weight_decay": config.weight_decay},
                               {"params": [linear.bias], "weight_decay": 0.0}],
                              lr=config.lr, momentum=config.momentum)
        n = z.shape[0]
        steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.epochs * steps_per_epoch))

        def step_fn(head: nn.Module, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            return F.cross_entropy(head(z[idx]), ytr[idx]), {}

        fit(linear, opt, IndexDataset(n), step_fn,
            train_config(config, batch_size=config.batch_size, epochs=config.epochs, amp=False,
                         channels_last=False, progress="none", log_every=10**9), device, scheduler=sched,
            collate_fn=collate_indices)
    else:
        opt = torch.optim.LBFGS(linear.parameters(), lr=config.lr, max_iter=config.epochs,
                                history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(linear(z), ytr)
            loss = loss + 0.5 * config.weight_decay * linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)

    model.eval()
    eval_batch = max(config.batch_size, 4096)
    return {"train_acc": _accuracy(model, xtr, ytr, eval_batch),
            "test_acc": _accuracy(model, xte, yte, eval_batch),
            "model": model, "config": config}
