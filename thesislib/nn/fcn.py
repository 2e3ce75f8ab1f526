"""A small fully convolutional segmentation network for CPU smoke runs of SEC (study note 1.6(a)).

It plays DeepLab-LargeFOV's role on 32x32 procedural scenes: stride 2 instead of 8 (a 16x16
score map instead of 41x41) and, like LargeFOV, a field of view larger than the image, reached
with dilated convolutions instead of pooling:

==========  =====================================  ======  ======================
layer       operation                              stride  receptive field (px)
==========  =====================================  ======  ======================
conv1       3x3 conv, width, BN, ReLU              1       3
conv2       3x3 conv stride 2, width, BN, ReLU     2       5
conv3       3x3 conv dilation 2, width, BN, ReLU   2       13
conv4       3x3 conv dilation 4, width, BN, ReLU   2       29
conv5       3x3 conv dilation 8, width, BN, ReLU   2       61
classifier  dropout, 1x1 conv to num_classes       2       61
==========  =====================================  ======  ======================

Field of view: 61x61 input pixels per output location (each dilated layer adds 2 x dilation x
stride 2), contiguous (no holes), so every output cell of a 32x32 image sees the whole image.
At the default width 24, a forward and backward pass of a batch of 32 images of 32x32 takes
50-90 ms on one thread of the 2-core CI machine (width 16: about 45 ms; channels_last input
saves another 20-30%).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.nn.deeplab import caffe_param_groups

FIELD_OF_VIEW = 61


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation,
                                   bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallFCN(nn.Module):
    """images (B, in_channels, H, W) -> class scores (B, num_classes, ceil(H/2), ceil(W/2)).

    ``features(x)`` gives the last ReLU activations (B, width, H/2, W/2) (``num_features`` =
    width). The classifier starts at N(0, 0.01^2) weights and zero bias, as DeepLab's fc8.
    """

    output_stride = 2
    field_of_view = FIELD_OF_VIEW

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 24, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_features = width
        self.body = nn.Sequential(
            _block(in_channels, width), _block(width, width, stride=2),
            _block(width, width, dilation=2), _block(width, width, dilation=4),
            _block(width, width, dilation=8),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        for module in self.body.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.body(x)))

    def param_groups(self, lr: float, weight_decay: float, head_lr_mult: float = 1.0) -> list[dict[str, Any]]:
        """See :func:`param_groups`."""
        return param_groups(self, lr, weight_decay, head_lr_mult)


def small_fcn(num_classes: int, in_channels: int = 3, width: int = 24, dropout: float = 0.1) -> SmallFCN:
    """Build :class:`SmallFCN` (registered as backbone ``"small_fcn"``)."""
    return SmallFCN(num_classes, in_channels, width, dropout)


def param_groups(model: SmallFCN, lr: float, weight_decay: float,
                 head_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """Groups in the same format as :func:`thesislib.nn.deeplab.param_groups`: conv weights lr
    with decay; BN scales/shifts and biases lr, no decay; the classifier ``head_lr_mult`` x lr
    (weights with decay, bias without). The net trains from scratch, so the default keeps one
    learning rate; pass ``head_lr_mult=10`` to mimic SEC's fc8 multiplier."""
    return caffe_param_groups(model, lr, weight_decay, head="classifier", head_lr_mult=head_lr_mult,
                              bias_lr_mult=1.0)


class BackboneFCN(nn.Module):
    """An FCN-32s-style segmentation net on a transferred conv backbone: images (B, C, H, W) -> scores
    (B, num_classes, H, W).

    ``backbone`` maps images to one conv map (B, C5, H/s, W/s) (e.g. AlexNet conv1-5 through
    :class:`thesislib.eval.transfer.ConvFeatures`); on top, like FCN's convolutionalised fc6 / fc7:
    ``hidden`` convs (the first ``kernel`` x ``kernel`` with SAME padding, then 1x1), each ReLU and
    dropout ``dropout``, then a 1x1 score layer (N(0, 0.01²) weights, zero bias, as :class:`SmallFCN`'s
    classifier), upsampled bilinearly to the input size. Differences to Long et al.'s FCN-32s (the
    papers' protocol): the upsampling is fixed bilinear, not a learned deconvolution initialised
    bilinear; fc6 is a ``kernel`` x ``kernel`` conv (FCN: 6x6 on pool5; the backbone here ends at conv5,
    without pool5), and the input is not padded by 100 pixels (SAME padding keeps the map aligned).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, in_channels: int = 3,
                 hidden: tuple[int, ...] = (4096, 4096), kernel: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = backbone
        was = backbone.training
        backbone.eval()
        with torch.no_grad():
            c5 = int(backbone(torch.zeros(1, in_channels, 64, 64)).shape[1])
        backbone.train(was)
        layers: list[nn.Module] = []
        prev = c5
        for i, width in enumerate(hidden):
            k = kernel if i == 0 else 1
            layers += [nn.Conv2d(prev, width, k, padding=k // 2), nn.ReLU(inplace=True), nn.Dropout2d(dropout)]
            prev = width
        self.head = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(prev, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def new_layers(self) -> list[nn.Conv2d]:
        """The randomly initialised layers (the head's convs and the score layer), in network order."""
        return [m for m in self.head if isinstance(m, nn.Conv2d)] + [self.classifier]

    def forward(self, x: Tensor) -> Tensor:
        scores = self.classifier(self.head(self.backbone(x)))
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
