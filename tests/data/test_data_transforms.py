"""The shared pixel transforms: statistics, to-tensor, resize policy, mask resize, normalise/denormalise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from thesislib.data.transforms import (
    CAFFE,
    CAFFE_BGR_MEAN,
    CIFAR10,
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET,
    NORMALIZATIONS,
    Normalization,
    denormalize,
    get_normalization,
    normalize,
    resize_image,
    resize_mask,
    to_tensor,
)


def test_statistics_are_the_published_constants():
    assert IMAGENET.mean == (0.485, 0.456, 0.406) and IMAGENET.std == (0.229, 0.224, 0.225)
    assert CAFFE_BGR_MEAN == (104.0, 117.0, 123.0) and CAFFE.bgr and CAFFE.pixel_scale == 255.0
    assert CIFAR10.mean == CIFAR10_MEAN == (0.4914, 0.4822, 0.4465) and CIFAR10.std == CIFAR10_STD
    assert set(NORMALIZATIONS) == {"imagenet", "caffe", "cifar10", "cifar100", "symmetric"}
    assert get_normalization("caffe") is CAFFE and get_normalization(IMAGENET) is IMAGENET
    with pytest.raises(ValueError, match="imagenet"):
        get_normalization("bgr")
    with pytest.raises(ValueError, match="positive"):
        Normalization("bad", (0.5,), (0.0,))


def test_to_tensor_from_numpy_pil_and_grey():
    hwc = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10     # values 0..170
    x = to_tensor(hwc)
    assert x.shape == (3, 2, 3) and x.dtype == torch.float32
    assert abs(float(x[2, 1, 0]) - hwc[1, 0, 2] / 255.0) < 1e-7             # channel c, row i, col j
    assert torch.equal(to_tensor(Image.fromarray(hwc)), x)
    assert torch.allclose(to_tensor(hwc, scale=255.0), torch.from_numpy(hwc).permute(2, 0, 1).float())
    grey = to_tensor(np.full((4, 5), 255, np.uint8))
    assert grey.shape == (1, 4, 5) and torch.all(grey == 1.0)
    assert torch.allclose(to_tensor(np.full((2, 2, 3), 0.25, np.float32)), torch.full((3, 2, 2), 0.25))
    with pytest.raises(TypeError):
        to_tensor(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(ValueError, match="H, W"):
        to_tensor(np.zeros((1, 2, 2, 3), np.uint8))


def test_normalise_by_hand_imagenet_and_caffe():
    image = torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1).expand(3, 2, 2) / 255.0  # RGB in [0, 1]
    imnet = normalize(image, "imagenet")
    expected = [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (30 / 255 - 0.406) / 0.225]
    assert torch.allclose(imnet[:, 1, 1], torch.tensor(expected))
    caffe = normalize(image, CAFFE)                                       # BGR, x 255, minus BGR mean
    assert torch.allclose(caffe[:, 0, 0], torch.tensor([30 - 104.0, 20 - 117.0, 10 - 123.0]), atol=1e-4)
    on_255 = normalize(image * 255.0, CAFFE, scale=255.0)
    assert torch.allclose(on_255, caffe, atol=1e-4)
    as_uint8 = normalize(torch.tensor([10, 20, 30], dtype=torch.uint8).view(3, 1, 1), "imagenet")
    assert as_uint8.dtype == torch.float32 and torch.allclose(as_uint8[:, 0, 0], torch.tensor(expected))
    white = normalize(torch.full((2, 3, 4, 4), 255, dtype=torch.uint8), "cifar10")
    assert torch.allclose(white[1, :, 2, 3], (1.0 - torch.tensor(CIFAR10_MEAN)) / torch.tensor(CIFAR10_STD))
    bf = normalize(torch.zeros(3, 2, 2, dtype=torch.bfloat16), "cifar10")
    assert bf.dtype == torch.bfloat16 and bf.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="C = 3"):
        normalize(torch.zeros(1, 4, 4), "imagenet")


@pytest.mark.parametrize("name", sorted(NORMALIZATIONS))
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_denormalise_inverts_normalise(name, scale):
    x = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(0)) * scale
    back = denormalize(normalize(x, name, scale=scale), name, scale=scale)
    assert torch.allclose(back, x, atol=1e-4 * scale)
    y = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(normalize(denormalize(y, name, scale=scale), name, scale=scale), y, atol=1e-3)


def test_caffe_denormalise_returns_rgb_order():
    rgb = torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1)
    net = normalize(rgb, "caffe")
    assert torch.allclose(net[:, 0, 0], torch.tensor([0.9 * 255 - 104, 0.5 * 255 - 117, 0.1 * 255 - 123]),
                          atol=1e-4)                                    # channel 0 is blue
    assert torch.allclose(denormalize(net, "caffe", scale=255.0)[:, 0, 0], torch.tensor([25.5, 127.5, 229.5]),
                          atol=1e-3)


def test_resize_policy_by_hand():
    row = torch.tensor([[[0.0, 4.0]]] * 3)                               # (3, 1, 2), upscaling x2
    assert torch.allclose(resize_image(row, (1, 4))[0, 0], torch.tensor([0.0, 1.0, 3.0, 4.0]))  # plain bilinear
    # Downscaling 8 -> 2 a row with one bright pixel (index 3). Antialiased: output i averages the
    # input with the triangle weights max(0, 1 - |j + 0.5 - 4 (i + 0.5)| / 4), normalised (they sum
    # to 3.5), so pixel 3 gets 0.625 / 3.5 in output 0 and 0.375 / 3.5 in output 1. Plain bilinear
    # sampling (at 1.5 and 5.5) would miss it entirely.
    impulse = torch.zeros(3, 1, 8)
    impulse[:, :, 3] = 1.0
    down = resize_image(impulse, (1, 2))
    assert torch.allclose(down[0, 0], torch.tensor([0.625 / 3.5, 0.375 / 3.5]), atol=1e-6)
    plain = torch.nn.functional.interpolate(impulse[None], size=(1, 2), mode="bilinear", align_corners=False)
    assert torch.equal(plain[0, 0, 0], torch.zeros(2))
    batch = torch.rand(2, 3, 7, 9)
    assert resize_image(batch, 5).shape == (2, 3, 5, 5) and resize_image(batch[0], (4, 6)).shape == (3, 4, 6)
    assert resize_image(batch, (7, 9)) is batch
    assert resize_image(batch.to(torch.float64), 3).dtype == torch.float64
    with pytest.raises(TypeError, match="resize_mask"):
        resize_image(torch.zeros(3, 4, 4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="size"):
        resize_image(batch, (0, 3))


def test_resize_mask_keeps_labels_and_the_ignore_label():
    mask = torch.tensor([[1, 2], [255, 0]])
    up = resize_mask(mask, 4)
    assert up.dtype == torch.int64
    assert torch.equal(up, mask.repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert torch.equal(resize_mask(up, 2), mask)
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array([0, 3, 7, 20, 255]), size=(2, 33, 47)).astype(np.uint8)
    for size in [(11, 13), (64, 90), 5]:
        out = resize_mask(labels, size)
        assert out.shape[0] == 2 and set(out.unique().tolist()) <= {0, 3, 7, 20, 255}
    big = resize_mask(labels, (66, 94))                                 # exact x2: every label survives
    assert set(big.unique().tolist()) == set(np.unique(labels).tolist())
    assert torch.equal(resize_mask(big, (33, 47)), torch.from_numpy(labels).long())
    assert torch.equal(resize_mask(torch.tensor([[10**9, 7]]), (1, 4)), torch.tensor([[10**9] * 2 + [7] * 2]))
    with pytest.raises(TypeError):
        resize_mask(mask.float(), 4)


def test_horizontal_flip_items_flips_every_tensor_of_an_item_by_one_coin():
    from thesislib.data.transforms import HorizontalFlipItems

    x = torch.arange(6.0).view(1, 2, 3)
    base = [{"x": x, "aux": x + 10, "id": 7}] * 50
    torch.manual_seed(0)
    items = [HorizontalFlipItems(base)[i] for i in range(50)]
    flipped = [torch.equal(it["x"], x.flip(-1)) for it in items]
    assert all(torch.equal(it["aux"] - 10, it["x"]) and it["id"] == 7 for it in items)  # same coin for both
    assert 10 < sum(flipped) < 40 and all(f or torch.equal(it["x"], x) for f, it in zip(flipped, items))
    assert torch.equal(HorizontalFlipItems([(x, x)], p=1.0)[0][1], x.flip(-1))
    assert torch.equal(HorizontalFlipItems([x], p=0.0)[0], x)
    with pytest.raises(ValueError, match="p must lie"):
        HorizontalFlipItems(base, p=2.0)
