"""thesislib.data.color: sRGB <-> Lab against scikit-image, the ab grid, saturation, the 4-bit
grayscale and the pyramid step, on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from thesislib.data.color import (
    AB_BINS,
    ab_to_bins,
    ab_to_unit,
    bins_to_ab,
    bins_to_unit,
    chroma,
    gray4,
    gray4_to_rgb,
    image_pyramid,
    lab_to_rgb,
    luma,
    perceptual_saturation,
    pyramid_down,
    quantize_ab,
    rgb_to_lab,
    saturation_map,
    unit_to_ab,
)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_rgb_to_lab_matches_skimage_float64_and_float32():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, size=(3, 7, 5, 3))
    rgb[0, 0, :4] = [[0, 0, 0], [1, 1, 1], [0.03, 0.02, 0.04], [1, 0, 0]]  # black, white, linear segment, red
    ref = np.stack([rgb2lab(im) for im in rgb])
    ours = rgb_to_lab(_nchw(rgb)).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - ref).max() < 1e-4
    ours32 = rgb_to_lab(_nchw(rgb).float()).permute(0, 2, 3, 1).numpy()
    assert ours32.dtype == np.float32 and np.abs(ours32 - ref).max() < 1e-3


def test_lab_to_rgb_matches_skimage_and_round_trips():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, size=(2, 6, 6, 3))
    lab = np.stack([rgb2lab(im) for im in rgb])
    back = lab_to_rgb(_nchw(lab)).permute(0, 2, 3, 1).numpy()
    assert np.abs(back - rgb).max() < 1e-4
    assert np.abs(back - np.stack([lab2rgb(im) for im in lab])).max() < 1e-4
    # an out-of-gamut Lab value: clipped like skimage, unclipped on request
    odd = np.array([[[[50.0, 120.0, -120.0]]]])
    ref = lab2rgb(odd[0])
    assert np.abs(lab_to_rgb(_nchw(odd))[0].permute(1, 2, 0).numpy() - ref).max() < 1e-4
    raw = lab_to_rgb(_nchw(odd), clip=False)
    assert raw.min() < 0 or raw.max() > 1


def test_lab_hand_values_shapes_and_uint8():
    white_black = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]]], dtype=torch.float64)  # (3, 1, 2)
    lab = rgb_to_lab(white_black)
    assert lab.shape == (3, 1, 2)
    assert abs(lab[0, 0, 0].item() - 100.0) < 1e-4 and abs(lab[1, 0, 0]) < 0.01 and abs(lab[2, 0, 0]) < 0.01
    assert torch.allclose(lab[:, 0, 1], torch.zeros(3, dtype=torch.float64), atol=1e-9)
    u8 = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    red = rgb_to_lab(u8)
    assert red.dtype == torch.float32
    assert np.allclose(red[0, :, 0, 0].numpy(), rgb2lab(np.array([[[255, 0, 0]]], np.uint8))[0, 0], atol=1e-3)
    with pytest.raises(ValueError, match="3, H, W"):
        rgb_to_lab(torch.zeros(2, 4, 4))
    with pytest.raises(TypeError):
        rgb_to_lab(torch.zeros(3, 4, 4, dtype=torch.int32))


def test_lab_is_differentiable():
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_ab_grid_maps_and_bins():
    v = torch.tensor([-128.0, 127.0, -0.5, 0.0])
    assert torch.allclose(ab_to_unit(v), torch.tensor([-1.0, 1.0, 0.0, 0.5 / 127.5]))
    assert torch.allclose(unit_to_ab(ab_to_unit(v)), v)
    k = ab_to_bins(torch.tensor([-128.4, -300.0, 0.4, 0.6, 127.6, 500.0]))
    assert k.dtype == torch.int64 and k.tolist() == [0, 0, 128, 129, 255, 255]
    assert AB_BINS == 256
    assert bins_to_unit(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]
    assert bins_to_ab(torch.tensor([0, 128, 255])).tolist() == [-128.0, 0.0, 127.0]
    # bin centres are 2/255 apart, as PixelCNN++'s RGB grid; quantize = bins_to_unit(ab_to_bins)
    centres = bins_to_unit(torch.arange(256))
    assert torch.allclose(centres.diff(), torch.full((255,), 2 / 255))
    assert torch.allclose(quantize_ab(torch.tensor([3.3, -7.8])), torch.tensor([131 / 127.5 - 1, 120 / 127.5 - 1]))
    # the DMOL coordinate of a bin centre is the continuous map at the integer value
    ints = torch.arange(-128, 128).float()
    assert torch.allclose(ab_to_unit(ints), bins_to_unit(ab_to_bins(ints)), atol=1e-6)


def test_saturation_hand_values():
    # channels (L, a, b) of three pixels: (50, 30, 40), (0, 0, 0), (0, 0, 40)
    lab = torch.tensor([[50.0, 0.0, 0.0], [30.0, 0.0, 0.0], [40.0, 0.0, 40.0]]).view(1, 3, 1, 3)
    # pixel 0: C = 50, S = 50 / sqrt(50^2 + 50^2); pixel 1: L = C = 0 -> 0; pixel 2: L = 0, C = 40 -> 1
    assert torch.allclose(chroma(lab)[0, 0], torch.tensor([50.0, 0.0, 40.0]))
    s = saturation_map(lab)
    assert s.shape == (1, 1, 3)
    assert torch.allclose(s[0, 0], torch.tensor([1 / math.sqrt(2), 0.0, 1.0]))
    mean = perceptual_saturation(lab)
    assert mean.shape == (1,) and abs(mean.item() - (1 / math.sqrt(2) + 1.0) / 3) < 1e-6
    assert perceptual_saturation(lab[0]).ndim == 0
    grey = rgb_to_lab(torch.full((3, 2, 2), 0.5, dtype=torch.float64))
    assert perceptual_saturation(grey).item() < 1e-4


def test_gray4_and_luma_hand_values():
    px = torch.tensor([[16, 16, 16], [15, 15, 15], [255, 255, 255], [0, 255, 0], [255, 0, 0], [0, 0, 255],
                       [0, 0, 0]], dtype=torch.uint8)
    img = px.T.reshape(1, 3, 1, 7)
    # Y: 16, 15, 255, 149.685, 76.245, 29.07, 0 -> floor(Y/16)
    assert gray4(img).flatten().tolist() == [1, 0, 15, 9, 4, 1, 0]
    assert gray4(img).shape == (1, 1, 1, 7) and gray4(img).dtype == torch.uint8
    assert torch.allclose(luma(img).flatten(), torch.tensor([16, 15, 255, 149.685, 76.245, 29.07, 0]))
    assert gray4(img[0]).shape == (1, 1, 7)
    shown = gray4_to_rgb(gray4(img))
    assert shown.shape == (1, 3, 1, 7) and shown[0, :, 0, 0].tolist() == [24, 24, 24]
    with pytest.raises(TypeError, match="8-bit grid"):
        gray4(img.float())


def test_pyramid_down_rounds_half_up_and_pyramid_sizes():
    x = torch.tensor([[1, 2, 0, 0], [3, 4, 0, 1], [255, 255, 1, 1], [255, 255, 2, 2]], dtype=torch.uint8)
    # block means: 2.5 -> 3, 0.25 -> 0, 255 -> 255, 1.5 -> 2
    assert pyramid_down(x[None]).tolist() == [[[3, 0], [255, 2]]]
    pyr = image_pyramid(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), levels=4)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8, 4] and all(p.dtype == torch.uint8 for p in pyr)
    assert pyr[1].to(torch.float32).mean().sub(pyr[0].to(torch.float32).mean()).abs() < 1.0
    with pytest.raises(ValueError, match="even"):
        pyramid_down(torch.zeros(1, 3, 3, dtype=torch.uint8))
