"""ResNet trunk with a global-max-pooling head: the backbone of the G-softmax multi-label runs.

Luo et al. train ImageNet-pretrained ResNet-101 on MS COCO and NUS-WIDE at 448x448 (and Tiny
ImageNet at 224x224) with the average pooling replaced by global max pooling and a new
``Linear(2048, out)`` whose bias starts at zero (study note 002, section 2.7). The trunk here is
torchvision's (its parameter names, so torchvision ImageNet state dicts load as they are); the
pooling is adaptive, so any input size works.

Pretrained weights are read only from a local file given by the caller; nothing is downloaded. A
path that does not exist is an error naming it; without a path the trunk is randomly initialised.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from thesislib.nn.weights import check_weights_file, read_state_dict, require_tensors

RESNET_ARCHS: dict[str, int] = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048,
                                "resnet152": 2048}
TORCHVISION_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
                     "resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth",
                     "resnet152": "resnet152-394f9c45.pth"}
_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


class ResNetGMP(nn.Module):
    """torchvision ResNet trunk + global max pooling + linear head with zero bias.

    images (B, 3, H, W) -> logits (B, num_outputs); ``features`` gives the pooled (B, 2048) for
    ResNet-50/101/152 (512 for ResNet-18/34). ``num_outputs`` is ``2 * classes`` for the
    two-logits-per-class G-softmax head.
    """

    def __init__(self, num_outputs: int, arch: str = "resnet101", weights_path: str | Path | None = None) -> None:
        super().__init__()
        if arch not in RESNET_ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(RESNET_ARCHS)}")
        if weights_path is not None:
            _check_weights_path(Path(weights_path).expanduser(), arch)     # fail before building
        self.arch = arch
        net = getattr(torchvision.models, arch)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.num_features = RESNET_ARCHS[arch]
        self.fc = nn.Linear(self.num_features, num_outputs)
        nn.init.zeros_(self.fc.bias)
        if weights_path is not None:
            load_trunk_weights(self, weights_path)

    def features(self, x: Tensor) -> Tensor:
        """Globally max-pooled trunk output (B, num_features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _expected(arch: str) -> str:
    return f"a torchvision ImageNet state dict for {arch} (the file torchvision names {TORCHVISION_FILES[arch]})"


def _check_weights_path(path: Path, arch: str) -> None:
    check_weights_file(path, _expected(arch))


def _trunk_key(key: str) -> bool:
    return key.split(".", 1)[0] in _TRUNK


def load_trunk_weights(model: nn.Module, path: str | Path) -> None:
    """Load the trunk of ``model`` from a torchvision-format state dict file; the head is left alone.

    The file is read by :func:`~thesislib.nn.weights.read_state_dict` (a plain state dict or one
    under ``"state_dict"`` / ``"model"``; ``module.`` and ``_orig_mod.`` prefixes stripped);
    ``fc.*`` entries are ignored (``model``: :class:`ResNetGMP` or :class:`StagedResNet`, anything with an
    ``arch`` and torchvision's trunk names). Every trunk tensor must be present with the right shape, else a
    :class:`~thesislib.nn.weights.WeightsFileError` lists what is wrong.
    """
    state = read_state_dict(path, _expected(model.arch))
    trunk_model = {k: tuple(v.shape) for k, v in model.state_dict().items() if _trunk_key(k)}
    # BatchNorm's num_batches_tracked came with PyTorch 0.4.1; older files (torchvision's V1
    # ResNet weights among them) lack it, and torchvision loads them anyway: so do we.
    required = {k: v for k, v in trunk_model.items() if not k.endswith("num_batches_tracked") or k in state}
    require_tensors(state, required, f"the {model.arch} trunk", Path(path).expanduser(),
                    allowed_extra=("fc.",) + tuple(k for k in trunk_model if k.endswith("num_batches_tracked")))
    model.load_state_dict({k: v for k, v in state.items() if _trunk_key(k)}, strict=False)


def resnet_gmp(num_outputs: int, arch: str = "resnet101", weights_path: str | Path | None = None) -> ResNetGMP:
    """Build :class:`ResNetGMP` (ResNet-101 by default)."""
    return ResNetGMP(num_outputs, arch, weights_path)


class StagedResNet(nn.Module):
    """torchvision's ImageNet ResNet (7x7 stem, max-pool, projection shortcuts) with global average pooling
    and named linear heads, in the interface of :mod:`thesislib.nn.staged_backbone`: images (B, 3, H, W)
    -> ``{"features": (B, num_features), head: (B, n_head)}``; the stem ``conv1``/``bn1`` and the stages
    ``layer1..4`` carry torchvision's names, so :func:`~thesislib.nn.resnet_cifar.freeze_stages` and
    :func:`load_trunk_weights` (torchvision ImageNet state dicts) work on it.

    The backbone of the ImageNet-transfer runs on full-size images (Rebuffi thesis ch. 5 Table 2: Places-10
    and MIT Indoor-67, "networks pretrained on ImageNet", first two blocks frozen)."""

    def __init__(self, heads: dict[str, int], arch: str = "resnet18", weights_path: str | Path | None = None) -> None:
        super().__init__()
        if arch not in RESNET_ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(RESNET_ARCHS)}")
        if "features" in heads:
            raise ValueError("a head cannot be called 'features' (forward returns the feature under that key)")
        if weights_path is not None:
            _check_weights_path(Path(weights_path).expanduser(), arch)
        self.arch = arch
        net = getattr(torchvision.models, arch)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.num_features = RESNET_ARCHS[arch]
        self.heads = nn.ModuleDict({name: nn.Linear(self.num_features, n) for name, n in heads.items()})
        if weights_path is not None:
            load_trunk_weights(self, weights_path)

    def features(self, x: Tensor) -> Tensor:
        """The average-pooled trunk output (B, num_features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f = self.features(x)
        return {"features": f, **{name: head(f) for name, head in self.heads.items()}}


RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
"""The stages of :class:`SmallInputResNet` that :meth:`SmallInputResNet.conv_layers` exposes."""


class SmallInputResNet(nn.Module):
    """torchvision's ResNet layout (``arch`` resnet18/34/50/101/152, no pretrained weights) for small inputs: the
    7x7 stride-2 stem and the max-pool replaced by a 3x3 stride-1 conv (+ BN, ReLU), as IIC (Ji et al.) use on
    64-px STL-10 crops; then layer1..layer4, global average pooling and a linear head.

    images (B, C, S, S) -> logits (B, num_classes); layer1..layer4 maps are (B, 64e, S, S), (B, 128e, S/2, S/2),
    (B, 256e, S/4, S/4), (B, 512e, S/8, S/8) (e = 1 for resnet18/34, 4 for the bottleneck ones). Parameter names
    are torchvision's except ``conv1`` (3x3 here), so the stages' state dicts match torchvision's."""

    def __init__(self, num_classes: int, arch: str = "resnet34", in_channels: int = 3) -> None:
        super().__init__()
        if arch not in RESNET_ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(RESNET_ARCHS)}")
        net = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1, self.relu = net.bn1, net.relu
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = RESNET_ARCHS[arch]
        self.fc = nn.Linear(self.num_features, num_classes)

    def conv_layers(self, x: Tensor, upto: str = "layer4") -> dict[str, Tensor]:
        """``{"layer1": (B, C1, H1, W1), ..., upto: ...}``: each stage's output (after its last block's ReLU)."""
        if upto not in RESNET_STAGES:
            raise ValueError(f"upto must be one of {RESNET_STAGES}, got {upto!r}")
        out: dict[str, Tensor] = {}
        h = self.relu(self.bn1(self.conv1(x)))
        for name in RESNET_STAGES:
            h = getattr(self, name)(h)
            out[name] = h
            if name == upto:
                break
        return out

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled layer4: (B, num_features)."""
        return torch.flatten(self.avgpool(self.conv_layers(x)["layer4"]), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))
