"""The backbone of Rebuffi chapters 5-7, chosen by name: the staged MLP on the 8x8 digits (smoke) or the
CIFAR ResNet-18 (full scale), with named linear heads; and the checks every chapter's parameters make.

The ImageNet ResNet-18 (torchvision's layout, :class:`~thesislib.nn.resnet.StagedResNet`) is the third choice,
for full-size images and torchvision ImageNet weights. All three networks share the interface the
self-supervised code relies on (``stages`` or ``conv1``/``bn1``/``layer1..4``, ``features``, ``heads``,
``forward(x) -> {head: logits}``; see :mod:`thesislib.nn.staged_mlp`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from thesislib.config import ConfigError
from thesislib.nn.resnet import StagedResNet
from thesislib.nn.resnet_cifar import resnet18_cifar
from thesislib.nn.staged_mlp import StagedMLP

DIGITS_INPUTS = 64  # 8x8 scikit-learn digits, flattened


def staged_backbone(backbone: str, heads: Mapping[str, int], *, mlp_widths: Sequence[int] = (),
                    resnet_width: int = 64, feature_relu: bool = False, weights_path: str | None = None) -> nn.Module:
    """``"mlp"``: :class:`StagedMLP` over the 64 digit pixels with ``mlp_widths``; ``"resnet18"``: the CIFAR
    ResNet-18 (3-channel input, base width ``resnet_width``; ``feature_relu`` adds AutoNovel's ReLU on the
    pooled feature); ``"resnet18_imagenet"``: torchvision's ResNet-18 with average pooling, its trunk read from
    the torchvision ImageNet file ``weights_path`` when given. ``heads`` maps head names to output sizes."""
    if backbone == "mlp":
        return StagedMLP(DIGITS_INPUTS, list(mlp_widths), dict(heads))
    if backbone == "resnet18":
        return resnet18_cifar(dict(heads), in_channels=3, width=resnet_width, feature_relu=feature_relu)
    if backbone == "resnet18_imagenet":
        return StagedResNet(dict(heads), "resnet18", weights_path or None)
    raise ConfigError(f"unknown backbone {backbone!r}; valid names are: mlp, resnet18, resnet18_imagenet")


def check_staged_backbone(owner: str, backbone: str, data: str, frozen_stages: int,
                          mlp_widths: Sequence[int]) -> None:
    """The parameter checks every chapter makes: the MLP is for the digits only and must keep a stage
    to train; ResNet-18 needs image data. ``owner`` names the parameter class in the message."""
    if backbone == "mlp" and frozen_stages >= len(mlp_widths):
        raise ConfigError(f"{owner}: frozen_stages {frozen_stages} leaves none of the {len(mlp_widths)} MLP "
                          "stages to train")
    if backbone == "mlp" and data != "digits":
        raise ConfigError(f"{owner}: the MLP backbone is for the digits smoke run; use resnet18")
    if backbone in ("resnet18", "resnet18_imagenet") and data == "digits":
        raise ConfigError(f"{owner}: the digits are 1-channel 8x8 vectors for the MLP; {backbone} needs image data")
