"""The CIFAR-style ResNet-18 of Rebuffi's thesis, chapters 5-7 (the released AutoNovel / LSD-C code).

Differences from torchvision's ImageNet ResNet-18 (study note 003, section 0.1 item 7):

* the stem is one 3x3 convolution of stride 1 with BN and ReLU, and there is **no max-pool**;
* four stages of two BasicBlocks with 64/128/256/512 channels and strides 1, 2, 2, 2;
* a downsampling shortcut is ``AvgPool2d(2)`` followed by **zero-padded channels** (no 1x1
  projection), so the shortcut has no parameters;
* the feature is the global average of the last stage (``avg_pool2d(out, 4)`` on 32x32 inputs;
  adaptive here, so 96x96 STL-10 images work): a 512-d vector; AutoNovel applies an extra ReLU on it
  "to benefit ranking" (``feature_relu``), a no-op after the block's ReLU but kept explicit.

Heads: ``heads={"name": n_outputs, ...}`` adds one linear head per name on the 512-d feature
(AutoNovel's ``head1`` for the labelled classes and ``head2`` for the clustering head; LSD-C's
single clustering head; RotNet's 4-way rotation head). ``forward(x)`` returns ``{name: logits}`` plus
``"features"`` (so a step function sees both through a DDP wrapper);
``features(x)`` returns (B, 512). :func:`freeze_stages` freezes the stem and the first ``n`` stages
(chapters 6 and 7: ``n = 3``, only ``layer4`` and the heads train; chapter 5: ``n = 2``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAGES = ("layer1", "layer2", "layer3", "layer4")


class PadShortcut(nn.Module):
    """Parameter-free shortcut: ``AvgPool2d(stride)`` then zero channels appended up to ``out_ch``.

    (B, C, H, W) -> (B, out_ch, H / stride, W / stride)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"PadShortcut cannot shrink channels ({in_ch} -> {out_ch})")
        self.extra, self.stride = out_ch - in_ch, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = (PadShortcut(in_ch, out_ch, stride) if stride != 1 or in_ch != out_ch
                                    else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet (18 layers with ``blocks=(2, 2, 2, 2)``): images (B, C, H, W) -> {head: logits}.

    ``widths`` scales the stages (64/128/256/512 in the thesis; smaller in smoke tests).
    ``num_features`` is ``widths[-1]``.
    """

    def __init__(self, heads: Mapping[str, int], in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512),
                 blocks: tuple[int, ...] = (2, 2, 2, 2), feature_relu: bool = False) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError(f"CifarResNet has four stages: got widths {widths}, blocks {blocks}")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_ch = widths[0]
        for i, (name, width, n) in enumerate(zip(STAGES, widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(n):
                layers.append(BasicBlock(in_ch, width, stride if b == 0 else 1))
                in_ch = width
            setattr(self, name, nn.Sequential(*layers))
        self.num_features = in_ch
        self.feature_relu = feature_relu
        if "features" in heads:
            raise ValueError("a head cannot be called 'features' (forward returns the feature under that key)")
        self.heads = nn.ModuleDict({name: nn.Linear(in_ch, n) for name, n in heads.items()})

    def features(self, x: Tensor) -> Tensor:
        """The pooled 512-d feature (B, num_features)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return F.relu(out) if self.feature_relu else out

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f = self.features(x)
        return {"features": f, **{name: head(f) for name, head in self.heads.items()}}


def resnet18_cifar(heads: Mapping[str, int] | None = None, in_channels: int = 3, width: int = 64,
                   feature_relu: bool = False) -> CifarResNet:
    """The released code's ResNet-18 (``width`` 64 gives 64/128/256/512 channels, 11.0 M parameters
    without heads); ``heads`` default ``{"logits": 10}``."""
    return CifarResNet(dict(heads or {"logits": 10}), in_channels, (width, 2 * width, 4 * width, 8 * width),
                       (2, 2, 2, 2), feature_relu)


def freeze_stages(model: nn.Module, n: int) -> list[str]:
    """Freeze the stem and the first ``n`` stages of ``model`` (``requires_grad=False``); returns the
    names of the frozen parameters. As in the released code, the BatchNorm layers of the frozen part
    still follow the model's train/eval mode (batch statistics while training).

    Works for :class:`CifarResNet` (stem ``conv1``/``bn1``, stages ``layer1..4``) and for any module
    with a ``stages`` attribute listing its blocks in order (the smoke MLP trunk)."""
    if not 0 <= n <= 4:
        raise ValueError(f"freeze_stages: n must be in 0..4, got {n}")
    modules = _frozen_modules(model, n)
    names = []
    for prefix, module in modules:
        for pname, p in module.named_parameters():
            p.requires_grad_(False)
            names.append(f"{prefix}.{pname}")
    return names


def _frozen_modules(model: nn.Module, n: int) -> list[tuple[str, nn.Module]]:
    if n == 0:
        return []
    if hasattr(model, "stages"):
        stages = list(model.stages)
        if n > len(stages):
            raise ValueError(f"freeze_stages: the model has {len(stages)} stages, asked to freeze {n}")
        return [(f"stages.{i}", stages[i]) for i in range(n)]
    return [("conv1", model.conv1), ("bn1", model.bn1)] + [(s, getattr(model, s)) for s in STAGES[:n]]

