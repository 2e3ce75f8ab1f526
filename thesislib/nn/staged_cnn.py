"""Small VGG-style convolutional networks in stages, with the interface of the staged backbones of
Rebuffi chapters 5-7 (``stages``, ``features``, ``heads``, ``num_features``, ``forward(x) -> {head:
logits, "features": f}``; see :mod:`thesislib.nn.staged_mlp`), so that RotNet, stage freezing and the
clustering heads work on them unchanged.

* :func:`vgg6_omniglot` — AutoNovel's OmniGlot network (thesis ch. 6 §4: "a VGG-like network with six
  layers", as DTC / the released ``auto_novel_omniglot.py``): four ``conv3x3 -> BN -> ReLU -> max-pool``
  stages of 64, 128, 256, 256 channels on 1x32x32 inputs, the flattened 256x2x2 = 1024-d feature, and
  two-layer heads ``Linear(1024, 512) -> BN -> ReLU -> Linear(512, n)`` (the fifth and sixth layers).
* :func:`vgg4_mnist` — LSD-C's MNIST network (thesis ch. 7 §4: "a model inspired from VGG-4, described in
  IIC"): IIC's ``ClusterNet6c`` trunk (IIC ``archs/cluster/net6c.py``, ``vgg.py``), stages
  ``conv5x5 (pad 2, no bias) -> BN -> ReLU`` of 64, 128, 256, 512 channels with a max-pool after the first
  three, the flattened feature and linear heads. IIC feeds 24x24 images (a 16-24 random crop resized to 24:
  512x3x3 = 4608-d); here the input is the whole 28x28 digit (28 -> 14 -> 7 -> 3: also 4608-d), a decision
  recorded in :mod:`thesislib.methods.lsdc.config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from thesislib.nn.mlp import mlp


class StagedConvNet(nn.Module):
    """Stages ``Conv2d(k x k, pad k // 2, bias conv_bias) -> BatchNorm2d -> ReLU [-> MaxPool2d(2)]`` (k =
    ``kernel_size``, odd: the size is kept); the feature is the last
    stage's output flattened (B, C·h·w). ``head_hidden`` 0: linear heads; > 0: two-layer heads
    ``Linear(D, head_hidden) -> BN -> ReLU -> Linear(head_hidden, n)`` (:meth:`make_head`).

    (B, in_channels, size, size) -> {"features": (B, D), head: (B, n_head)}."""

    def __init__(self, in_channels: int, widths: Sequence[int], pools: Sequence[bool], heads: Mapping[str, int],
                 size: int, head_hidden: int = 0, kernel_size: int = 3, conv_bias: bool = True) -> None:
        super().__init__()
        if len(widths) != len(pools) or not widths or min(widths) < 1:
            raise ValueError("StagedConvNet needs one pool flag per stage and at least one stage of width >= 1")
        if "features" in heads:
            raise ValueError("a head cannot be called 'features' (forward returns the feature under that key)")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"StagedConvNet: kernel_size {kernel_size} must be odd (padding k // 2 keeps the size)")
        stages, c, s = [], int(in_channels), int(size)
        for w, pool in zip(widths, pools, strict=True):
            layers: list[nn.Module] = [nn.Conv2d(c, int(w), kernel_size, padding=kernel_size // 2, bias=conv_bias),
                                       nn.BatchNorm2d(int(w)),
                                       nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
                s //= 2
            stages.append(nn.Sequential(*layers))
            c = int(w)
        if s < 1:
            raise ValueError(f"StagedConvNet: input size {size} is too small for {sum(pools)} poolings")
        self.stages = nn.ModuleList(stages)
        self.input_size = int(size)
        self.num_features = c * s * s
        self.head_hidden = int(head_hidden)
        self.heads = nn.ModuleDict({name: self.make_head(n) for name, n in heads.items()})

    def make_head(self, n: int) -> nn.Module:
        """A new head of ``n`` outputs on the feature (linear, or two-layer with ``head_hidden``)."""
        if self.head_hidden > 0:
            return mlp(self.num_features, n, hidden=(self.head_hidden,), batch_norm=True)
        return nn.Linear(self.num_features, n)

    def features(self, x: Tensor) -> Tensor:
        """The flattened output of the last stage (B, num_features)."""
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(x, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f = self.features(x)
        return {"features": f, **{name: head(f) for name, head in self.heads.items()}}


def vgg6_omniglot(heads: Mapping[str, int], size: int = 32) -> StagedConvNet:
    """AutoNovel / DTC's six-layer VGG for 1-channel OmniGlot (module docstring): 1024-d feature at 32x32."""
    return StagedConvNet(1, (64, 128, 256, 256), (True, True, True, True), heads, size, head_hidden=512)


def vgg4_mnist(heads: Mapping[str, int], size: int = 28) -> StagedConvNet:
    """LSD-C's VGG-4-like MNIST network, IIC's ClusterNet6c trunk (module docstring: 5x5 convolutions, pad 2,
    no bias): 4608-d feature at 28x28."""
    return StagedConvNet(1, (64, 128, 256, 512), (True, True, True, False), heads, size, kernel_size=5,
                         conv_bias=False)
