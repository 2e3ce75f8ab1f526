"""Backbones shared across chapters, and a small registry to build them by name.

``build_backbone("wrn", depth=40, widen=14, num_classes=100)`` and friends; an unknown name or
keyword is a :class:`thesislib.config.ConfigError` listing the valid ones. Every backbone maps
images (or flat vectors for the MLP) to logits (score maps for the segmentation networks) and exposes
``features(x)``, the penultimate activation, and ``num_features``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from thesislib.config import ConfigError, check_known
from thesislib.nn.mlp import MLP, mlp
from thesislib.nn.resnet import ResNetGMP, load_trunk_weights, resnet_gmp
from thesislib.nn.weights import WeightsFileError, WeightsNotFoundError, read_state_dict
from thesislib.nn.wide_resnet import WideResNet, wrn, wrn_num_parameters

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(name: str, builder: Callable[..., nn.Module]) -> None:
    """Add ``builder`` under ``name`` (a name can be registered once)."""
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} is already registered")
    _REGISTRY[name] = builder


def available_backbones() -> list[str]:
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name`` with keyword arguments ``kwargs``.

    See :func:`available_backbones` for the registered names (classifiers such as ``"mlp"``,
    ``"wrn"``, ``"resnet_gmp"``, ``"cam_vgg16"`` return logits; the segmentation networks
    ``"deeplab_largefov"`` and ``"small_fcn"`` return per-location score maps).
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; valid names are: {', '.join(available_backbones())}")
    builder = _REGISTRY[name]
    params = inspect.signature(builder).parameters
    check_known(kwargs, list(params), what=f"argument of backbone {name!r}")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise ConfigError(f"backbone {name!r} needs: {', '.join(missing)}")
    return builder(**kwargs)


register_backbone("mlp", mlp)
register_backbone("wrn", wrn)
register_backbone("resnet_gmp", resnet_gmp)

__all__ = [
    "MLP",
    "ResNetGMP",
    "WeightsFileError",
    "WeightsNotFoundError",
    "WideResNet",
    "available_backbones",
    "build_backbone",
    "load_trunk_weights",
    "mlp",
    "read_state_dict",
    "register_backbone",
    "resnet_gmp",
    "wrn",
    "wrn_num_parameters",
]

# Segmentation backbones (SEC and micro-annotation chapters).
from thesislib.nn.cam import CAMClassifier, cam_smallnet, cam_vgg16, input_gradient_saliency  # noqa: E402
from thesislib.nn.cam_training import CAMTrainConfig, train_cam_classifier  # noqa: E402
from thesislib.nn.deeplab import DeepLabLargeFOV, deeplab_largefov  # noqa: E402
from thesislib.nn.fcn import SmallFCN, small_fcn  # noqa: E402
from thesislib.nn.vgg import load_vgg16_weights  # noqa: E402

register_backbone("deeplab_largefov", deeplab_largefov)
register_backbone("small_fcn", small_fcn)
register_backbone("cam_vgg16", cam_vgg16)
register_backbone("cam_smallnet", cam_smallnet)

__all__ += [
    "CAMClassifier", "CAMTrainConfig", "DeepLabLargeFOV", "SmallFCN", "cam_smallnet", "cam_vgg16",
    "deeplab_largefov", "input_gradient_saliency", "load_vgg16_weights", "small_fcn", "train_cam_classifier",
]

# PixelCNN++ (Grayscale/Pyramid PixelCNN and PIC chapters).
from thesislib.nn.pixelcnn import Embedding, EmbeddingStage, PixelCNNpp  # noqa: E402

__all__ += ["Embedding", "EmbeddingStage", "PixelCNNpp"]

# Multi-domain ResNet-26 with residual adapters (Rebuffi chapters 3-4).
from thesislib.nn.adapter_svd import compress_parallel_adapters, joint_factors, stacked_adapters  # noqa: E402
from thesislib.nn.multidomain import (  # noqa: E402
                                      MODES,
                                      WeightDecay,
                                      domain_parameters,
                                      param_groups,
                                      prepare_domain,
                                      shared_parameters,
                                      trainable_parameters,
)
from thesislib.nn.resnet26_adapters import (  # noqa: E402
                                            DomainConv,
                                            DomainView,
                                            MultiDomainResNet,
                                            SeriesAdapter,
                                            domain_predictor,
                                            resnet26,
)

register_backbone("resnet26", resnet26)

__all__ += [
    "MODES", "DomainConv", "DomainView", "MultiDomainResNet", "SeriesAdapter", "WeightDecay",
    "compress_parallel_adapters", "domain_parameters", "domain_predictor", "joint_factors", "param_groups",
    "prepare_domain", "resnet26", "shared_parameters", "stacked_adapters", "trainable_parameters",
]

# AlexNet variants, GAN blocks and resize-conv decoders (Jenni ch. 3-4, self-supervision).
from thesislib.nn.alexnet import AlexNet, alexnet, lci_classifier, spot_artifacts_discriminator_trunk  # noqa: E402
from thesislib.nn.gan import (  # noqa: E402
    hinge_d_loss,
    hinge_g_loss,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    spectral_normalize,
)
from thesislib.nn.resize_conv import ResizeConv2d, resize_conv_decoder  # noqa: E402

register_backbone("alexnet", alexnet)

__all__ += [
    "AlexNet", "ResizeConv2d", "alexnet", "hinge_d_loss", "hinge_g_loss", "lci_classifier", "nonsaturating_d_loss",
    "nonsaturating_g_loss", "resize_conv_decoder", "spectral_normalize", "spot_artifacts_discriminator_trunk",
]

# CIFAR-style ResNet-18 and the staged MLP (Rebuffi chapters 5-7: scarce annotations, AutoNovel, LSD-C).
from thesislib.nn.resnet_cifar import CifarResNet, PadShortcut, freeze_stages, resnet18_cifar  # noqa: E402
from thesislib.nn.staged_mlp import StagedMLP  # noqa: E402

register_backbone("resnet18_cifar", resnet18_cifar)

__all__ += ["CifarResNet", "PadShortcut", "StagedMLP", "freeze_stages", "resnet18_cifar"]

# "Finetune all" and the unknown-domain setting (Rebuffi ch. 3 §5): joint optimiser groups, routing.
from thesislib.nn.multidomain import RoutedNetwork, joint_param_groups  # noqa: E402

__all__ += ["RoutedNetwork", "joint_param_groups"]

# Krähenbühl et al.'s data-dependent rescaling for transfer (Jenni ch. 3-4): BN folding, Algorithms 1-2.
from thesislib.nn.rescaling import (  # noqa: E402
    between_layer_rescale,
    fold_batchnorm,
    krahenbuhl_rescale,
    within_layer_init,
)

__all__ += ["between_layer_rescale", "fold_batchnorm", "krahenbuhl_rescale", "within_layer_init"]

# VGG-style staged CNNs (Rebuffi ch. 6 OmniGlot VGG-6, ch. 7 MNIST VGG-4-like).
from thesislib.nn.staged_cnn import StagedConvNet, vgg4_mnist, vgg6_omniglot  # noqa: E402

register_backbone("vgg6_omniglot", vgg6_omniglot)
register_backbone("vgg4_mnist", vgg4_mnist)

__all__ += ["StagedConvNet", "vgg4_mnist", "vgg6_omniglot"]

from thesislib.nn.resnet import RESNET_STAGES, SmallInputResNet  # noqa: E402

__all__ += ["RESNET_STAGES", "SmallInputResNet"]
