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

RESNET_ARCHS: dict[str, int] = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048,
                                "resnet152": 2048}
TORCHVISION_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
                     "resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth",
                     "resnet152": "resnet152-394f9c45.pth"}
_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained-weights file was asked for and is not there."""


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


def _check_weights_path(path: Path, arch: str) -> None:
    if not path.is_file():
        raise WeightsNotFoundError(
            f"pretrained {arch} weights were asked for at {path}, but there is no such file. "
            f"Expected a torchvision ImageNet state dict for {arch} there (the file torchvision "
            f"names {TORCHVISION_FILES[arch]}); this library never downloads weights. Pass "
            "weights_path=None to start from random initialisation.")


def _trunk_key(key: str) -> bool:
    return key.split(".", 1)[0] in _TRUNK


def load_trunk_weights(model: ResNetGMP, path: str | Path) -> None:
    """Load the trunk of ``model`` from a torchvision-format state dict file; the head is left alone.

    Accepts a plain state dict or a checkpoint holding one under ``"state_dict"`` or ``"model"``;
    a ``"module."`` prefix (DataParallel/DDP) is stripped, ``fc.*`` entries are ignored. Every
    trunk tensor must be present with the right shape, else the error lists what is wrong.
    """
    path = Path(path).expanduser()
    _check_weights_path(path, model.arch)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (report any unreadable file the same way)
        raise ValueError(f"cannot read weights file {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    trunk_file = {k: v for k, v in state.items() if _trunk_key(k)}
    trunk_model = {k: v for k, v in model.state_dict().items() if _trunk_key(k)}
    # BatchNorm's num_batches_tracked came with PyTorch 0.4.1; older files (torchvision's V1
    # ResNet weights among them) lack it, and torchvision loads them anyway: so do we.
    missing = sorted(k for k in set(trunk_model) - set(trunk_file) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in trunk_model and not k.startswith("fc."))
    mismatched = sorted(k for k in trunk_model.keys() & trunk_file.keys()
                        if tuple(trunk_model[k].shape) != tuple(trunk_file[k].shape))
    if missing or unexpected or mismatched:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        problems = [f"{name}: {show(keys)}" for name, keys in
                    (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)) if keys]
        raise ValueError(f"{path} does not match the {model.arch} trunk; " + "; ".join(problems))
    model.load_state_dict(trunk_file, strict=False)


def resnet_gmp(num_outputs: int, arch: str = "resnet101", weights_path: str | Path | None = None) -> ResNetGMP:
    """Build :class:`ResNetGMP` (ResNet-101 by default)."""
    return ResNetGMP(num_outputs, arch, weights_path)
