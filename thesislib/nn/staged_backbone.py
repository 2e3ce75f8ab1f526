"""The backbone of Rebuffi chapters 5-7, chosen by name: the staged MLP on the 8x8 digits (smoke; or on
another vector input of ``in_features``, e.g. Reuters-10K's 2,000 tf-idf features), the CIFAR ResNet-18
(full scale), or the VGG-style networks of :mod:`thesislib.nn.staged_cnn` (OmniGlot's VGG-6, MNIST's
VGG-4-like), with named heads; and the checks every chapter's parameters make.

The ImageNet ResNet-18 (torchvision's layout, :class:`~thesislib.nn.resnet.StagedResNet`) is one more choice,
for full-size images and torchvision ImageNet weights. All of them share the interface the
self-supervised code relies on (``stages`` or ``conv1``/``bn1``/``layer1..4``, ``features``, ``heads``,
``forward(x) -> {head: logits}``; see :mod:`thesislib.nn.staged_mlp`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from thesislib.config import ConfigError
from thesislib.nn.resnet import StagedResNet
from thesislib.nn.resnet_cifar import resnet18_cifar
from thesislib.nn.staged_cnn import vgg4_mnist, vgg6_omniglot
from thesislib.nn.staged_mlp import StagedMLP

DIGITS_INPUTS = 64  # 8x8 scikit-learn digits, flattened
#: Data a backbone may be used with (beyond the rules of :func:`check_staged_backbone`'s messages).
VECTOR_DATA = ("digits", "reuters10k")
CNN_DATA = {"vgg6": ("omniglot",), "vgg4": ("mnist",)}


def staged_backbone(backbone: str, heads: Mapping[str, int], *, mlp_widths: Sequence[int] = (),
                    resnet_width: int = 64, feature_relu: bool = False, in_features: int = DIGITS_INPUTS,
                    weights_path: str | None = None) -> nn.Module:
    """``"mlp"``: :class:`StagedMLP` over ``in_features`` inputs (default the 64 digit pixels) with
    ``mlp_widths``; ``"resnet18"``: the CIFAR ResNet-18 (3-channel input, base width ``resnet_width``;
    ``feature_relu`` adds AutoNovel's ReLU on the pooled feature); ``"resnet18_imagenet"``: torchvision's
    ResNet-18 with average pooling, its trunk read from the torchvision ImageNet file ``weights_path`` when
    given; ``"vgg6"``: OmniGlot's VGG-6 (1x32x32); ``"vgg4"``: MNIST's VGG-4-like network (1x28x28).
    ``heads`` maps head names to output sizes."""
    if backbone == "mlp":
        return StagedMLP(in_features, list(mlp_widths), dict(heads))
    if backbone == "resnet18":
        return resnet18_cifar(dict(heads), in_channels=3, width=resnet_width, feature_relu=feature_relu)
    if backbone == "resnet18_imagenet":
        return StagedResNet(dict(heads), "resnet18", weights_path or None)
    if backbone == "vgg6":
        return vgg6_omniglot(dict(heads))
    if backbone == "vgg4":
        return vgg4_mnist(dict(heads))
    raise ConfigError(f"unknown backbone {backbone!r}; valid names are: mlp, resnet18, resnet18_imagenet, vgg6, vgg4")


def check_staged_backbone(owner: str, backbone: str, data: str, frozen_stages: int,
                          mlp_widths: Sequence[int]) -> None:
    """The parameter checks every chapter makes: the MLP is for the digits only and must keep a stage
    to train; ResNet-18 needs image data. ``owner`` names the parameter class in the message."""
    if backbone == "mlp" and frozen_stages >= len(mlp_widths):
        raise ConfigError(f"{owner}: frozen_stages {frozen_stages} leaves none of the {len(mlp_widths)} MLP "
                          "stages to train")
    if backbone == "mlp" and data not in VECTOR_DATA:
        raise ConfigError(f"{owner}: the MLP backbone is for vector data ({', '.join(VECTOR_DATA)}); "
                          f"use {'vgg6' if data == 'omniglot' else 'vgg4' if data == 'mnist' else 'resnet18'}")
    if backbone in CNN_DATA and data not in CNN_DATA[backbone]:
        raise ConfigError(f"{owner}: the {backbone} backbone is for {', '.join(CNN_DATA[backbone])}, not {data}")
    if backbone in ("resnet18", "resnet18_imagenet") and data in VECTOR_DATA + ("omniglot", "mnist"):
        raise ConfigError(f"{owner}: {data} is 1-channel or vector data; {backbone} needs image data, 3-channel "
                          "(digits/reuters10k: mlp, omniglot: vgg6, mnist: vgg4)")
