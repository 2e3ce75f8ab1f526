"""Polyharmonic-spline warps (Jenni ch. 4): interpolation, affine exactness, point transport."""

import torch

from thesislib.data.warp import evaluate_spline, random_warp, sparse_warp, spline_coefficients


def test_spline_interpolates_its_values_and_reproduces_affine_maps():
    torch.manual_seed(0)
    c = torch.rand(1, 7, 2) * 10
    f = torch.randn(1, 7, 3)
    w, v = spline_coefficients(c, f)
    assert torch.allclose(evaluate_spline(c, w, v, c), f.double(), atol=1e-8)
    m = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    t = torch.tensor([1.0, -3.0], dtype=torch.float64)
    c = c.double()
    w, v = spline_coefficients(c, c @ m + t)
    q = torch.rand(1, 20, 2, dtype=torch.float64) * 10
    assert torch.allclose(evaluate_spline(c, w, v, q), q @ m + t, atol=1e-8) and w.abs().max() < 1e-8


def test_zero_shift_is_identity_and_constant_shift_translates():
    img = torch.rand(2, 3, 12, 12)
    pts = torch.tensor([[[1.0, 1.0], [1.0, 10.0], [10.0, 1.0], [10.0, 10.0], [5.0, 6.0]]]).expand(2, -1, -1)
    assert torch.allclose(sparse_warp(img, pts, pts), img, atol=1e-5)
    moved = sparse_warp(img, pts, pts + torch.tensor([2.0, 3.0]))   # content moves down 2, right 3
    assert torch.allclose(moved[..., 2:, 3:], img[..., :-2, :-3], atol=1e-5)


def test_random_warp_keeps_shape_range_and_corners():
    img = torch.rand(4, 1, 16, 16)
    out = random_warp(img, generator=torch.Generator().manual_seed(0))
    assert out.shape == img.shape and out.min() >= img.min() - 1e-6 and out.max() <= img.max() + 1e-6
    assert torch.allclose(out[..., 0, 0], img[..., 0, 0], atol=1e-5)
    assert not torch.allclose(out, img, atol=1e-3)


def test_random_warp_never_builds_a_singular_spline_system():
    """Regression: clamping shifted points onto the image box put some onto a pinned corner (or onto one
    another), a singular system in about a third of the batches of 64 at 32x32."""
    img = torch.rand(64, 1, 32, 32)
    for seed in range(20):
        out = random_warp(img, generator=torch.Generator().manual_seed(seed))
        assert torch.isfinite(out).all()
    assert torch.equal(random_warp(img[:2], generator=torch.Generator().manual_seed(3)),
                       random_warp(img[:2], generator=torch.Generator().manual_seed(3)))
