"""The shared backbone choice of Rebuffi ch. 5-7 and the parameter checks the three chapters share."""

import pytest
import torch

from thesislib.config import ConfigError
from thesislib.nn.resnet_cifar import CifarResNet
from thesislib.nn.staged_backbone import check_staged_backbone, staged_backbone
from thesislib.nn.staged_mlp import StagedMLP


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
    net = staged_backbone("mlp", {"c": 4}, mlp_widths=(500, 500, 2000), in_features=2000)
    assert net(torch.zeros(3, 2000))["c"].shape == (3, 4)
    check_staged_backbone("Owner", "mlp", "reuters10k", 0, (500, 500, 2000))
    check_staged_backbone("Owner", "vgg4", "mnist", 3, ())
