"""Shared weight loading (nn/weights.py) and the one VGG16 table and key map (nn/vgg.py)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from thesislib.methods.sec.localization import sec_cam_vgg16
from thesislib.nn import DeepLabLargeFOV, WeightsFileError, WeightsNotFoundError, cam_vgg16
from thesislib.nn.vgg import VGG16_CONVS, VGG16_KEY_MAP, load_vgg16_weights, to_torchvision_keys, vgg16_conv_weights
from thesislib.nn.weights import read_state_dict, unwrap_state_dict


@pytest.fixture(scope="module")
def vgg16_state():
    torch.manual_seed(0)
    return torchvision.models.vgg16(weights=None).state_dict()       # random init, no download


def test_key_map_round_trip_on_torchvision_vgg16(vgg16_state):
    convs = vgg16_conv_weights(vgg16_state)
    assert len(convs) == 26 == len(VGG16_KEY_MAP)
    back = to_torchvision_keys(convs)
    conv_keys = [k for k in vgg16_state if k.startswith("features.")]
    assert sorted(back) == sorted(conv_keys)
    assert all(torch.equal(back[k], vgg16_state[k]) for k in conv_keys)


def test_both_networks_get_the_source_conv_weights(tmp_path, vgg16_state):
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(vgg16_state, path)
    deeplab = DeepLabLargeFOV(num_classes=3, weights_path=path)
    cam = cam_vgg16(num_classes=3, weights_path=path)
    sec = sec_cam_vgg16(3, weights_path=path)
    for c in VGG16_CONVS:
        for kind in ("weight", "bias"):
            source = vgg16_state[f"features.{c.index}.{kind}"]
            assert torch.equal(getattr(getattr(deeplab, c.name), kind), source)
            assert torch.equal(getattr(getattr(cam.trunk, c.name), kind), source)
            assert torch.equal(getattr(getattr(sec.trunk, c.name), kind), source)
    assert load_vgg16_weights(cam, path) == ["extra.0.bias", "extra.0.weight", "fc.bias", "fc.weight"]


def test_wrapped_file_loads(tmp_path, vgg16_state):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in vgg16_state.items()}, "epoch": 3}, path)
    model = cam_vgg16(num_classes=2, weights_path=path)
    assert torch.equal(model.trunk.conv3_2.weight, vgg16_state["features.12.weight"])
    compiled = {"model": {"_orig_mod.module.a": torch.ones(1), "module._orig_mod.b": torch.zeros(2)}}
    assert sorted(unwrap_state_dict(compiled)) == ["a", "b"]
    with pytest.raises(WeightsFileError, match="both name"):
        unwrap_state_dict({"module.a": torch.ones(1), "a": torch.ones(1)})


def test_missing_and_truncated_files_give_the_named_errors(tmp_path, vgg16_state):
    missing = tmp_path / "nowhere.pth"
    for build in (lambda p: DeepLabLargeFOV(weights_path=p), lambda p: cam_vgg16(2, weights_path=p),
                  lambda p: sec_cam_vgg16(2, weights_path=p)):
        with pytest.raises(WeightsNotFoundError) as err:
            build(missing)
        assert str(missing) in str(err.value) and "vgg16-397923af.pth" in str(err.value)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(vgg16_state, path)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsFileError, match="cannot read weights file .*truncated.pth"):
        cam_vgg16(2, weights_path=truncated)
    with pytest.raises(WeightsFileError, match="cannot read weights file .*truncated.pth"):
        read_state_dict(truncated, "anything")
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsFileError, match="other.pth does not match .*missing classifier.0.bias.*features.0.bias"):
        DeepLabLargeFOV(weights_path=other)


def test_an_engine_checkpoint_is_read_verified_and_a_damaged_one_refused(tmp_path):
    from thesislib.engine.checkpoint import save_checkpoint
    from thesislib.nn.weights import WeightsFileError, read_state_dict

    net = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "step_1.pt", {"models": {"model": net.state_dict()}, "step": 1})
    state = read_state_dict(path, "a checkpoint")
    assert set(state) == {"weight", "bias"} and torch.equal(state["weight"], net.weight.detach())
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsFileError, match="step_1.pt.*checksum"):
        read_state_dict(path, "a checkpoint")
