"""PixelCNNpp: causality by gradients for both variants, conditioning, the receptive-field bound."""

from __future__ import annotations

import pytest
import torch

from thesislib.nn import PixelCNNpp


def grads(model, x_shape, i, j, cond=0):
    torch.manual_seed(1)
    x = torch.rand(*x_shape) * 2 - 1
    x.requires_grad_(True)
    h = torch.randn(x_shape[0], cond, *x_shape[2:], requires_grad=True) if cond else None
    out = model(x, h)
    out[0, :, i, j].sum().backward()
    gx = {tuple(p) for p in torch.nonzero(x.grad[0].abs().sum(0) > 0).tolist()}
    gh = None if h is None else {tuple(p) for p in torch.nonzero(h.grad[0].abs().sum(0) > 0).tolist()}
    return gx, gh, x.grad


@pytest.mark.parametrize("updown", [True, False])
@pytest.mark.parametrize("i,j", [(0, 0), (0, 5), (3, 0), (4, 6), (7, 7)])
def test_output_depends_only_on_earlier_pixels(updown, i, j):
    torch.manual_seed(0)
    model = PixelCNNpp(3, 7, nr_resnet=1, nr_filters=8, cond_channels=2, updown=updown, dropout=0.0).eval()
    gx, gh, g = grads(model, (1, 3, 8, 8), i, j, cond=2)
    assert all(r < i or (r == i and c < j) for r, c in gx), "output sees the current or a later pixel"
    if (i, j) != (0, 0):
        assert gx, "output sees no earlier pixel at all"
        r, c = (i, j - 1) if j else (i - 1, j)                  # the left neighbour, or the one above
        assert (g[0, :, r, c].abs() > 0).all()                  # all its channels reach the output
    assert (i, j) in gh                                                       # conditioning at the pixel itself


def test_batch_elements_are_independent():
    model = PixelCNNpp(1, 4, nr_resnet=1, nr_filters=8, updown=True, dropout=0.0).eval()
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    model(x)[0].sum().backward()
    assert x.grad[1].abs().sum() == 0


@pytest.mark.parametrize("nr_resnet", [1, 2])
def test_receptive_field_bound_contains_gradient_support(nr_resnet):
    torch.manual_seed(0)
    model = PixelCNNpp(2, 5, nr_resnet=nr_resnet, nr_filters=8, updown=False, dropout=0.0).eval()
    up, left, right = model.receptive_field()
    size = 2 * (up + left + right) + 4
    i, j = size - 2, size // 2
    gx, _, _ = grads(model, (1, 2, size, size), i, j)
    rows = [r for r, _ in gx]
    cols = [c for _, c in gx]
    assert min(rows) >= i - up and max(rows) <= i
    assert min(cols) >= j - left and max(cols) <= j + right
    assert min(rows) == i - up                     # the vertical extent is reached (the bound is not loose there)
    with pytest.raises(ValueError, match="updown=False"):
        PixelCNNpp(2, 5, nr_resnet=1, nr_filters=8, updown=True).receptive_field()


def test_shapes_and_errors():
    model = PixelCNNpp(3, 100, nr_resnet=1, nr_filters=8, updown=True, dropout=0.5)
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 100, 16, 16)
    flat = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=False)
    assert flat(torch.zeros(2, 1, 7, 5)).shape == (2, 16, 7, 5)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(torch.zeros(1, 3, 10, 12))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="cond_channels"):
        model(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8))
    cond = PixelCNNpp(3, 10, nr_resnet=1, nr_filters=8, cond_channels=2, updown=False)
    with pytest.raises(ValueError, match="conditioning h must have shape"):
        cond(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 4, 4))
