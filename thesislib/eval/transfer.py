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
* :class:`ConvFeatures` / :class:`TransferNet`: any pre-trained conv backbone (images -> conv map
  (B, C, H, W); a network with ``conv_layers(x, upto=)`` such as :class:`thesislib.nn.AlexNet` is
  wrapped by :class:`ConvFeatures`) with Krizhevsky's pool5 and new fc layers on top; for the
  rescaling, each BatchNorm the backbone runs must sit right after its conv in an ``nn.Sequential``
  (AlexNet / VGG layout; a ResNet-style block holding BN as an attribute is refused by
  :func:`thesislib.nn.rescaling.fold_batchnorm`);
* :func:`rescale_for_transfer`: Krähenbühl et al.'s data-dependent rescaling
  (:func:`thesislib.nn.rescaling.krahenbuhl_rescale`: BN folded into the convs, the new fc layers
  initialised within-layer, every layer rescaled between-layer) on random training crops;
* :class:`FrozenFeatures`: a backbone kept fixed (no gradient, eval mode whatever the engine asks, so its BN
  statistics do not move either); ``TransferConfig.freeze_backbone`` puts it around a :class:`TransferNet`'s
  backbone, so only the new fc layers train (Jenni Table 3.1: conv layers "kept fixed during transfer");
* :func:`finetune_multilabel`: the rescaling (``TransferConfig.rescale``), then training through
  :func:`thesislib.engine.fit`, scoring through :func:`thesislib.engine.evaluate`.

