"""Linear probes on frozen features: extract features once, then fit a softmax-regression head.

The protocol of the representation-learning chapters (e.g. Jenni ch. 3-4, Rebuffi ch. 8):
freeze the network, read out a layer's activations, standardise each feature with the
training-set mean and standard deviation, and train a linear classifier (multinomial
logistic regression) on top. The probe's accuracy measures how linearly decodable the
labels are from that layer. ``multilabel=True`` swaps the softmax head for one logistic regression per label
(binary cross-entropy) scored by the mean over labels of the per-label average precision (e.g. Jenni ch. 4
Table 4.3, CelebA's 40 attributes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.engine import IndexDataset, collate_indices, evaluate, fit, train_config
from thesislib.eval.multilabel import APKind, average_precision


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
    multilabel: bool = False


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


def _multilabel_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                       ap_kind: APKind) -> tuple[float, float, list[float]]:
    """(mean per-label accuracy at logit >= 0, mean AP over the labels with a positive, per-label AP (C,) with NaN
    where a label has no positive) of ``model`` on features ``x`` (N, D) and 0/1 targets ``y`` (N, C)."""
    with torch.no_grad():
        logits = torch.cat([model(x[start:start + batch_size]) for start in range(0, x.shape[0], batch_size)])
    acc = float(((logits >= 0) == (y > 0)).double().mean()) if y.numel() else math.nan
    ap = average_precision(logits.double().cpu(), y.cpu(), kind=ap_kind)
    return acc, float(ap.nanmean()), [float(v) for v in ap]


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, device: torch.device | str, epochs: int = 100,
                 lr: float | None = None, weight_decay: float = 0.0, batch_size: int = 256,
                 seed: int = 0, optimizer: Literal["sgd", "lbfgs"] = "sgd",
                 num_classes: int | None = None, multilabel: bool = False,
                 ap_kind: APKind = "ranked") -> dict[str, Any]:
    """Fit a standardised linear classifier on frozen features and report its accuracy (or average precision).

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

    ``multilabel=True`` (C independent binary labels, e.g. CelebA's 40 attributes): ``train_y`` (N, C) and
    ``test_y`` (M, C) with entries in {0, 1} (> 0 is a positive); C logistic regressions share the standardised
    features, the loss is the binary cross-entropy averaged over the N x C entries (+ the same weight decay).
    ``train_acc`` / ``test_acc`` are then the mean per-label accuracy of ``logit >= 0`` (p >= 0.5), and the result
    adds ``"train_ap"``, ``"test_ap"`` (mean over the labels that have a positive of the per-label average
    precision, :func:`thesislib.eval.multilabel.average_precision` of kind ``ap_kind``, default ``"ranked"``: the
    non-interpolated AP, (1/R) sum_k P(k) rel(k)) and ``"test_ap_per_class"`` (C floats, NaN for a label with no
    positive in the test set). ``num_classes`` is ignored (C is ``train_y.shape[1]``).
    """
    if optimizer not in ("sgd", "lbfgs"):
        raise ValueError(f"optimizer must be 'sgd' or 'lbfgs', got {optimizer!r}")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D, got {tuple(train_x.shape)} "
                         f"and {tuple(test_x.shape)}")
    if multilabel:
        if train_y.ndim != 2 or train_y.shape[0] != train_x.shape[0] or test_y.shape != (test_x.shape[0],
                                                                                          train_y.shape[1]):
            raise ValueError(f"multilabel targets must be (N, C) and (M, C) matching the features, got "
                             f"{tuple(train_y.shape)} and {tuple(test_y.shape)}")
    elif train_y.shape != (train_x.shape[0],) or test_y.shape != (test_x.shape[0],):
        raise ValueError("labels must be (N,) matching the features")
    config = ProbeConfig(epochs=int(epochs), lr=float(lr if lr is not None else
                                                     (0.1 if optimizer == "sgd" else 1.0)),
                         weight_decay=float(weight_decay), batch_size=int(batch_size),
                         seed=int(seed), optimizer=optimizer, multilabel=bool(multilabel))
    device = torch.device(device)
    xtr = train_x.to(device, torch.float32)
    label_dtype = torch.float32 if multilabel else torch.int64
    ytr = (train_y > 0).to(device, label_dtype) if multilabel else train_y.to(device, label_dtype)
    xte = test_x.to(device, torch.float32)
    yte = (test_y > 0).to(device, label_dtype) if multilabel else test_y.to(device, label_dtype)
    loss_fn = F.binary_cross_entropy_with_logits if multilabel else F.cross_entropy
    if multilabel:
        num_classes = int(train_y.shape[1])
    elif num_classes is None:
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
            return loss_fn(head(z[idx]), ytr[idx]), {}

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
            loss = loss_fn(linear(z), ytr)
            loss = loss + 0.5 * config.weight_decay * linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)

    model.eval()
    eval_batch = max(config.batch_size, 4096)
    if multilabel:
        train_acc, train_ap, _ = _multilabel_scores(model, xtr, ytr, eval_batch, ap_kind)
        test_acc, test_ap, per_class = _multilabel_scores(model, xte, yte, eval_batch, ap_kind)
        return {"train_acc": train_acc, "test_acc": test_acc, "train_ap": train_ap, "test_ap": test_ap,
                "test_ap_per_class": per_class, "model": model, "config": config}
    return {"train_acc": _accuracy(model, xtr, ytr, eval_batch),
            "test_acc": _accuracy(model, xte, yte, eval_batch),
            "model": model, "config": config}


# --- Per-layer probes of a frozen conv network (Zhang et al. 2016 protocol, Jenni Tables 3.4, 4.5) ---

PROBE_DIMS = 9216


def probe_grid(channels: int, dims: int = PROBE_DIMS) -> int:
    """Side s of the pooled map so that ``channels * s * s`` is about ``dims``: round(sqrt(dims / C)), >= 1.

    With AlexNet at 224-227 px this gives the protocol's grids: conv1 (96 ch) 10x10 = 9,600 dims,
    conv2 (256) 6x6 = 9,216, conv3/4 (384) 5x5 = 9,600, conv5 (256) 6x6 = 9,216 (study note 004 §0).
    """
    if channels < 1 or dims < 1:
        raise ValueError(f"channels and dims must be positive, got {channels}, {dims}")
    return max(1, int(round(math.sqrt(dims / channels))))


def probe_pool(fmap: torch.Tensor, dims: int = PROBE_DIMS) -> torch.Tensor:
    """Average-pool a feature map (B, C, H, W) to (B, C * s * s) with s = :func:`probe_grid` (C, dims).

    Adaptive average pooling to s x s (never upsampling: s is capped at H and W), then flattened.
    The official code uses fixed avg-pool windows tuned to 224 px inputs; adaptive pooling gives
    the same grid sizes there and keeps the ~9.2k-dim budget at any input size (a decision).
    """
    if fmap.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(fmap.shape)}")
    s = probe_grid(fmap.shape[1], dims)
    return F.adaptive_avg_pool2d(fmap, (min(s, fmap.shape[2]), min(s, fmap.shape[3]))).flatten(1)


class LayerFeatures(nn.Module):
    """``model.conv_layers(x)[layer]`` pooled by :func:`probe_pool`: (B, 3, H, W) -> (B, ~dims)."""

    def __init__(self, model: nn.Module, layer: str, dims: int = PROBE_DIMS) -> None:
        super().__init__()
        self.model, self.layer, self.dims = model, layer, int(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return probe_pool(self.model.conv_layers(x, upto=self.layer)[self.layer], self.dims)


def _train_features(fn: nn.Module, train: torch.utils.data.Dataset, device: torch.device | str, batch_size: int,
                    views: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N * views, D) and targets of ``views`` seeded passes over ``train`` (one unseeded pass if 1)."""
    if views == 1:
        return extract_features(fn, train, device, batch_size=batch_size)
    state = torch.random.get_rng_state()
    try:
        parts = []
        for v in range(views):
            torch.manual_seed(1_000_003 * seed + v)
            parts.append(extract_features(fn, train, device, batch_size=batch_size))
    finally:
        torch.random.set_rng_state(state)
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def layer_probes(model: nn.Module, layers: Sequence[str], train: torch.utils.data.Dataset,
                 test: torch.utils.data.Dataset, device: torch.device | str, dims: int = PROBE_DIMS,
                 batch_size: int = 256, train_views: int = 1, **probe_kwargs: Any) -> dict[str, dict[str, Any]]:
    """Linear probe on every frozen layer in ``layers`` of ``model`` (which has ``conv_layers(x, upto=)``).

    Each layer's map is pooled to ~``dims`` features (:func:`probe_pool`), standardised (the
    protocol's affine-free BN) and fitted by :func:`linear_probe` with ``probe_kwargs`` (epochs, lr,
    weight_decay (5e-4 in the official code), seed, optimizer, num_classes; ``multilabel=True`` for datasets whose
    targets are (C,) 0/1 vectors, adding ``"test_ap"``). The model is in eval
    mode and receives no gradient. Returns ``{layer: linear_probe result + {"dims": D}}``.

    ``train_views`` > 1: protocols that train the probe on random crops (e.g. Jenni ch. 4 Table 4.1) with a
    ``train`` dataset whose transform draws a random crop / flip from torch's global generator: the features of
    ``train_views`` passes over ``train`` are stacked (N * train_views rows), pass v drawn after
    ``torch.manual_seed(1_000_003 * seed + v)`` (``seed`` from ``probe_kwargs``, 0 if absent), the same
    crops for every layer. Features are extracted once, so this is a fixed pool of random views, not a fresh crop
    per epoch. ``test`` is read once (its transform should be deterministic). For large training sets, a fresh crop
    per epoch, or one trunk pass for all layers, use :func:`thesislib.eval.streaming_probe.streaming_probe`.
    """
    if train_views < 1:
        raise ValueError(f"train_views must be >= 1, got {train_views}")
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        fn = LayerFeatures(model, layer, dims)
        xtr, ytr = _train_features(fn, train, device, batch_size, train_views, int(probe_kwargs.get("seed", 0)))
        xte, yte = extract_features(fn, test, device, batch_size=batch_size)
        result = linear_probe(xtr, ytr, xte, yte, device, batch_size=batch_size, **probe_kwargs)
        result["dims"] = int(xtr.shape[1])
        out[layer] = result
    return out


def per_class_subset(labels: Any, per_class: int, seed: int) -> list[int]:
    """Sorted indices of at most ``per_class`` items of every class in ``labels`` (N,), drawn with ``seed``.

    The cached ImageNet probes of Jenni ch. 3-4 (``probe_mode: cached``) train on this subsample, not on all 1.28M
    train images: their features are extracted into memory (conv1 pooled to ~9.6k dims: 1.28M x 9.6k fp32 = 49 GB,
    twice that in the probe's float64 standardisation). The full configs use the streaming probe
    (:mod:`thesislib.eval.streaming_probe`) on all of train instead."""
    y = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    picks = [idx[torch.randperm(len(idx), generator=gen)[:per_class]]
             for idx in (torch.nonzero(y == c).flatten() for c in torch.unique(y))]
    return torch.cat(picks).sort().values.tolist() if picks else []
