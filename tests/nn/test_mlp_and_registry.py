"""MLP smoke backbone and the backbone registry."""

from __future__ import annotations

import pytest
import torch

from thesislib.config import ConfigError
from thesislib.nn import MLP, ResNetGMP, WideResNet, available_backbones, build_backbone, mlp, register_backbone


def test_mlp_shapes_and_parameter_count():
    model = mlp(64, 10, hidden=(128, 64))
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)           # images are flattened
    assert model.features(torch.randn(5, 64)).shape == (5, 64) and model.num_features == 64
    # 64*128 + 128 + 128*64 + 64 + 64*10 + 10
    assert sum(p.numel() for p in model.parameters()) == 17_226


@pytest.mark.parametrize("dropout,batch_norm", [(0.0, False), (0.5, False), (0.2, True)])
def test_features_are_the_penultimate_activation(dropout, batch_norm):
    torch.manual_seed(0)
    model = MLP(16, 3, hidden=(32, 8), dropout=dropout, batch_norm=batch_norm)
    x = torch.randn(12, 16)
    model.eval()
    feats = model.features(x)
    assert torch.allclose(model.head(feats), model(x), atol=1e-6)
    assert (feats >= 0).all()                                         # after the last ReLU
    model.train()                                                     # same dropout masks -> same identity
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    assert torch.allclose(model.head(model.features(x)), out, atol=1e-6)


def test_mlp_bad_arguments():
    with pytest.raises(ValueError):
        MLP(16, 3, hidden=())
    with pytest.raises(ValueError):
        MLP(16, 3, dropout=1.0)


def test_registry_builds_each_backbone():
    assert {"mlp", "wrn", "resnet_gmp"} <= set(available_backbones())
    assert isinstance(build_backbone("mlp", in_features=64, num_outputs=10), MLP)
    assert isinstance(build_backbone("wrn", depth=10, widen=1, num_classes=10, dropout=0.1), WideResNet)
    with torch.device("meta"):
        assert isinstance(build_backbone("resnet_gmp", num_outputs=160), ResNetGMP)


def test_registry_rejects_unknown_names_and_arguments():
    with pytest.raises(ConfigError, match="unknown backbone 'vgg99'; valid names are: .*mlp.*wrn"):
        build_backbone("vgg99")
    with pytest.raises(ConfigError, match="'widht'.*valid names are"):
        build_backbone("wrn", depth=10, widht=1, num_classes=10)
    with pytest.raises(ConfigError, match="needs: widen"):
        build_backbone("wrn", depth=10, num_classes=10)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("mlp", mlp)
