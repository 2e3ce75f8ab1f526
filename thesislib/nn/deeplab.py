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

The convolutions come from the shared VGG16 table (:mod:`thesislib.nn.vgg`). ImageNet
initialisation comes from a LOCAL torchvision ``vgg16`` state dict only (torchvision's file is
``vgg16-397923af.pth``), converted by :func:`~thesislib.nn.vgg.convert_vgg16_state_dict` the way DeepLab
built ``vgg16_20M`` from the fully connected VGG16: the 13 convolutions are copied (torchvision
``features.{0,2,5,...,28}`` -> ``conv1_1 ... conv5_3``); fc6's 4096 x 25088 matrix is viewed as
a 4096 x 512 x 7 x 7 convolution and subsampled to every 4th output channel and every 3rd
spatial tap (rows and columns 0, 3, 6), giving 1024 x 512 x 3 x 3 (the dilation of 12 makes the
3 taps span the same 25 pixels of the stride-8 map as 7 taps x 4 did); fc7's 4096 x 4096
becomes 1024 x 1024 x 1 x 1 by keeping every 4th input and output unit; biases keep every 4th
entry. fc8 is always new. The parameter count is 20.5 M (hence the name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from thesislib.nn.vgg import check_vgg16_file, he_init_, load_vgg16_weights, vgg16_layers


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

        def pool(block: int) -> nn.Module:
            stride = 2 if block <= 3 else 1
            return nn.MaxPool2d(3, stride=stride, padding=1, ceil_mode=True)

        layers = vgg16_layers(pool, dilation=lambda block: 2 if block == 5 else 1)
        for name, module in layers.items():
            setattr(self, name, module)
        self.pool5a = nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=12, dilation=12)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.fc8 = nn.Conv2d(1024, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)  # element-wise, as Caffe's
        self._plan = [*layers, "pool5a"]
        he_init_(self)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)
        if weights_path is not None:
            new = load_vgg16_weights(self, weights_path)
            if new != ["fc8.bias", "fc8.weight"]:
                raise RuntimeError(f"VGG16 conversion does not match the model: left new {new}")

    def features(self, x: Tensor) -> Tensor:
        """fc7 activations (B, 1024, h, w)."""
        for name in self._plan:
            x = getattr(self, name)(x)
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
