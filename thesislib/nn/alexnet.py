"""The AlexNet variants of the self-supervised chapters (Jenni thesis ch. 3-4, later ch. 8).

One configurable network covers them (study note 004 §0, "AlexNet variants"):

=====================  ======================================================================
variant                settings
=====================  ======================================================================
Krizhevsky (2012)      ``norm="lrn"``, ``groups=2``, ``pool5=True`` (the supervised reference)
ch. 3 discriminator    ``norm="lrn"``, ``bn_conv5=True`` (BN only after conv5, dropped for
                       transfer), ``groups=2``, ``pool5=False``
ch. 4 classifier       ``norm="bn"`` (BN after every conv and fc but the last, no LRN),
                       ``groups=2``, ``pool5=False``, ``padding="same"`` for low resolution
=====================  ======================================================================

Layers (channels at ``width=1``; ``width`` scales every channel count so that smoke runs are
tiny): conv1 96 11x11/4 - [LRN] - maxpool 3/2; conv2 256 5x5 (2 groups) - [LRN] - maxpool 3/2;
conv3 384 3x3; conv4 384 3x3 (2 groups); conv5 256 3x3 (2 groups); [maxpool 3/2]; then the
fully-connected layers ``fc_dims`` and a linear classifier when ``num_classes`` is given. Each conv
is followed by its normalisation (if any) and ReLU. LRN is Krizhevsky's (size 5, alpha 1e-4,
beta 0.75, k 2) and sits after the ReLU of conv1/conv2, before pooling.

``padding="valid"`` is the Caffe network (conv1 unpadded, conv2-5 padded by k // 2, pools
unpadded): 227 -> 55 -> 27 -> 13 (-> 6 with pool5). ``padding="same"`` pads every conv and pool
so that each stride-s layer maps H to ceil(H / s) (TensorFlow's SAME), which keeps small inputs
(96x96 STL-10, 64x64 or smaller smoke images) from collapsing: 96 -> 24 -> 12 -> 6 (-> 3).
``conv1_kernel`` / ``conv1_stride`` replace the 11x11/4 stem for tiny inputs (e.g. 5x5/1 on 32x32).

:meth:`AlexNet.conv_layers` returns every conv layer's activation (after normalisation and ReLU,
the maps the linear-probe protocol reads); :meth:`AlexNet.features` the penultimate vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["lrn", "bn", "none"]
Padding = Literal["valid", "same"]

CONV_LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5")
_CHANNELS = (96, 256, 384, 384, 256)
_KERNELS = (11, 5, 3, 3, 3)
_GROUPED = (False, True, False, True, True)


def scaled(channels: int, width: float, groups: int = 1) -> int:
    """``channels * width`` rounded to a positive multiple of ``groups``."""
    c = max(groups, int(round(channels * width)))
    return int(math.ceil(c / groups) * groups)


class SamePad2d(nn.Module):
    """TensorFlow SAME padding for a ``kernel``/``stride`` window: output side ceil(H / stride).

    Pads (B, C, H, W) with ``value`` (0 for convs, -inf for max-pooling) by
    ``max(0, (ceil(H/s) - 1) s + k - H)`` split with the odd pixel at the bottom/right.
    """

    def __init__(self, kernel: int, stride: int, value: float = 0.0) -> None:
        super().__init__()
        self.kernel, self.stride, self.value = int(kernel), int(stride), float(value)

    @staticmethod
    def amount(size: int, kernel: int, stride: int) -> tuple[int, int]:
        total = max(0, (math.ceil(size / stride) - 1) * stride + kernel - size)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self.amount(x.shape[-2], self.kernel, self.stride)
        left, right = self.amount(x.shape[-1], self.kernel, self.stride)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom), value=self.value)


def _conv(cin: int, cout: int, kernel: int, stride: int, groups: int, padding: Padding,
          first: bool) -> list[nn.Module]:
    if padding == "same":
        return [SamePad2d(kernel, stride), nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups)]
    pad = 0 if first else kernel // 2
    return [nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups)]


def _pool(padding: Padding) -> list[nn.Module]:
    if padding == "same":
        return [SamePad2d(3, 2, value=float("-inf")), nn.MaxPool2d(3, 2)]
    return [nn.MaxPool2d(3, 2)]


class AlexNet(nn.Module):
    """AlexNet with the thesis's switches (see the module docstring).

    Args:
        num_classes: size of the last linear layer; None: no head (``forward`` returns the
            flattened output of the last fc layer, or of the conv trunk when ``fc_dims`` is empty).
        in_channels: 3 for RGB, 1 for grey digits.
        width: channel multiplier (1.0 = the paper's network).
        norm: "lrn" after conv1/2, "bn" after every conv and fc layer, or "none".
        bn_conv5: a BatchNorm after conv5 only (ch. 3's self-supervised training); with
            ``norm="bn"`` it is already there.
        groups: 2 for the two-stream convolutions conv2/4/5 (1: ungrouped).
        pool5: keep the max-pool after conv5.
        padding: "valid" (Caffe) or "same" (TensorFlow, for small inputs).
        fc_dims: widths of the hidden fc layers at ``width=1`` (scaled by ``width``).
        conv1_kernel, conv1_stride: the stem (11, 4 in the paper).
        dropout: dropout probability before each hidden fc layer (0.5 in the paper's supervised net).
        input_size: the square input side the fc layers are sized for (227 for the paper's net).

    Input (B, in_channels, H, W); :meth:`conv_layers` gives five maps (B, C_l, H_l, W_l).
    """

    def __init__(self, num_classes: int | None = None, in_channels: int = 3, width: float = 1.0,
                 norm: Norm = "lrn", bn_conv5: bool = False, groups: int = 2, pool5: bool = True,
                 padding: Padding = "valid", fc_dims: Sequence[int] = (4096, 4096), conv1_kernel: int = 11,
                 conv1_stride: int = 4, dropout: float = 0.0, input_size: int = 227) -> None:
        super().__init__()
        if norm not in ("lrn", "bn", "none"):
            raise ValueError(f"norm must be 'lrn', 'bn' or 'none', got {norm!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.norm, self.padding, self.pool5_enabled = norm, padding, bool(pool5)
        channels = [scaled(c, width, groups) for c in _CHANNELS]
        kernels = list(_KERNELS)
        kernels[0] = int(conv1_kernel)
        self.channels = tuple(channels)
        blocks: list[nn.Sequential] = []
        cin = in_channels
        for i, (cout, k, grouped) in enumerate(zip(channels, kernels, _GROUPED)):
            stride = int(conv1_stride) if i == 0 else 1
            layers = _conv(cin, cout, k, stride, groups if grouped else 1, padding, first=(i == 0))
            if norm == "bn" or (i == 4 and bn_conv5):
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if norm == "lrn" and i < 2:
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.conv1, self.conv2, self.conv3, self.conv4, self.conv5 = blocks
        self.pool1 = nn.Sequential(*_pool(padding))
        self.pool2 = nn.Sequential(*_pool(padding))
        self.pool5 = nn.Sequential(*_pool(padding)) if pool5 else nn.Identity()
        hidden: list[nn.Module] = []
        self.fc_dims = tuple(scaled(d, width) for d in fc_dims)
        self.input_size = int(input_size)
        with torch.no_grad():  # the trunk's flattened size at input_size (one dry pass in eval mode)
            self.eval()
            flat = self.trunk(torch.zeros(1, in_channels, self.input_size, self.input_size)).numel()
            self.train()
        self.trunk_features = int(flat)
        prev = self.trunk_features
        for d in self.fc_dims:
            if dropout > 0:
                hidden.append(nn.Dropout(dropout))
            hidden.append(nn.Linear(prev, d))
            if norm == "bn":
                hidden.append(nn.BatchNorm1d(d))
            hidden.append(nn.ReLU(inplace=True))
            prev = d
        self.fc = nn.Sequential(*hidden)
        self.num_features = prev
        self.head: nn.Module | None = None
        if num_classes is not None:
            self.head = nn.Linear(prev, num_classes)

    def conv_layers(self, x: torch.Tensor, upto: str = "conv5") -> dict[str, torch.Tensor]:
        """``{"conv1": (B, C1, H1, W1), ..., upto: ...}``: each conv layer after its norm and ReLU."""
        if upto not in CONV_LAYERS:
            raise ValueError(f"upto must be one of {CONV_LAYERS}, got {upto!r}")
        out: dict[str, torch.Tensor] = {}
        h = x
        for name in CONV_LAYERS:
            h = getattr(self, name)(h)
            out[name] = h
            if name == upto:
                break
            if name == "conv1":
                h = self.pool1(h)
            elif name == "conv2":
                h = self.pool2(h)
        return out

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """conv1..conv5 (and pool5 when enabled): (B, C5, H', W')."""
        return self.pool5(self.conv_layers(x)["conv5"])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activation: (B, num_features)."""
        return self.fc(self.trunk(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(f) if self.head is not None else f

    def conv_modules(self) -> list[nn.Module]:
        """The five conv blocks (the part transferred to downstream tasks)."""
        return [getattr(self, name) for name in CONV_LAYERS]


def alexnet(num_classes: int | None = None, in_channels: int = 3, width: float = 1.0, norm: Norm = "lrn",
            bn_conv5: bool = False, groups: int = 2, pool5: bool = True, padding: Padding = "valid",
            fc_dims: Sequence[int] = (4096, 4096), conv1_kernel: int = 11, conv1_stride: int = 4,
            dropout: float = 0.0, input_size: int = 227) -> AlexNet:
    """Build an :class:`AlexNet` (registered backbone ``"alexnet"``)."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, width=width, norm=norm, bn_conv5=bn_conv5,
                   groups=groups, pool5=pool5, padding=padding, fc_dims=tuple(fc_dims), conv1_kernel=conv1_kernel,
                   conv1_stride=conv1_stride, dropout=dropout, input_size=input_size)


def spot_artifacts_discriminator_trunk(width: float = 1.0, padding: Padding = "same", conv1_kernel: int = 11,
                                       conv1_stride: int = 4, in_channels: int = 3,
                                       input_size: int = 128) -> AlexNet:
    """Ch. 3's discriminator trunk: LRN, 2 groups, no pool5, BN after conv5, no fc layers.

    SAME padding by default: a 128x128 input gives an 8x8 conv5 map, the grid of the 8x8 drop mask.
    """
    return AlexNet(None, in_channels=in_channels, width=width, norm="lrn", bn_conv5=True, groups=2, pool5=False,
                   padding=padding, fc_dims=(), conv1_kernel=conv1_kernel, conv1_stride=conv1_stride,
                   input_size=input_size)


def lci_classifier(num_classes: int = 6, width: float = 1.0, padding: Padding = "same", conv1_kernel: int = 11,
                   conv1_stride: int = 4, in_channels: int = 3, fc_dims: Sequence[int] = (4096, 4096),
                   input_size: int = 96) -> AlexNet:
    """Ch. 4's transformation classifier: BN everywhere but the last layer, no LRN, 2 groups, no pool5."""
    return AlexNet(num_classes, in_channels=in_channels, width=width, norm="bn", groups=2, pool5=False,
                   padding=padding, fc_dims=tuple(fc_dims), conv1_kernel=conv1_kernel, conv1_stride=conv1_stride,
                   input_size=input_size)