Detection and segmentation transfer (torchvision's Faster R-CNN and an FCN head instead of the
papers' Fast R-CNN / FCN) live in :mod:`thesislib.eval.detection` and :mod:`thesislib.eval.segmentation_transfer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from thesislib.engine import evaluate, fit, train_config
from thesislib.eval.multilabel import mean_ap
from thesislib.nn.rescaling import krahenbuhl_rescale


def average_crop_probs(logits: torch.Tensor, n: int, multilabel: bool = False) -> torch.Tensor:
    """Per-image class probabilities averaged over its ``n`` crops: ``logits`` (B·n, K), image-major -> (B, K): the
    softmax (sigmoid per label if ``multilabel``) of each crop, then the mean over the crops (not the mean logit)."""
    probs = torch.sigmoid(logits.float()) if multilabel else torch.softmax(logits.float(), dim=1)
    return probs.view(-1, n, probs.shape[-1]).mean(dim=1)


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


class ConvFeatures(nn.Module):
    """``model.conv_layers(x, upto=layer)[layer]``: images (B, C, H, W) -> the conv map (B, C_l, H_l, W_l).

    The adapter that turns a network with the :meth:`thesislib.nn.AlexNet.conv_layers` interface into
    the plain conv backbone the transfer protocols take (only the conv layers are transferred). The
    whole ``model`` is kept, its layers after ``layer`` (fc layers, heads) unused: the rescaling
    (:func:`thesislib.nn.rescaling.krahenbuhl_rescale`) treats only the layers that run and leaves those
    as they are; they get no gradient, so a DDP fine-tune of such a wrapper needs
    ``ddp_find_unused_parameters`` (or pass a copy with the head removed)."""

    def __init__(self, model: nn.Module, layer: str = "conv5") -> None:
        super().__init__()
        if not hasattr(model, "conv_layers"):
            raise TypeError(f"{type(model).__name__} has no conv_layers(x, upto=); pass a module returning the "
                            "conv map instead")
        self.model, self.layer = model, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.conv_layers(x, upto=self.layer)[self.layer]


class TransferNet(nn.Module):
    """A transferred conv ``backbone`` + Krizhevsky's head: images (B, C, crop, crop) -> logits (B, num_classes).

    ``backbone`` maps images to a conv map (B, C5, H5, W5); on top: max-pool 3x3/2 (pool5, ceil mode),
    flatten, the hidden fc layers ``fc_dims`` (each linear, ReLU, dropout ``dropout``: the Caffe AlexNet that
    Krähenbühl et al.'s framework fine-tunes, fc6 - relu6 - drop6 - fc7 - relu7 - drop7 - fc8, not
    torchvision's dropout-before-linear variant) and the linear classifier, all randomly initialised
    (PyTorch's default; :func:`rescale_for_transfer` then re-initialises them from data). The fc input
    size comes from one dry pass at ``input_size``."""

    def __init__(self, backbone: nn.Module, num_classes: int, input_size: int, in_channels: int = 3,
                 fc_dims: tuple[int, ...] = (4096, 4096), dropout: float = 0.5, pool5: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool5 = nn.MaxPool2d(3, 2, ceil_mode=True) if pool5 else nn.Identity()
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            flat = self.pool5(backbone(torch.zeros(1, in_channels, input_size, input_size))).numel()
        backbone.train(was_training)
        layers: list[nn.Module] = []
        prev = int(flat)
        for d in fc_dims:
            layers += [nn.Linear(prev, d), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            prev = d
        self.fc = nn.Sequential(*layers)
        self.classifier = nn.Linear(prev, num_classes)

    def new_layers(self) -> list[nn.Linear]:
        """The randomly initialised layers (fc and classifier), in network order."""
        return [m for m in self.fc if isinstance(m, nn.Linear)] + [self.classifier]

    def head(self) -> nn.Sequential:
        """The layers on top of the backbone (pool5, flatten, fc, classifier; the same modules, not copies): conv
        map (B, C5, H5, W5) -> logits (B, num_classes)."""
        return nn.Sequential(self.pool5, nn.Flatten(1), self.fc, self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fc(self.pool5(self.backbone(x)).flatten(1)))


class FrozenFeatures(nn.Module):
    """``module`` kept fixed: its parameters get ``requires_grad = False``, it stays in eval mode whatever
    ``train()`` is called with (the engine puts its models in train mode every epoch; a frozen BN must keep its
    running statistics, a frozen dropout must not drop) and it runs under ``torch.no_grad``. Images (B, C, H, W) ->
    ``module``'s output, unchanged."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "FrozenFeatures":
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x)


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Wrap ``model.backbone`` (a :class:`TransferNet`'s) in :class:`FrozenFeatures`, in place; returns ``model``.
    Raises TypeError naming the model when it has no ``backbone``."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"freeze_backbone: {type(model).__name__} has no backbone module to keep fixed")
    if not isinstance(backbone, FrozenFeatures):
        model.backbone = FrozenFeatures(backbone)
    return model


def _check_head(model: nn.Module) -> None:
    """The frozen rescaling reads ``model.head()`` (a :class:`TransferNet`'s fc layers): TypeError naming the model
    when it has none."""
    if not callable(getattr(model, "head", None)):
        raise TypeError(f"{type(model).__name__} has no head() (the layers after the frozen backbone, as "
                        "TransferNet's): the rescaling with a frozen backbone needs it; use TransferNet or "
                        "rescale=False")


def rescale_inputs(train_set: Dataset, n_images: int, seed: int,
                   prepare: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> torch.Tensor:
    """The batch the rescaling measures on: ``min(n_images, len(train_set))`` images picked at random
    (a generator seeded ``seed``) from ``train_set`` (items ``(image (C, H, W), target)``), each passed
    through ``prepare(image, generator)`` (a crop, a resize, ...; it may draw from the same generator),
    stacked: (n, C, H', W') float32."""
    gen = torch.Generator().manual_seed(seed)
    n = min(int(n_images), len(train_set))  # type: ignore[arg-type]
    picks = torch.randperm(len(train_set), generator=gen)[:n].tolist()  # type: ignore[arg-type]
    return torch.stack([prepare(train_set[i][0], gen) for i in picks]).float()


def rescale_for_transfer(model: nn.Module, train_set: Dataset, crop: int, device: torch.device | str,
                         n_images: int = 64, seed: int = 0, frozen: bool = False) -> dict[str, Any]:
    """Krähenbühl et al.'s rescaling of ``model`` (in place) on ``n_images`` random ``crop`` crops of
    ``train_set`` (drawn with ``seed``; items ``(image (C, H, W), target)``; :func:`rescale_inputs`).

    BN is folded into the convs, the model's new layers (``model.new_layers()`` when it has that method,
    else none) are initialised within-layer and the conv / linear layers that run rescaled between-layer
    (:func:`thesislib.nn.rescaling.krahenbuhl_rescale`). With ``frozen`` (a :class:`TransferNet` whose backbone
    is kept fixed) the backbone is left exactly as it is: the rescaling runs on ``model.head()`` alone, its input
    the frozen backbone's features of the same crops (TypeError naming the model when it has no ``head()``).
    Returns its result dict."""

    def random_crop(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        _check_size(image, crop)
        top = int(torch.randint(0, image.shape[-2] - crop + 1, (), generator=gen))
        left = int(torch.randint(0, image.shape[-1] - crop + 1, (), generator=gen))
        return _crop_at(image, crop, top, left)

    if frozen:
        _check_head(model)
    batch = rescale_inputs(train_set, n_images, seed, random_crop).to(device)
    new = model.new_layers() if hasattr(model, "new_layers") else []
    if frozen:
        model.backbone.eval()
        with torch.no_grad():
            feats = model.backbone.to(device)(batch)
        return krahenbuhl_rescale(model.head().to(device), feats, new_layers=new, seed=seed)
    return krahenbuhl_rescale(model.to(device), batch, new_layers=new, seed=seed)


@dataclass(frozen=True)
class TransferConfig:
    """Settings of :func:`finetune_multilabel` (the papers: SGD, 80k iterations, 10 test crops,
    Krähenbühl et al.'s rescaling on; ``rescale_images`` crops estimate its statistics)."""

    iterations: int = 80_000
    batch_size: int = 10
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-6
    crop: int = 227
    n_test_crops: int = 10
    seed: int = 0
    rescale: bool = True
    rescale_images: int = 64
    num_workers: int = 0
    freeze_backbone: bool = False
    """Keep the transferred conv layers fixed (:func:`freeze_backbone`; :func:`finetune_classifier` only): only the
    new layers train, the rescaling leaves the backbone as it is."""


def _fit_crops(model: nn.Module, opt: torch.optim.Optimizer, train_set: Dataset,
               loss_fn: Any, config: "TransferConfig", device: torch.device, run: Any) -> Any:
    """``config.iterations`` steps of ``loss_fn(model(crops), targets)`` on random crops and flips of
    ``train_set`` (:class:`RandomCropItems`), cosine-decayed learning rate, through :func:`thesislib.engine.fit`."""
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.iterations))

    def step_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        return loss_fn(net(x), y), {}

    run = run if run is not None else config
    return fit(model, opt, RandomCropItems(train_set, config.crop), step_fn,
               train_config(run, batch_size=config.batch_size, iterations=config.iterations, seed=config.seed,
                            log_every=max(1, config.iterations // 10), num_workers=config.num_workers),
               device, scheduler=sched)


def finetune_multilabel(model: nn.Module, train_set: Dataset, test_set: Dataset, device: torch.device | str,
                        config: TransferConfig = TransferConfig(), run: Any = None) -> dict[str, Any]:
    """Fine-tune ``model`` (images (B, C, crop, crop) -> logits (B, K)) and report the VOC07 test mAP.

    ``train_set`` / ``test_set`` yield ``(image (C, H, W) float, labels (K,) in {-1, 0, 1})`` with
    H, W >= ``config.crop``. With ``config.rescale``, :func:`rescale_for_transfer` first (BN folded,
    new layers initialised from data, layers rescaled between-layer). Training: random crops and flips
    (:class:`RandomCropItems`), :func:`masked_bce`, SGD with momentum and a cosine-decayed learning rate,
    through :func:`thesislib.engine.fit` (``run`` supplies the chapter's run fields: seed, device options,
    progress). Testing: the mean sigmoid of ``n_test_crops`` fixed random crops (:class:`MultiCropItems`)
    through :func:`thesislib.engine.evaluate`.
    Returns ``{"map": float, "scores": (N, K) float32, "labels": (N, K), "history": History,
    "rescale": the rescaling's result or None}``.
    """
    device = torch.device(device)
    model = model.to(device)
    rescaled = (rescale_for_transfer(model, train_set, config.crop, device, config.rescale_images, config.seed)
                if config.rescale else None)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    history = _fit_crops(model, opt, train_set, masked_bce, config, device, run)

    def score_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        crops, y = batch
        return average_crop_probs(net(crops.flatten(0, 1)), crops.shape[1], multilabel=True), torch.as_tensor(y)

    scores, labels = evaluate(model, MultiCropItems(test_set, config.crop, config.n_test_crops, config.seed),
                              score_fn, device, batch_size=max(1, 64 // config.n_test_crops))
    return {"map": float(voc07_map(scores, labels)), "scores": scores, "labels": labels, "history": history,
            "rescale": rescaled}


def finetune_classifier(model: nn.Module, train_set: Dataset, test_set: Dataset, device: torch.device | str,
                        config: TransferConfig = TransferConfig(), run: Any = None,
                        test_crops: int = 0) -> dict[str, Any]:
    """The single-label counterpart of :func:`finetune_multilabel` (e.g. Table 3.2's STL-10 folds, fine-tuned).

    ``model``: images (B, C, crop, crop) -> logits (B, K); ``train_set`` / ``test_set`` yield ``(image
    (C, H, W) float, label int)``, H, W >= ``config.crop`` (train) and == ``config.crop`` (test). With
    ``config.rescale`` the Krähenbühl rescaling first; then Adam (lr ``config.lr``, weight decay
    ``config.weight_decay``, cosine decay) on cross-entropy over random crops and flips; testing: one
    view per image through :func:`thesislib.engine.evaluate`; with ``test_crops`` > 0 instead the softmax of
    ``test_crops`` fixed random ``config.crop`` crops per test image (:class:`MultiCropItems`, seeded by
    ``config.seed``; test images then H, W >= ``config.crop``) averaged before the arg-max. Returns ``{"acc": float,
    "history", "rescale"}``. With ``config.freeze_backbone`` the model's backbone is kept fixed (in place:
    :func:`freeze_backbone`; no gradient, eval mode, unchanged by the rescaling) and Adam sees only the new layers
    (Jenni Table 3.1's transfer with the conv layers "kept fixed"); with ``config.rescale`` too the model needs a
    ``head()`` (:class:`TransferNet`), else TypeError naming it, raised before the model is changed."""
    device = torch.device(device)
    if config.freeze_backbone and config.rescale:
        _check_head(model)  # before the model is changed
    if config.freeze_backbone:
        freeze_backbone(model)
    model = model.to(device)
    rescaled = (rescale_for_transfer(model, train_set, config.crop, device, config.rescale_images, config.seed,
                                     frozen=config.freeze_backbone) if config.rescale else None)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                           weight_decay=config.weight_decay)
    history = _fit_crops(model, opt, train_set, F.cross_entropy, config, device, run)

    def score_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return (net(x).argmax(dim=1) == torch.as_tensor(y)).float()

    def multi_crop_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        crops, y = batch
        probs = average_crop_probs(net(crops.flatten(0, 1)), crops.shape[1])
        return (probs.argmax(dim=1) == torch.as_tensor(y)).float()

    if test_crops > 0:
        hits = evaluate(model, MultiCropItems(test_set, config.crop, test_crops, config.seed), multi_crop_fn, device,
                        batch_size=max(1, 64 // test_crops))
    else:
        hits = evaluate(model, test_set, score_fn, device, batch_size=64)
    return {"acc": float(hits.mean()), "history": history, "rescale": rescaled}
