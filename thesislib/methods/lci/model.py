"""The chapter's networks: the inpainter F, the patch discriminator D, the transformation classifier C, and
the two diagnostic networks (a bag-of-local-patches net and a global CNN).

* F (:class:`Inpainter`): encoder-decoder on a patch (B, C, p, p) -> (B, C, p, p): a 3x3 conv, two 4x4
  stride-2 convs (width w, 2w, 4w), two resize-convolutions back up (:class:`thesislib.nn.ResizeConv2d`), a
  3x3 conv and tanh; BatchNorm and leaky ReLU (slope 0.1) between ([code]: 4 layers, base width 48).
* D (:class:`PatchDiscriminator`): spectrally normalised convs (3x3, 4x4/2, 4x4/2), leaky ReLU 0.1, sum-pooling
  over positions and a spectrally normalised linear score; its input is (patch, erased patch) concatenated
  along channels (B, 2C, p, p) -> (B,) ([code]).
* C (:func:`build_classifier`): :func:`thesislib.nn.alexnet.lci_classifier` (BN on every layer but the last,
  no LRN, two groups, no pool5, SAME padding), (1 + 3·rot + warp + lci)-way; with ``classifier: resnet34``
  (Table 4.7) :class:`thesislib.nn.resnet.SmallInputResNet` (torchvision's ResNet-34, 3x3 stride-1 stem, no
  max-pool), the same number of outputs; its probe layers are layer1..layer4.
* :class:`LocalNet`: 3x3 convs up to a receptive field of 5 or 7 px, a 1x1 conv, global average pooling, linear:
  it sees the image only as a bag of small patches (its one access to position is the zero padding at the border).
* :class:`GlobalNet`: four 3x3 convs with three 2x2 max-pools between (receptive field 38 px), global average
  pooling, linear.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from thesislib.methods.lci.config import LCIParams, class_names
from thesislib.nn.alexnet import AlexNet, lci_classifier
from thesislib.nn.gan import spectral_normalize
from thesislib.nn.resize_conv import ResizeConv2d
from thesislib.nn.resnet import SmallInputResNet

__all__ = ["GlobalNet", "Inpainter", "LocalNet", "PatchDiscriminator", "build_classifier"]

SLOPE = 0.1


def _block(conv: nn.Module, channels: int, norm: bool = True) -> list[nn.Module]:
    return [conv, *([nn.BatchNorm2d(channels)] if norm else []), nn.LeakyReLU(SLOPE, inplace=True)]


class Inpainter(nn.Module):
    """F: (B, C, p, p) in [-1, 1] -> (B, C, p, p) in (-1, 1); p a multiple of 4."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        w = int(width)
        self.net = nn.Sequential(
            *_block(nn.Conv2d(in_channels, w, 3, 1, 1), w),
            *_block(nn.Conv2d(w, 2 * w, 4, 2, 1), 2 * w),
            *_block(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), 4 * w),
            *_block(ResizeConv2d(4 * w, 2 * w), 2 * w),
            *_block(ResizeConv2d(2 * w, w), w),
            nn.Conv2d(w, in_channels, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"Inpainter: patch side must be a multiple of 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """D: (patch, erased patch) (B, C, p, p) each -> scores (B,) (raw, for the hinge loss)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        w = int(width)
        self.features = nn.Sequential(
            *_block(nn.Conv2d(2 * in_channels, w, 3, 1, 1), w, norm=False),
            *_block(nn.Conv2d(w, 2 * w, 4, 2, 1), 2 * w, norm=False),
            *_block(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), 4 * w, norm=False))
        self.score = nn.Linear(4 * w, 1)
        spectral_normalize(self)

    def forward(self, patch: Tensor, erased: Tensor) -> Tensor:
        h = self.features(torch.cat([patch, erased], dim=1))
        return self.score(h.sum(dim=(2, 3))).squeeze(1)


def build_classifier(params: LCIParams) -> AlexNet | SmallInputResNet:
    """C for ``params``: the ch. 4 AlexNet (``classifier: alexnet``) or the small-input ResNet-34 (``resnet34``,
    Table 4.7), one output per class of ``class_names(params.transforms)``: images (B, C, S, S) -> (B, K)."""
    n = len(class_names(params.transforms))
    if params.classifier == "resnet34":
        return SmallInputResNet(n, "resnet34", in_channels=params.in_channels)
    return lci_classifier(num_classes=n, width=params.classifier_width, conv1_kernel=params.conv1_kernel,
                          conv1_stride=params.conv1_stride, in_channels=params.in_channels,
                          fc_dims=(params.fc_dim, params.fc_dim), input_size=params.image_size)


class LocalNet(nn.Module):
    """Bag of local patches: (B, C, S, S) -> logits (B, classes); every logit is a mean over positions of a
    function of one ``receptive_field`` x ``receptive_field`` patch ((rf − 1) / 2 3x3 convs, a 1x1 conv, global
    average pooling, linear)."""

    def __init__(self, in_channels: int, width: int, classes: int, receptive_field: int = 5) -> None:
        super().__init__()
        if receptive_field < 3 or receptive_field % 2 == 0:
            raise ValueError(f"LocalNet: receptive_field must be odd and >= 3, got {receptive_field}")
        self.receptive_field = int(receptive_field)
        w = int(width)
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range((self.receptive_field - 1) // 2):
            layers += [nn.Conv2d(cin, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.net = nn.Sequential(*layers, nn.Conv2d(w, 4 * w, 1), nn.ReLU(inplace=True))
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.net(x).mean(dim=(2, 3)))


class GlobalNet(nn.Module):
    """A normal small CNN: (B, C, S, S) -> logits (B, classes), receptive field 38 px."""

    receptive_field = 38

    def __init__(self, in_channels: int, width: int, classes: int) -> None:
        super().__init__()
        w = int(width)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate((w, 2 * w, 2 * w, 4 * w)):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.net(x).mean(dim=(2, 3)))
