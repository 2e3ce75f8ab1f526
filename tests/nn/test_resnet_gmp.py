"""ResNet trunk + global max pooling head: shapes, input-size agnosticism, local weights loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from thesislib.nn import ResNetGMP, WeightsNotFoundError, resnet_gmp


def test_shapes_zero_bias_and_any_input_size():
    torch.manual_seed(0)
    model = resnet_gmp(20, arch="resnet18").eval()
    assert torch.equal(model.fc.bias, torch.zeros(20))
    for size in ((64, 64), (96, 80), (33, 47)):
        x = torch.randn(2, 3, *size)
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (2, 20) and feats.shape == (2, 512)
        assert torch.allclose(model.fc(feats), logits, atol=1e-6)


def test_pooling_is_global_max():
    torch.manual_seed(1)
    model = resnet_gmp(4, arch="resnet18").eval()
    x = torch.randn(1, 3, 64, 64)
    trunk = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                                model.layer1, model.layer2, model.layer3, model.layer4)
    fmap = trunk(x)
    assert torch.allclose(model.features(x), fmap.amax(dim=(2, 3)), atol=1e-6)


def test_resnet101_parameter_count():
    with torch.device("meta"):
        model = ResNetGMP(160)                       # COCO: 2 x 80 outputs
        reference = torchvision.models.resnet101(weights=None)
    count = sum(p.numel() for p in model.parameters())
    ref_count = sum(p.numel() for p in reference.parameters())
    assert model.num_features == 2048
    assert ref_count == 44_549_160                   # torchvision ResNet-101 with its 1000-way fc
    assert count == ref_count - (2048 * 1000 + 1000) + (2048 * 160 + 160) == 42_828_000


def test_weights_file_round_trip_resnet101(tmp_path):
    torch.manual_seed(2)
    source = torchvision.models.resnet101(weights=None)
    path = tmp_path / "resnet101-63fe2227.pth"
    torch.save(source.state_dict(), path)
    model = ResNetGMP(160, weights_path=path)
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            continue
        assert torch.equal(loaded[key], value), key
    assert model.fc.weight.shape == (160, 2048) and torch.equal(model.fc.bias, torch.zeros(160))


def test_checkpoint_wrappers_and_prefixes(tmp_path):
    torch.manual_seed(3)
    source = torchvision.models.resnet18(weights=None)
    wrapped = {"state_dict": {"module." + k: v for k, v in source.state_dict().items()}, "epoch": 3}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    model = resnet_gmp(6, arch="resnet18", weights_path=path)
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "resnet101.pth"
    with pytest.raises(WeightsNotFoundError) as err:
        resnet_gmp(10, weights_path=missing)
    message = str(err.value)
    assert str(missing) in message and "resnet101-63fe2227.pth" in message and "never downloads" in message
    assert isinstance(err.value, FileNotFoundError)


def test_mismatched_or_corrupt_file_is_reported(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="does not match the resnet34 trunk: missing"):
        resnet_gmp(4, arch="resnet34", weights_path=path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights file"):
        resnet_gmp(4, arch="resnet18", weights_path=bad)
    with pytest.raises(ValueError, match="unknown arch"):
        resnet_gmp(4, arch="resnet7")


def test_pre_0_4_1_files_without_num_batches_tracked_load(tmp_path):
    """torchvision's V1 ResNet files predate BatchNorm's num_batches_tracked; they must load."""
    torch.manual_seed(4)
    source = torchvision.models.resnet18(weights=None)
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(old, path)
    model = resnet_gmp(5, arch="resnet18", weights_path=path)
    assert torch.equal(model.layer3[0].bn1.running_var, source.layer3[0].bn1.running_var)
