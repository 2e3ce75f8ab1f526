"""Wide-ResNet WRN-d-k: shapes, features, parameter counts against the WRN paper."""

from __future__ import annotations

import pytest
import torch

from thesislib.nn import WideResNet, wrn, wrn_num_parameters


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_wrn(depth: int, widen: int, num_classes: int) -> WideResNet:
    with torch.device("meta"):              # no memory, no init cost: only the architecture
        return wrn(depth, widen, num_classes)


def test_output_shapes_and_features_are_penultimate():
    torch.manual_seed(0)
    model = wrn(10, 2, num_classes=7).eval()
    x = torch.randn(3, 3, 32, 32)
    logits = model(x)
    feats = model.features(x)
    assert logits.shape == (3, 7) and feats.shape == (3, 64 * 2) and model.num_features == 128
    assert torch.allclose(model.fc(feats), logits, atol=1e-6)
    assert (feats >= 0).all()                      # pooled after the final BN-ReLU


def test_structure_of_wrn_16_4():
    model = wrn(16, 4, 10)
    assert [len(g) for g in (model.group1, model.group2, model.group3)] == [2, 2, 2]
    widths = [g[0].conv2.out_channels for g in (model.group1, model.group2, model.group3)]
    assert widths == [64, 128, 256]
    assert [g[0].conv1.stride[0] for g in (model.group1, model.group2, model.group3)] == [1, 2, 2]
    assert all(g[0].shortcut is not None for g in (model.group1, model.group2, model.group3))
    assert model.group1[1].shortcut is None
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules()) == 13
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_wrn_40_1_has_no_shortcut_conv_in_group1():
    model = _meta_wrn(40, 1, 10)
    assert model.group1[0].shortcut is None and model.group2[0].shortcut is not None


@pytest.mark.parametrize("depth,widen,reported_millions", [
    (40, 1, 0.6), (40, 2, 2.2), (40, 4, 8.9), (16, 8, 11.0), (28, 10, 36.5),
])
def test_parameter_counts_match_the_wrn_paper(depth, widen, reported_millions):
    """Counts reported for CIFAR-10 in Zagoruyko & Komodakis (2016), to their rounding."""
    n = _count(_meta_wrn(depth, widen, 10))
    assert n == wrn_num_parameters(depth, widen, 10)
    assert round(n / 1e6, 1) == reported_millions


def test_wrn_40_14_the_papers_cifar_model():
    """WRN-40-14 (the G-softmax CIFAR model): 109,416,410 parameters for CIFAR-10, 109,497,140 for CIFAR-100."""
    assert _count(_meta_wrn(40, 14, 10)) == wrn_num_parameters(40, 14, 10) == 109_416_410
    assert _count(_meta_wrn(40, 14, 100)) == wrn_num_parameters(40, 14, 100) == 109_497_140
    assert wrn_num_parameters(28, 10, 10) == 36_479_194


def test_closed_form_count_on_real_small_models():
    for depth, widen, classes in ((10, 1, 10), (16, 2, 100), (22, 3, 5)):
        assert _count(wrn(depth, widen, classes)) == wrn_num_parameters(depth, widen, classes)


def test_dropout_only_in_training_and_bad_depth():
    torch.manual_seed(1)
    model = wrn(10, 1, 10, dropout=0.3)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="6n \\+ 4"):
        wrn(12, 1, 10)


def test_channels_last_and_bf16_autocast():
    torch.manual_seed(2)
    model = wrn(10, 1, 10).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    assert torch.allclose(ref, cl, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
