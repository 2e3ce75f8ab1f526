"""AlexNet variants (Jenni ch. 3-4): layer shapes, padding rules, groups, normalisation switches."""

import pytest
import torch
from torch import nn

from thesislib.config import ConfigError
from thesislib.nn import build_backbone
from thesislib.nn.alexnet import (
    AlexNet,
    SamePad2d,
    alexnet,
    lci_classifier,
    scaled,
    spot_artifacts_discriminator_trunk,
)


def _shapes(model: AlexNet, size: int) -> dict[str, tuple[int, ...]]:
    model.eval()
    with torch.no_grad():
        return {k: tuple(v.shape[1:]) for k, v in model.conv_layers(torch.zeros(1, 3, size, size)).items()}


def test_caffe_alexnet_shapes_at_227():
    m = alexnet(num_classes=1000, fc_dims=(64, 64))
    assert _shapes(m, 227) == {"conv1": (96, 55, 55), "conv2": (256, 27, 27), "conv3": (384, 13, 13),
                               "conv4": (384, 13, 13), "conv5": (256, 13, 13)}
    assert m.trunk_features == 256 * 6 * 6  # pool5 -> 6x6
    assert m(torch.zeros(2, 3, 227, 227)).shape == (2, 1000)


def test_same_padding_gives_ceil_division():
    m = lci_classifier(width=0.25, fc_dims=(32,), input_size=96)
    shapes = _shapes(m, 96)
    assert [s[1] for s in shapes.values()] == [24, 12, 6, 6, 6]
    ch3 = spot_artifacts_discriminator_trunk(width=0.25, input_size=128)
    assert _shapes(ch3, 128)["conv5"][1:] == (8, 8)  # the 8x8 grid of the drop mask
    pad = SamePad2d(3, 2)
    assert pad(torch.zeros(1, 1, 5, 5)).shape[-1] == 5 + 2 and SamePad2d.amount(6, 3, 2) == (0, 1)


def test_grouped_convs_have_two_groups_and_width_scales_channels():
    m = alexnet(width=0.5, fc_dims=())
    assert [b[0].groups if isinstance(b[0], nn.Conv2d) else b[1].groups for b in m.conv_modules()] == [1, 2, 1, 2, 2]
    assert m.channels == (48, 128, 192, 192, 128)
    assert scaled(96, 0.01, 2) == 2
    # group 1 of conv2's output does not see group 2 of its input
    conv2 = m.conv2[0]
    assert conv2.weight.shape[1] == m.channels[0] // 2


def test_norm_switches():
    lrn = alexnet(width=0.25, fc_dims=())
    assert sum(isinstance(x, nn.LocalResponseNorm) for x in lrn.modules()) == 2
    assert not any(isinstance(x, nn.BatchNorm2d) for x in lrn.modules())
    ch3 = spot_artifacts_discriminator_trunk(width=0.25)
    assert [type(x) for x in ch3.conv5 if isinstance(x, nn.BatchNorm2d)] == [nn.BatchNorm2d]
    assert sum(isinstance(x, nn.BatchNorm2d) for x in ch3.modules()) == 1
    bn = lci_classifier(width=0.25, fc_dims=(16, 16), input_size=64)
    assert sum(isinstance(x, nn.BatchNorm2d) for x in bn.modules()) == 5
    assert sum(isinstance(x, nn.BatchNorm1d) for x in bn.modules()) == 2  # not after the classifier
    assert not any(isinstance(x, nn.LocalResponseNorm) for x in bn.modules())


def test_small_stem_and_features_and_registry():
    m = build_backbone("alexnet", num_classes=10, width=0.125, padding="same", conv1_kernel=5, conv1_stride=1,
                       input_size=32, fc_dims=(64,), pool5=False)
    x = torch.randn(4, 3, 32, 32)
    assert m.features(x).shape == (4, m.num_features) and m(x).shape == (4, 10)
    assert _shapes(m, 32)["conv5"][1:] == (8, 8)
    with pytest.raises(ConfigError, match="nope"):
        build_backbone("alexnet", nope=1)
    with pytest.raises(ValueError, match="norm"):
        AlexNet(norm="gn")  # type: ignore[arg-type]


def test_conv_layers_upto_stops_early():
    m = alexnet(width=0.125, fc_dims=())
    out = m.conv_layers(torch.zeros(1, 3, 67, 67), upto="conv2")
    assert list(out) == ["conv1", "conv2"]
