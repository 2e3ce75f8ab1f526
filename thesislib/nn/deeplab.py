"""DeepLab-LargeFOV (Chen et al., ICLR 2015): SEC's segmentation network (thesis section 2.3).

Layer by layer as in SEC's ``train.prototxt`` (study note 001, section 1.2), module names are the
Caffe layer names:

=================  ==========================================================  ===============
layers             operation                                                   321x321 input
=================  ==========================================================  ===============
conv1_1, conv1_2   3x3 conv, 64, ReLU; pool1 max 3x3 / s2 / p1                 161x161
conv2_1, conv2_2   3x3 conv, 128, ReLU; pool2 max 3x3 / s2 / p1                81x81
conv3_1..3_3       3x3 conv, 256, ReLU; pool3 max 3x3 / s2 / p1                41x41
conv4_1..4_3       3x3 conv, 512, ReLU; pool4 max 3x3 / s1 / p1                41x41
conv5_1..5_3       3x3 conv, 512, dilation 2, ReLU; pool5 max 3x3 / s1 / p1;
                   pool5a average 3x3 / s1 / p1                                41x41
fc6                3x3 conv, 1024, dilation 12, ReLU, dropout 0.5              41x41
fc7                1x1 conv, 1024, ReLU, dropout 0.5                           41x41
fc8                1x1 conv to ``num_classes``, weights N(0, 0.01^2), bias 0   41x41
=================  ==========================================================  ===============

Pooling uses Caffe's rounding (``ceil_mode=True``); the average pool counts padding in its
divisor, as Caffe's. The theoretical field of view is 378x378 (thesis).

ImageNet initialisation comes from a LOCAL torchvision ``vgg16`` state dict only (torchvision's
file is ``vgg16-397923af.pth``), converted by :func:`convert_vgg16_state_dict` the way DeepLab
built ``vgg16_20M`` from the fully connected VGG16: the 13 convolutions are copied (torchvision
``features.{0,2,5,...,28}`` -> ``conv1_1 ... conv5_3``); fc6's 4096 x 25088 matrix is viewed as
a 4096 x 512 x 7 x 7 convolution and subsampled to every 4th output channel and every 3rd
spatial tap (rows and columns 0, 3, 6), giving 1024 x 512 x 3 x 3 (the dilation of 12 makes the
3 taps span the same 25 pixels of the stride-8 map as 7 taps x 4 did); fc7's 4096 x 4096
becomes 1024 x 1024 x 1 x 1 by keeping every 4th input and output unit; biases keep every 4th
entry. fc8 is always new. The parameter count is 20.5 M (hence the name).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from thesislib.nn.resnet import WeightsNotFoundError

VGG16_FILE = "vgg16-397923af.pth"
# (Caffe name, torchvision ``features`` index, in channels, out channels)
VGG16_CONVS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 0, 3, 64), ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128), ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256), ("conv3_2", 12, 256, 256), ("conv3_3", 14, 256, 256),
    ("conv4_1", 17, 256, 512), ("conv4_2", 19, 512, 512), ("conv4_3", 21, 512, 512),
    ("conv5_1", 24, 512, 512), ("conv5_2", 26, 512, 512), ("conv5_3", 28, 512, 512),
)
_FC6_SHAPE = (4096, 512 * 7 * 7)
_FC7_SHAPE = (4096, 4096)


def largefov_output_size(size: int) -> int:
    """Side of DeepLab-LargeFOV's output for an input side ``size`` (Caffe pooling rounding)."""
    for _ in range(3):
        out = -(-(size + 2 - 3) // 2) + 1
        if (out - 1) * 2 >= size + 1:
            out -= 1
        size = out
    return size


class DeepLabLargeFOV(nn.Module):
    """DeepLab-LargeFOV: images (B, 3, H, W) -> class scores (B, num_classes, h, w), h = w = 41
    for a 321x321 input (:func:`largefov_output_size`); output stride 8.

    ``features(x)`` is fc7 after ReLU and dropout, (B, 1024, h, w) (``num_features`` = 1024).
    Without ``weights_path`` the convolutions get He-normal weights (fan-out) and zero biases;
    fc8 is always N(0, 0.01^2) with zero bias.
    """

    output_stride = 8
    num_features = 1024

    def __init__(self, num_classes: int = 21, dropout: float = 0.5,
                 weights_path: str | Path | None = None) -> None:
        super().__init__()
        if weights_path is not None:
            check_vgg16_file(Path(weights_path).expanduser())     # fail before building
        self.num_classes = num_classes
        for name, _, c_in, c_out in VGG16_CONVS:
            dilation = 2 if name.startswith("conv5") else 1
            setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation))
        self.pool1, self.pool2, self.pool3 = (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
                                              for _ in range(3))
        self.pool4, self.pool5 = (nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True) for _ in range(2))
        self.pool5a = nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=12, dilation=12)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.fc8 = nn.Conv2d(1024, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)  # element-wise, as Caffe's
        self._plan = ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2",
                      "conv3_1", "conv3_2", "conv3_3", "pool3", "conv4_1", "conv4_2", "conv4_3", "pool4",
                      "conv5_1", "conv5_2", "conv5_3", "pool5", "pool5a"]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)
        if weights_path is not None:
            load_vgg16_weights(self, weights_path)

    def features(self, x: Tensor) -> Tensor:
        """fc7 activations (B, 1024, h, w)."""
        for name in self._plan:
            layer = getattr(self, name)
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                x = self.relu(x)
        x = self.drop6(self.relu(self.fc6(x)))
        return self.drop7(self.relu(self.fc7(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc8(self.features(x))

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """See :func:`param_groups`."""
        return param_groups(self, lr, weight_decay)


def deeplab_largefov(num_classes: int = 21, dropout: float = 0.5,
                     weights_path: str | Path | None = None) -> DeepLabLargeFOV:
    """Build :class:`DeepLabLargeFOV` (registered as backbone ``"deeplab_largefov"``)."""
    return DeepLabLargeFOV(num_classes, dropout, weights_path)


# --------------------------------------------------------------------------------------------
# Optimiser groups: Caffe's lr_mult / decay_mult of SEC's train.prototxt
# --------------------------------------------------------------------------------------------

def caffe_param_groups(model: nn.Module, lr: float, weight_decay: float, head: str,
                       head_lr_mult: float = 10.0, bias_lr_mult: float = 2.0) -> list[dict[str, Any]]:
    """Four optimiser groups in Caffe's style (each dict also holds ``name`` and ``lr_mult``):

    ============  ==========================  ==========================  ============
    group         parameters                  lr                          weight decay
    ============  ==========================  ==========================  ============
    weights       every weight but the head   lr                          weight_decay
    biases        every bias but the head     bias_lr_mult * lr           0
    head_weight   ``<head>.weight``           head_lr_mult * lr           weight_decay
    head_bias     ``<head>.bias``             head_lr_mult * bias_mult*lr 0
    ============  ==========================  ==========================  ============

    A parameter counts as a "bias" when it is 1-D (biases and normalisation scales/shifts).
    Empty groups are dropped. Step schedulers scale every group's lr alike, so the ratios hold.
    """
    spec = {"weights": (1.0, weight_decay), "biases": (bias_lr_mult, 0.0),
            "head_weight": (head_lr_mult, weight_decay), "head_bias": (head_lr_mult * bias_lr_mult, 0.0)}
    members: dict[str, list[nn.Parameter]] = {key: [] for key in spec}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(head + "."):
            members["head_bias" if param.ndim <= 1 else "head_weight"].append(param)
        else:
            members["biases" if param.ndim <= 1 else "weights"].append(param)
    return [{"params": members[key], "lr": lr * mult, "weight_decay": decay, "lr_mult": mult, "name": key}
            for key, (mult, decay) in spec.items() if members[key]]


def param_groups(model: DeepLabLargeFOV, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """SEC's train.prototxt multipliers: conv/fc weights lr x1 with decay; their biases lr x2 and
    no decay; fc8 weights lr x10 with decay (``decay_mult: 1``), fc8 bias lr x20, no decay.
    Use with ``torch.optim.SGD(groups, lr, momentum=0.9)`` (SEC: lr 1e-3, decay 5e-4)."""
    return caffe_param_groups(model, lr, weight_decay, head="fc8", head_lr_mult=10.0, bias_lr_mult=2.0)


# --------------------------------------------------------------------------------------------
# ImageNet weights from a local torchvision VGG16 file
# --------------------------------------------------------------------------------------------

def check_vgg16_file(path: Path) -> None:
    """Raise :class:`WeightsNotFoundError` naming the expected file when ``path`` is missing."""
    if not path.is_file():
        raise WeightsNotFoundError(
            f"VGG16 ImageNet weights were asked for at {path}, but there is no such file. Expected "
            f"a torchvision vgg16 state dict there (torchvision names the file {VGG16_FILE}); this "
            "library never downloads weights. Pass weights_path=None to start from random "
            "initialisation.")


def read_vgg16_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision-format VGG16 state dict (plain, or under ``state_dict``/``model``;
    a ``module.`` prefix is stripped)."""
    path = Path(path).expanduser()
    check_vgg16_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (report any unreadable file the same way)
        raise ValueError(f"cannot read weights file {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _require(state: Mapping[str, Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(k for k in expected if k not in state)
    wrong = sorted(f"{k} {tuple(state[k].shape)} != {v}" for k, v in expected.items()
                   if k in state and tuple(state[k].shape) != v)
    problems = ([f"missing {', '.join(missing[:6])}"] if missing else []) + \
        ([f"shape mismatch {', '.join(wrong[:6])}"] if wrong else [])
    if problems:
        raise ValueError("not a torchvision vgg16 state dict (vgg16_bn and others have other keys): "
                         + "; ".join(problems))


def convert_vgg16_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision vgg16 state dict -> DeepLab-LargeFOV's conv1_1 .. conv5_3, fc6, fc7 tensors.

    fc6: ``W6.view(4096, 512, 7, 7)[::4, :, ::3, ::3]`` (1024, 512, 3, 3), ``b6[::4]``;
    fc7: ``W7[::4, ::4].view(1024, 1024, 1, 1)``, ``b7[::4]`` (the vgg16_20M subsampling).
    torchvision flattens pool5's (512, 7, 7) channel-major, which the view undoes.
    """
    expected: dict[str, tuple[int, ...]] = {}
    for _, index, c_in, c_out in VGG16_CONVS:
        expected[f"features.{index}.weight"] = (c_out, c_in, 3, 3)
        expected[f"features.{index}.bias"] = (c_out,)
    expected.update({"classifier.0.weight": _FC6_SHAPE, "classifier.0.bias": (4096,),
                     "classifier.3.weight": _FC7_SHAPE, "classifier.3.bias": (4096,)})
    _require(state, expected)
    out: dict[str, Tensor] = {}
    for name, index, _, _ in VGG16_CONVS:
        out[f"{name}.weight"] = state[f"features.{index}.weight"].clone()
        out[f"{name}.bias"] = state[f"features.{index}.bias"].clone()
    w6 = state["classifier.0.weight"].reshape(4096, 512, 7, 7)
    out["fc6.weight"] = w6[::4, :, ::3, ::3].contiguous()
    out["fc6.bias"] = state["classifier.0.bias"][::4].clone()
    out["fc7.weight"] = state["classifier.3.weight"][::4, ::4].reshape(1024, 1024, 1, 1).contiguous()
    out["fc7.bias"] = state["classifier.3.bias"][::4].clone()
    return out


def load_vgg16_weights(model: DeepLabLargeFOV, path: str | Path) -> None:
    """Initialise every layer of ``model`` but fc8 from a local torchvision VGG16 file."""
    converted = convert_vgg16_state_dict(read_vgg16_state_dict(path))
    result = model.load_state_dict(converted, strict=False)
    if result.unexpected_keys or sorted(result.missing_keys) != ["fc8.bias", "fc8.weight"]:
        raise RuntimeError(f"VGG16 conversion does not match the model: {result}")
