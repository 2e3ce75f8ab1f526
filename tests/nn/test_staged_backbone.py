"""The shared backbone choice of Rebuffi ch. 5-7 and the parameter checks the three chapters share."""

import pytest
import torch
import torchvision

from thesislib.config import ConfigError
from thesislib.nn.resnet import StagedResNet
from thesislib.nn.resnet_cifar import CifarResNet, freeze_stages
from thesislib.nn.staged_backbone import check_staged_backbone, staged_backbone
from thesislib.nn.staged_mlp import StagedMLP
from thesislib.nn.weights import WeightsNotFoundError


def test_builds_the_named_network_with_its_heads() -> None:
    mlp = staged_backbone("mlp", {"rotation": 4}, mlp_widths=(32, 16))
    assert isinstance(mlp, StagedMLP) and mlp(torch.zeros(2, 1, 8, 8))["rotation"].shape == (2, 4)
    net = staged_backbone("resnet18", {"a": 3, "b": 5}, resnet_width=4, feature_relu=True)
    out = net(torch.zeros(2, 3, 32, 32))
    assert isinstance(net, CifarResNet) and net.feature_relu and out["a"].shape == (2, 3) and out["b"].shape == (2, 5)
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'"):
        staged_backbone("vgg", {"a": 2})


@pytest.mark.parametrize(("backbone", "data", "frozen", "message"), [
    ("mlp", "digits", 2, "frozen_stages 2 leaves none of the 2 MLP stages"),
    ("mlp", "cifar10", 0, "MLP backbone is for vector data .*use resnet18"),
    ("mlp", "omniglot", 0, "MLP backbone is for vector data .*use vgg6"),
    ("resnet18", "digits", 0, "resnet18 needs image data"),
    ("resnet18", "mnist", 0, "resnet18 needs image data"),
    ("vgg6", "cifar10", 0, "vgg6 backbone is for omniglot"),
    ("vgg4", "omniglot", 0, "vgg4 backbone is for mnist"),
])
def test_checks_name_the_owner_and_the_problem(backbone: str, data: str, frozen: int, message: str) -> None:
    with pytest.raises(ConfigError, match=f"Owner: .*{message}"):
        check_staged_backbone("Owner", backbone, data, frozen, (32, 16))
    check_staged_backbone("Owner", "mlp", "digits", 1, (32, 16))
    check_staged_backbone("Owner", "resnet18", "cifar10", 3, ())


def test_vgg_backbones_and_vector_mlp() -> None:
    net = staged_backbone("vgg6", {"head1": 7})
    out = net(torch.zeros(2, 1, 32, 32))
    assert out["features"].shape == (2, 1024) and out["head1"].shape == (2, 7) and len(net.stages) == 4
    # the OmniGlot heads are two-layer (layers 5 and 6 of VGG-6), and so are heads added later
    assert net.heads["head1"].body[0].out_features == 512
    assert net.make_head(3)(torch.zeros(2, 1024)).shape == (2, 3)
    net = staged_backbone("vgg4", {"c": 10})
    assert net(torch.zeros(2, 1, 28, 28))["features"].shape == (2, 512 * 3 * 3)
    # IIC's ClusterNet6c trunk: 5x5 convolutions, pad 2, no bias, 64-M-128-M-256-M-512
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(64, 1, 5, 5), (128, 64, 5, 5), (256, 128, 5, 5),
                                                      (512, 256, 5, 5)]
    assert all(c.bias is None and c.padding == (2, 2) for c in convs)
    net = staged_backbone("mlp", {"c": 4}, mlp_widths=(500, 500, 2000), in_features=2000)
    assert net(torch.zeros(3, 2000))["c"].shape == (3, 4)
    check_staged_backbone("Owner", "mlp", "reuters10k", 0, (500, 500, 2000))
    check_staged_backbone("Owner", "vgg4", "mnist", 3, ())

def test_imagenet_resnet18_loads_torchvision_weights_and_freezes_its_stages(tmp_path) -> None:
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), path)
    net = staged_backbone("resnet18_imagenet", {"cls": 7}, weights_path=str(path))
    assert isinstance(net, StagedResNet) and net.num_features == 512
    assert torch.equal(net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    reference.eval()
    net.eval()
    x = torch.rand(2, 3, 64, 64)
    trunk = torch.nn.Sequential(*list(reference.children())[:-1])
    torch.testing.assert_close(net(x)["features"], torch.flatten(trunk(x), 1))     # torchvision's own pooled feature
    assert net(x)["cls"].shape == (2, 7)
    frozen = freeze_stages(net, 2)
    assert frozen[0].startswith("conv1")
    assert all(n.split(".")[0] in ("conv1", "bn1", "layer1", "layer2") for n in frozen)
    assert all(p.requires_grad for n, p in net.named_parameters() if n.startswith(("layer3", "layer4", "heads")))
    with pytest.raises(WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        staged_backbone("resnet18_imagenet", {"cls": 7}, weights_path=str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="resnet18_imagenet needs image data"):
        check_staged_backbone("Owner", "resnet18_imagenet", "digits", 2, ())
