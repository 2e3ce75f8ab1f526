"""PixelCNN++ blocks: causality of every block type by gradients, shapes, the embedding."""

from __future__ import annotations

import pytest
import torch

from thesislib.nn.pixelcnn import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    Embedding,
    EmbeddingStage,
    GatedResnet,
    concat_elu,
)


def support(module, x_shape, i, j, **inputs):
    """Positions (r, c) of the input x whose gradient on output (i, j) is nonzero (and those of extra inputs)."""
    torch.manual_seed(0)
    x = torch.randn(*x_shape, requires_grad=True)
    extra = {k: torch.randn(*s, requires_grad=True) for k, s in inputs.items()}
    y = module(x, **extra)
    y[0, :, i, j].sum().backward()
    out = {"x": {tuple(p) for p in torch.nonzero(x.grad[0].abs().sum(0)).tolist()}}
    for k, t in extra.items():
        out[k] = {tuple(p) for p in torch.nonzero(t.grad[0].abs().sum(0)).tolist()}
    return out


def box(rows, cols):
    return {(r, c) for r in rows for c in cols}


def test_concat_elu():
    x = torch.tensor([[[[-1.0]], [[2.0]]]])
    y = concat_elu(x)
    assert y.shape == (1, 4, 1, 1)
    assert torch.allclose(y.flatten(), torch.tensor([torch.expm1(torch.tensor(-1.0)).item(), 2.0, 1.0,
                                                     torch.expm1(torch.tensor(-2.0)).item()]))


@pytest.mark.parametrize("i,j", [(0, 0), (3, 4), (7, 7), (5, 0)])
def test_down_shifted_conv_footprint(i, j):
    m = DownShiftedConv2d(2, 3, (2, 3))
    got = support(m, (1, 2, 8, 8), i, j)["x"]
    assert got == box(range(max(0, i - 1), i + 1), range(max(0, j - 1), min(8, j + 2)))
    shifted = support(DownShiftedConv2d(2, 3, (2, 3), shift_output_down=True), (1, 2, 8, 8), i, j)["x"]
    assert shifted == box(range(max(0, i - 2), i), range(max(0, j - 1), min(8, j + 2)))   # rows < i only


@pytest.mark.parametrize("i,j", [(0, 0), (3, 4), (7, 7), (0, 5)])
def test_down_right_shifted_conv_footprint(i, j):
    got = support(DownRightShiftedConv2d(2, 3, (2, 2)), (1, 2, 8, 8), i, j)["x"]
    assert got == box(range(max(0, i - 1), i + 1), range(max(0, j - 1), j + 1))
    shifted = support(DownRightShiftedConv2d(2, 3, (2, 1), shift_output_right=True), (1, 2, 8, 8), i, j)["x"]
    assert shifted == box(range(max(0, i - 1), i + 1), range(max(0, j - 1), j))            # columns < j only


def test_strided_shapes():
    x = torch.randn(2, 4, 8, 8)
    assert DownShiftedConv2d(4, 5, stride=2)(x).shape == (2, 5, 4, 4)
    assert DownRightShiftedConv2d(4, 5, stride=2)(x).shape == (2, 5, 4, 4)
    assert DownShiftedConvTranspose2d(4, 5)(x).shape == (2, 5, 16, 16)
    assert DownRightShiftedConvTranspose2d(4, 5)(x).shape == (2, 5, 16, 16)


@pytest.mark.parametrize("i,j", [(0, 0), (5, 5), (4, 4), (11, 10), (6, 11)])
def test_transposed_convs_are_causal(i, j):
    """Output (i, j) at the fine level sees coarse positions (r, c) with r <= i // 2 (and c <= j // 2 or
    c within one of j // 2 for the down-shifted one): the coarse cell of (i, j) and those above/left."""
    down = support(DownShiftedConvTranspose2d(2, 2), (1, 2, 6, 6), i, j)["x"]
    assert down and all(r <= i // 2 and abs(c - j // 2) <= 1 for r, c in down)
    right = support(DownRightShiftedConvTranspose2d(2, 2), (1, 2, 6, 6), i, j)["x"]
    assert right and all(r <= i // 2 and c <= j // 2 for r, c in right)


def test_gated_resnet_causal_with_skip_and_conditioning():
    def conv(a, b):
        return DownShiftedConv2d(a, b, (2, 3))

    block = GatedResnet(4, conv, cond_channels=3, skip_channels=5).eval()
    i, j = 5, 4
    got = support(block, (1, 4, 8, 8), i, j, a=(1, 5, 8, 8), h=(1, 3, 8, 8))
    assert (i, j) in got["x"] and got["x"] <= box(range(i - 2, i + 1), range(j - 2, j + 3))
    assert got["a"] <= box(range(i - 1, i + 1), range(j - 1, j + 2)) and got["a"]
    assert got["h"] <= box(range(i - 1, i + 1), range(j - 1, j + 2)) and (i, j) in got["h"]
    y = block(torch.zeros(1, 4, 8, 8), a=torch.zeros(1, 5, 8, 8), h=torch.zeros(1, 3, 8, 8))
    assert y.shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="skip input"):
        block(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="cond_channels=0"):
        GatedResnet(4, conv)(torch.zeros(1, 4, 8, 8), h=torch.zeros(1, 3, 8, 8))


def test_embedding_table_5_1_cifar_shapes_and_is_not_causal():
    g = Embedding(1, 256, [EmbeddingStage(32, 2), EmbeddingStage(64, 2, stride=2), EmbeddingStage(128, 2),
                           EmbeddingStage(256, 3, dilation=2)]).eval()
    assert g(torch.randn(2, 1, 32, 32)).shape == (2, 256, 16, 16)
    small = Embedding(1, 4, [EmbeddingStage(8, 1), EmbeddingStage(8, 1, stride=2), EmbeddingStage(8, 1, up=True)])
    got = support(small.eval(), (1, 1, 8, 8), 0, 0)["x"]
    assert (7, 7) in got or any(r > 0 and c > 0 for r, c in got)          # sees below and right: one flow
    assert small(torch.randn(1, 1, 8, 8)).shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="Embedding expects"):
        small(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="stride"):
        EmbeddingStage(8, 1, stride=3)
