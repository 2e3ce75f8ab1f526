"""DeepLab-LargeFOV: layer list, 321 -> 41, VGG16 conversion (vgg16_20M), weights file, Caffe lr groups."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from thesislib.nn import DeepLabLargeFOV, WeightsNotFoundError, build_backbone
from thesislib.nn.deeplab import largefov_output_size, param_groups
from thesislib.nn.vgg import VGG16_CONVS, convert_vgg16_state_dict


def test_321_input_gives_41_output_and_20_5m_parameters():
    with torch.device("meta"):
        model = DeepLabLargeFOV(num_classes=21)
        assert model(torch.empty(2, 3, 321, 321)).shape == (2, 21, 41, 41)
        assert model.features(torch.empty(1, 3, 321, 321)).shape == (1, 1024, 41, 41)
        for size in (320, 353, 513, 97):
            out = model(torch.empty(1, 3, size, size + 16))
            assert out.shape[-2:] == (largefov_output_size(size), largefov_output_size(size + 16))
    assert largefov_output_size(321) == 41 and largefov_output_size(513) == 65
    convs = sum(c_out * c_in * 9 + c_out for _, _, c_in, c_out in VGG16_CONVS)
    assert convs == 14_714_688                                           # VGG16's conv layers
    expected = convs + (1024 * 512 * 9 + 1024) + (1024 * 1024 + 1024) + (21 * 1024 + 21)
    assert sum(p.numel() for p in model.parameters()) == expected == 20_505_429


def test_layer_list_matches_sec_prototxt():
    model = DeepLabLargeFOV(num_classes=21)
    for name in ("pool1", "pool2", "pool3"):
        pool = getattr(model, name)
        assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 1, True)
    for name in ("pool4", "pool5"):
        assert (getattr(model, name).kernel_size, getattr(model, name).stride) == (3, 1)
    assert isinstance(model.pool5a, nn.AvgPool2d) and model.pool5a.stride == 1
    assert all(getattr(model, f"conv5_{i}").dilation == (2, 2) for i in (1, 2, 3))
    assert all(getattr(model, f"conv4_{i}").dilation == (1, 1) for i in (1, 2, 3))
    assert model.fc6.dilation == (12, 12) and model.fc6.weight.shape == (1024, 512, 3, 3)
    assert model.fc7.weight.shape == (1024, 1024, 1, 1) and model.fc8.weight.shape == (21, 1024, 1, 1)
    assert torch.equal(model.fc8.bias, torch.zeros(21))
    assert abs(model.fc8.weight.std().item() - 0.01) < 0.001 and abs(model.fc8.weight.mean()) < 0.001
    assert model.drop6.p == 0.5 and model.drop7.p == 0.5


def test_forward_is_deterministic_in_eval_and_dropout_acts_in_train():
    torch.manual_seed(0)
    model = build_backbone("deeplab_largefov", num_classes=3)
    x = torch.randn(2, 3, 49, 49)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert a.shape == (2, 3, 7, 7) and torch.equal(a, b)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), a)


def test_torchvision_indices_of_the_13_convolutions():
    with torch.device("meta"):
        features = torchvision.models.vgg16(weights=None).features
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    assert [index for _, index, _, _ in VGG16_CONVS] == convs
    for _, index, c_in, c_out in VGG16_CONVS:
        assert (features[index].in_channels, features[index].out_channels) == (c_in, c_out)


def _structured_vgg16_state(dtype=torch.int32):
    """A vgg16-shaped state dict whose entries encode their own indices (exact in int32)."""
    state = {}
    for k, (_, index, c_in, c_out) in enumerate(VGG16_CONVS):
        state[f"features.{index}.weight"] = torch.full((c_out, c_in, 3, 3), k, dtype=dtype)
        state[f"features.{index}.bias"] = torch.arange(c_out, dtype=dtype) + 1000 * k
    state["classifier.0.weight"] = (torch.arange(4096, dtype=dtype)[:, None] * 32768
                                    + torch.arange(25088, dtype=dtype)[None, :])
    state["classifier.0.bias"] = torch.arange(4096, dtype=dtype)
    state["classifier.3.weight"] = (torch.arange(4096, dtype=dtype)[:, None] * 8192
                                    + torch.arange(4096, dtype=dtype)[None, :])
    state["classifier.3.bias"] = -torch.arange(4096, dtype=dtype)
    state["classifier.6.weight"] = torch.zeros(1000, 4096, dtype=dtype)
    state["classifier.6.bias"] = torch.zeros(1000, dtype=dtype)
    return state


def test_fc6_fc7_subsampling_by_index_arithmetic():
    out = convert_vgg16_state_dict(_structured_vgg16_state())
    assert sorted(out) == sorted([f"{n}.{p}" for n, _, _, _ in VGG16_CONVS for p in ("weight", "bias")]
                                 + ["fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"])
    o = torch.arange(1024).view(-1, 1, 1, 1)
    c = torch.arange(512).view(1, -1, 1, 1)
    i = torch.arange(3).view(1, 1, -1, 1)
    j = torch.arange(3).view(1, 1, 1, -1)
    # fc6 output o <- VGG unit 4o; input (c, 3i, 3j) of pool5's 512x7x7, flattened channel-major
    assert torch.equal(out["fc6.weight"], (4 * o) * 32768 + c * 49 + (3 * i) * 7 + 3 * j)
    assert torch.equal(out["fc6.bias"], 4 * torch.arange(1024))
    rows, cols = torch.arange(1024).view(-1, 1), torch.arange(1024).view(1, -1)
    assert torch.equal(out["fc7.weight"][:, :, 0, 0], (4 * rows) * 8192 + 4 * cols)
    assert torch.equal(out["fc7.bias"], -4 * torch.arange(1024))
    assert torch.equal(out["conv3_2.weight"], torch.full((256, 256, 3, 3), 5, dtype=torch.int32))
    assert torch.equal(out["conv5_3.bias"], torch.arange(512, dtype=torch.int32) + 12000)


def test_conversion_rejects_other_state_dicts():
    state = _structured_vgg16_state()
    del state["features.28.weight"]
    with pytest.raises(ValueError, match="features.28.weight"):
        convert_vgg16_state_dict(state)
    state = _structured_vgg16_state()
    state["classifier.3.weight"] = state["classifier.3.weight"][:, :100]
    with pytest.raises(ValueError, match="shape mismatch"):
        convert_vgg16_state_dict(state)


def test_weights_file_round_trip(tmp_path):
    torch.manual_seed(1)
    state = {}
    for _, index, c_in, c_out in VGG16_CONVS:          # small files: broadcast rows share storage
        state[f"features.{index}.weight"] = torch.randn(c_out, 1, 1, 1).expand(c_out, c_in, 3, 3)
        state[f"features.{index}.bias"] = torch.randn(c_out)
    fc6_rows, fc7_rows = torch.randn(4096, 1), torch.randn(4096, 1)
    state["classifier.0.weight"] = fc6_rows.expand(4096, 25088)
    state["classifier.0.bias"] = torch.randn(4096)
    state["classifier.3.weight"] = fc7_rows.expand(4096, 4096)
    state["classifier.3.bias"] = torch.randn(4096)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    model = DeepLabLargeFOV(num_classes=5, weights_path=path)
    assert torch.equal(model.conv1_1.weight, state["features.0.weight"])
    assert torch.equal(model.conv4_2.bias, state["features.19.bias"])
    assert torch.equal(model.fc6.weight, fc6_rows[::4].view(1024, 1, 1, 1).expand(1024, 512, 3, 3))
    assert torch.equal(model.fc6.bias, state["classifier.0.bias"][::4])
    assert torch.equal(model.fc7.weight[:, :, 0, 0], fc7_rows[::4].expand(1024, 1024))
    assert torch.equal(model.fc8.bias, torch.zeros(5)) and model.fc8.weight.std() < 0.02


def test_missing_weights_file_names_the_expected_file(tmp_path):
    with pytest.raises(WeightsNotFoundError) as err:
        DeepLabLargeFOV(weights_path=tmp_path / "nothing.pth")
    assert "nothing.pth" in str(err.value) and "vgg16-397923af.pth" in str(err.value)


def test_param_groups_reproduce_caffe_multipliers():
    torch.manual_seed(2)
    model = DeepLabLargeFOV(num_classes=21)
    groups = param_groups(model, lr=1e-3, weight_decay=5e-4)
    by_name = {g["name"]: g for g in groups}
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [
        ("weights", 1e-3, 5e-4), ("biases", 2e-3, 0.0), ("head_weight", 1e-2, 5e-4), ("head_bias", 2e-2, 0.0)]
    assert by_name["head_weight"]["params"] == [model.fc8.weight]
    assert by_name["head_bias"]["params"] == [model.fc8.bias]
    assert len(by_name["weights"]["params"]) == 15 and len(by_name["biases"]["params"]) == 15
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    # one SGD step with zero gradients: decay only, scaled by each group's lr
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(groups, lr=1e-3, momentum=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(model.conv3_1.weight, before["conv3_1.weight"] * (1 - 1e-3 * 5e-4))
    assert torch.allclose(model.fc8.weight, before["fc8.weight"] * (1 - 1e-2 * 5e-4))
    assert torch.equal(model.fc6.bias, before["fc6.bias"]) and torch.equal(model.fc8.bias, before["fc8.bias"])
    # unit gradients on the biases: steps of 2 lr and 20 lr
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert torch.allclose(model.fc7.bias, before["fc7.bias"] - 2e-3)
    assert torch.allclose(model.fc8.bias, before["fc8.bias"] - 2e-2)
    assert model.param_groups(1.0, 0.0)[3]["lr"] == 20.0


def test_runs_under_bf16_autocast_and_channels_last_on_cpu():
    torch.manual_seed(3)
    model = DeepLabLargeFOV(num_classes=4).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 41, 41).to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.shape == reference.shape == (1, 4, 6, 6)
    assert torch.allclose(low.float(), reference, atol=0.05 * reference.abs().max().item() + 1e-3)


@pytest.mark.gpu
def test_cuda_bf16_channels_last_training_step():
    device = torch.device("cuda")
    torch.manual_seed(4)
    model = DeepLabLargeFOV(num_classes=21).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, 1e-3, 5e-4), lr=1e-3, momentum=0.9)
    x = torch.randn(2, 3, 321, 321, device=device).to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        scores = model(x)
        loss = scores.float().logsumexp(dim=1).mean()
    assert scores.shape == (2, 21, 41, 41)
    loss.backward()
    opt.step()
    assert torch.isfinite(model.fc8.weight).all()
