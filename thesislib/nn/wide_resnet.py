"""Wide residual networks for 32x32 inputs (Zagoruyko & Komodakis, "Wide Residual Networks", 2016).

WRN-d-k: a 3x3 stem convolution with 16 channels, then three groups of ``n = (d - 4) / 6``
pre-activation basic blocks with widths ``16k, 32k, 64k`` (strides 1, 2, 2), then BN, ReLU,
global average pooling and a linear classifier. A basic block is
``BN-ReLU-conv3x3(stride)-BN-ReLU-[dropout]-conv3x3`` plus the identity, or a 1x1 convolution of
the pre-activated input where the width or the resolution changes. Convolutions have no bias.

The G-softmax paper's CIFAR model is WRN-40-14 (Sec. IV), trained from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block: (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.dropout = float(dropout)
        self.shortcut: nn.Module | None = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv1(act)
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        out = self.conv2(out)
        # where the shape changes the shortcut sees the pre-activated input, as in the WRN reference
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    """WRN-depth-widen: images (B, C_in, H, W) -> logits (B, num_classes); ``features`` gives (B, 64k)."""

    def __init__(self, depth: int, widen: int, num_classes: int, dropout: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
        if widen < 1 or num_classes < 1:
            raise ValueError("widen and num_classes must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.depth, self.widen, self.num_classes = depth, widen, num_classes
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        groups = []
        for g, stride in enumerate((1, 2, 2)):
            blocks = [PreActBasicBlock(widths[g] if i == 0 else widths[g + 1], widths[g + 1],
                                       stride if i == 0 else 1, dropout) for i in range(n)]
            groups.append(nn.Sequential(*blocks))
        self.group1, self.group2, self.group3 = groups
        self.bn = nn.BatchNorm2d(widths[3])
        self.num_features = widths[3]
        self.fc = nn.Linear(widths[3], num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.fc.bias)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activation: globally average-pooled (B, 64 widen)."""
        out = self.group3(self.group2(self.group1(self.conv(x))))
        out = F.relu(self.bn(out))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def wrn(depth: int, widen: int, num_classes: int, dropout: float = 0.0, in_channels: int = 3) -> WideResNet:
    """Build WRN-``depth``-``widen`` (e.g. ``wrn(40, 14, 100)``, the paper's CIFAR-100 model)."""
    return WideResNet(depth, widen, num_classes, dropout, in_channels)


def wrn_num_parameters(depth: int, widen: int, num_classes: int, in_channels: int = 3) -> int:
    """Closed-form parameter count of :func:`wrn` (convolutions, BN scales and shifts, classifier)."""
    n = (depth - 4) // 6
    w = [16, 16 * widen, 32 * widen, 64 * widen]
    total = 9 * in_channels * w[0]
    for g in range(3):
        c_in, c_out = w[g], w[g + 1]
        first = 9 * c_in * c_out + 9 * c_out * c_out + 2 * c_in + 2 * c_out
        shortcut = c_in * c_out if (c_in != c_out or g > 0) else 0
        rest = (n - 1) * (18 * c_out * c_out + 4 * c_out)
        total += first + shortcut + rest
    return total + 2 * w[3] + w[3] * num_classes + num_classes
