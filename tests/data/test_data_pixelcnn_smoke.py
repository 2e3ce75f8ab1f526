"""PixelCNN smoke data: shapes, dtypes, determinism, the equal-lightness property, class balance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from thesislib.data.color import gray4, rgb_to_lab
from thesislib.data.digits import load_digits_arrays
from thesislib.data.pixelcnn_smoke import (
    BLUE_RGB,
    DISK,
    SQUARE,
    YELLOW_RGB,
    ambiguity_images,
    colored_digits,
    photo_crops,
    smoke_faces,
)


def test_equal_lightness_pair():
    pair = np.array([[BLUE_RGB, YELLOW_RGB]], dtype=np.uint8)
    lab = rgb2lab(pair)[0]
    assert abs(lab[0, 0] - lab[1, 0]) < 1e-3
    ours = rgb_to_lab(torch.from_numpy(pair.transpose(2, 0, 1).copy()).double() / 255)
    assert abs(ours[0, 0, 0] - ours[0, 0, 1]).item() < 1e-3
    assert lab[0, 2] < -40 and lab[1, 2] > 40  # blue vs yellow: b* of opposite signs


def test_colored_digits():
    a = colored_digits(n=50, seed=3)
    b = colored_digits(n=50, seed=3)
    assert a.images.shape == (50, 3, 8, 8) and a.images.dtype == torch.uint8 and a.labels.dtype == torch.int64
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, colored_digits(n=50, seed=4).images)
    full = colored_digits()
    assert full.images.shape[0] == 1797 and np.bincount(full.labels.numpy()).min() >= 170
    up = colored_digits(n=10, seed=0, size=16)
    assert up.images.shape == (10, 3, 16, 16)
    # the 4-bit grayscale carries the shape: stroke pixels are brighter than background on average
    digits, _ = load_digits_arrays()
    stroke = torch.from_numpy(digits[:1797] > 0.5)[:, None]
    g = gray4(full.images).float()
    assert g[stroke].mean() > g[~stroke].mean() + 2


def test_smoke_faces_deterministic_and_symmetric_on_average():
    f = smoke_faces(40, seed=1)
    assert f.shape == (40, 3, 32, 32) and f.dtype == torch.uint8
    assert torch.equal(f, smoke_faces(40, seed=1)) and not torch.equal(f, smoke_faces(40, seed=2))
    mean = f.float().mean(0)
    # mirror symmetry of the average face (the jitter is symmetric in distribution)
    assert (mean - mean.flip(-1)).abs().mean() < 12
    assert f.float().std() > 20  # not a flat image


def test_ambiguity_images_layout_and_balance():
    amb = ambiguity_images(400, seed=0)
    x = amb.images
    assert x.shape == (400, 3, 16, 16) and x.dtype == torch.uint8
    assert amb.region.shape == (400, 16, 16) and amb.disk_yellow.shape == (400, 2)
    again = ambiguity_images(400, seed=0)
    assert torch.equal(x, again.images) and torch.equal(amb.disk_yellow, again.disk_yellow)
    frac = amb.disk_yellow.float().mean().item()
    assert abs(frac - 0.5) < 0.05  # 800 Bernoulli(1/2): sd 0.018
    pix = x.permute(0, 2, 3, 1)
    for i in range(20):
        for d in range(2):
            m = amb.disk_id[i] == d
            assert m.sum() >= 9
            want = torch.tensor(YELLOW_RGB if amb.disk_yellow[i, d] else BLUE_RGB, dtype=torch.uint8)
            assert (pix[i][m] == want).all()
        assert (pix[i][amb.region[i] == SQUARE] == torch.tensor([200, 30, 30], dtype=torch.uint8)).all()
    # the L channel of disk pixels is the same whichever colour the disk is
    lab = rgb_to_lab(x[:20].double() / 255)
    disk = amb.region[:20] == DISK
    lightness = lab[:, 0][disk]
    assert (lightness.max() - lightness.min()).item() < 1e-3
    assert amb.region.eq(DISK).any() and amb.region.eq(SQUARE).any()
    big = ambiguity_images(5, seed=1, size=32)
    assert big.images.shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match="cannot place"):
        ambiguity_images(1, size=8, n_disks=6)


def test_photo_crops():
    c = photo_crops(12, seed=0, size=32)
    assert c.images.shape == (12, 3, 32, 32) and c.images.dtype == torch.uint8
    assert torch.equal(c.images, photo_crops(12, seed=0, size=32).images)
    assert set(c.labels.tolist()) <= set(range(7)) and len(set(c.labels.tolist())) > 2
