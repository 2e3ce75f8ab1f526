"""CAM classifiers (Zhou et al. 2016) and input-gradient saliency (Simonyan et al. 2014)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from thesislib.nn import (
    CAMClassifier,
    WeightsNotFoundError,
    build_backbone,
    cam_smallnet,
    cam_vgg16,
    input_gradient_saliency,
)
from thesislib.nn.cam import class_sum
from thesislib.nn.vgg import VGG16_CONVS


def test_cam_by_hand():
    model = CAMClassifier(nn.Identity(), feat_channels=2, num_classes=2)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        model.fc.bias.copy_(torch.tensor([0.25, -1.0]))
    f = torch.tensor([[[[1.0, 0.0], [2.0, 4.0]], [[0.0, 3.0], [1.0, 0.0]]]])     # (1, 2, 2, 2)
    cams = model.cams(f)
    assert torch.equal(cams[0, 0], torch.tensor([[1.0, 6.0], [4.0, 4.0]]))
    assert torch.equal(cams[0, 1], torch.tensor([[-1.0, 1.5], [-1.5, -4.0]]))
    assert torch.allclose(model(f), torch.tensor([[15 / 4 + 0.25, -5 / 4 - 1.0]]))


def test_gap_of_cam_plus_bias_is_the_logits_exactly():
    torch.manual_seed(0)
    model = cam_smallnet(num_classes=4).double().eval()
    with torch.no_grad():
        model.fc.bias.normal_()
    x = torch.rand(5, 3, 32, 32, dtype=torch.float64)
    logits, cams = model.forward_with_cams(x)
    assert cams.shape == (5, 4, 16, 16)                               # feature stride 2
    assert torch.allclose(cams.mean(dim=(2, 3)) + model.fc.bias, logits, rtol=0, atol=1e-12)
    assert torch.allclose(model(x), logits, rtol=0, atol=1e-12)
    assert torch.allclose(model.cams(x), cams, rtol=0, atol=1e-12)
    assert (model.features(x) >= 0).all()


def test_vgg_gap_shapes_and_identity():
    torch.manual_seed(1)
    with torch.device("meta"):
        big = cam_vgg16(num_classes=1000)
        assert big.cams(torch.empty(1, 3, 224, 224)).shape == (1, 1000, 14, 14)
        assert big.trunk_features(torch.empty(1, 3, 224, 224)).shape == (1, 512, 14, 14)
    model = build_backbone("cam_vgg16", num_classes=20).eval()
    assert model.num_features == 1024 and model.fc.weight.shape == (20, 1024)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, cams = model.forward_with_cams(x)
        assert model.features(x).shape == (2, 1024, 4, 4) and (model.features(x) >= 0).all()
    assert torch.allclose(cams.mean(dim=(2, 3)) + model.fc.bias, logits, atol=1e-5)


def test_vgg_trunk_loads_torchvision_weights_and_matches_torchvision(tmp_path):
    torch.manual_seed(2)
    reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])  # vgg16.features
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)                        # ignored
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    model = cam_vgg16(num_classes=3, weights_path=path).eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model.trunk_features(x), reference[:30](x))     # up to conv5_3 + ReLU
    assert len([m for m in model.trunk if isinstance(m, nn.Conv2d)]) == len(VGG16_CONVS)
    with pytest.raises(WeightsNotFoundError, match="vgg16-397923af.pth"):
        cam_vgg16(num_classes=3, weights_path=tmp_path / "missing.pth")


def test_saliency_of_a_linear_model_by_hand():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 5, 2))
    x = torch.randn(2, 3, 4, 5)
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    sal = input_gradient_saliency(model, x, class_sum(labels))
    w = model[1].weight.detach().view(2, 3, 4, 5)
    assert sal.shape == (2, 4, 5)
    assert torch.allclose(sal[0], w[0].abs().amax(dim=0))
    assert torch.allclose(sal[1], (w[0] + w[1]).abs().amax(dim=0))
    assert all(p.grad is None for p in model.parameters())


class _Masked(nn.Module):
    """Sees only the left half of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.net = cam_smallnet(num_classes=3)

    def forward(self, x):
        keep = torch.zeros_like(x)
        keep[..., : x.shape[-1] // 2] = 1.0
        return self.net(x * keep)


def test_saliency_is_zero_where_the_input_has_no_influence_and_batched_equals_single():
    torch.manual_seed(4)
    model = _Masked().train()
    x = torch.rand(3, 3, 32, 32)
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 1, 1]])
    sal = input_gradient_saliency(model, x, class_sum(labels))
    assert model.training                                                # mode restored
    assert (sal[..., 16:] == 0).all() and (sal[..., :16] > 0).float().mean() > 0.9
    for i in range(3):
        single = input_gradient_saliency(model, x[i:i + 1], class_sum(labels[i:i + 1]))
        assert torch.allclose(single[0], sal[i], atol=1e-6)
    with pytest.raises(ValueError, match="one score per image"):
        input_gradient_saliency(model, x, lambda logits: logits)


def test_cams_under_bf16_autocast():
    torch.manual_seed(5)
    model = cam_smallnet(num_classes=4).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        logits, cams = model.forward_with_cams(x)
    assert cams.shape == (2, 4, 16, 16)
    assert torch.allclose(cams.float().mean(dim=(2, 3)) + model.fc.bias, logits.float(), atol=0.05)
