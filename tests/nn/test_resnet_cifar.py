"""The CIFAR ResNet-18 of Rebuffi ch. 5-7, the staged MLP and stage freezing."""

import pytest
import torch

from thesislib.nn.resnet_cifar import BasicBlock, PadShortcut, freeze_stages, resnet18_cifar
from thesislib.nn.staged_mlp import StagedMLP


def test_pad_shortcut_is_avgpool_plus_zero_channels():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = PadShortcut(1, 3, 2)(x)
    assert out.shape == (1, 3, 2, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert out[0, 1:].abs().sum() == 0


def test_resnet18_cifar_shapes_and_structure():
    m = resnet18_cifar({"cluster": 10, "rotation": 4}, width=8)
    out = m(torch.randn(2, 3, 32, 32))
    assert out["features"].shape == (2, 64) and out["cluster"].shape == (2, 10) and out["rotation"].shape == (2, 4)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert not any(isinstance(x, torch.nn.MaxPool2d) for x in m.modules())
    # downsampling shortcuts carry no parameters (no 1x1 projection)
    for block in m.modules():
        if isinstance(block, BasicBlock) and isinstance(block.shortcut, PadShortcut):
            assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    # 96x96 (STL-10) works too, thanks to the adaptive pooling
    assert m(torch.randn(1, 3, 96, 96))["features"].shape == (1, 64)


def test_full_width_parameter_count():
    m = resnet18_cifar({"logits": 10})
    trunk = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("heads"))
    assert trunk == 10_995_008     # torchvision's ResNet-18 trunk minus its 3 projection shortcuts, 3x3 stem


def test_freeze_stages_resnet_and_mlp():
    m = resnet18_cifar({"c": 3}, width=4)
    names = freeze_stages(m, 3)
    assert names and all(n.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3") for n in names)
    assert all(p.requires_grad for p in m.layer4.parameters()) and all(p.requires_grad for p in m.heads.parameters())
    mlp = StagedMLP(64, (8, 8, 4), {"c": 2})
    freeze_stages(mlp, 2)
    assert [all(not p.requires_grad for p in s.parameters()) for s in mlp.stages] == [True, True, False]
    with pytest.raises(ValueError, match="stages"):
        freeze_stages(mlp, 4)


def test_head_name_features_is_reserved():
    with pytest.raises(ValueError, match="features"):
        StagedMLP(4, (4,), {"features": 2})
