"""The one home of image statistics and pixel transforms: to-tensor, resize, mask resize, normalise.

Conventions (every loader and chapter follows them):

* **Pixel scale.** An image tensor is float RGB, channels first, with values in ``[0, scale]``;
  ``scale = 1.0`` (white is 1) unless a function is told otherwise. ``scale = 255.0`` is for code
  that works on the 0-255 scale (SEC's CRF kernels are defined there). uint8 input always means
  0..255 and is converted to float32 first.
* **Statistics** (:class:`Normalization`): per-channel ``mean`` and ``std`` in the units and the
  channel order the network expects. torchvision-style statistics (ImageNet, CIFAR) are RGB in
  [0, 1] units; the Caffe convention (VGG16 / DeepLab weights converted from Caffe, SEC's
  ``train.prototxt``) is BGR on the 0..255 scale, the per-channel pixel mean subtracted, no
  division (``std = 1``). Normalising is Eq. (1) below, denormalising its exact inverse.
* **Resize policy (images).** Bilinear, half-pixel centres (``align_corners=False``), with
  antialiasing: when a side shrinks, the bilinear (triangle) kernel is widened by the shrink
  factor, as PIL's ``Image.resize`` does, so a downscaled image is a local average rather than a
  sample of a few pixels; when a side grows it is plain bilinear interpolation (the wider kernel
  only acts on a shrinking side). One function (:func:`resize_image`) implements it.
* **Resize policy (label maps).** Nearest neighbour (``nearest-exact``: the source pixel whose
  centre is nearest), so a resized mask holds only labels of the input, the ignore label 255
  included; never interpolated (:func:`resize_mask`).

Eq. (1), for a channel c of the network's channel order (``bgr`` reverses R, G, B)::

    y_c = (x_c * pixel_scale / scale - mean_c) / std_c

where ``pixel_scale`` is 1 for [0, 1] statistics and 255 for Caffe's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data.cifar import crop_flip

# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

# torchvision's ImageNet statistics (RGB, pixel values in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# Per-channel mean and standard deviation of the CIFAR training images (RGB, [0, 1]), as the
# G-softmax chapter normalises them.
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)
# The Caffe pixel mean, BGR on the 0..255 scale, of SEC's train.prototxt (DeepLab-LargeFOV's
# input layer; VGG16 weights converted from Caffe expect the same convention).
CAFFE_BGR_MEAN: tuple[float, float, float] = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class Normalization:
    """Per-channel statistics of a network's input (Eq. 1 of the module docstring).

    ``mean`` and ``std`` have one entry per channel in the network's channel order (BGR when
    ``bgr``), in units where white is ``pixel_scale`` (1.0 for torchvision statistics, 255.0 for
    Caffe's).
    """

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bgr: bool = False
    pixel_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"{self.name}: mean {self.mean} and std {self.std} need one entry per channel")
        if min(self.std) <= 0:
            raise ValueError(f"{self.name}: std must be positive, got {self.std}")
        if self.bgr and len(self.mean) != 3:
            raise ValueError(f"{self.name}: bgr needs three channels, got {len(self.mean)}")


IMAGENET = Normalization("imagenet", IMAGENET_MEAN, IMAGENET_STD)
CIFAR10 = Normalization("cifar10", CIFAR10_MEAN, CIFAR10_STD)
CIFAR100 = Normalization("cifar100", CIFAR100_MEAN, CIFAR100_STD)
CAFFE = Normalization("caffe", CAFFE_BGR_MEAN, (1.0, 1.0, 1.0), bgr=True, pixel_scale=255.0)
SYMMETRIC = Normalization("symmetric", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
"""[0, 1] -> [-1, 1] (x * 2 - 1): the input range of networks trained on tanh-range images (Jenni ch. 3's C)."""
NORMALIZATIONS: dict[str, Normalization] = {n.name: n for n in (IMAGENET, CIFAR10, CIFAR100, CAFFE, SYMMETRIC)}


def get_normalization(normalization: str | Normalization) -> Normalization:
    """A :class:`Normalization` from itself or its name (``"imagenet"``, ``"cifar10"``,
    ``"cifar100"``, ``"caffe"``); ValueError naming the choices otherwise."""
    if isinstance(normalization, Normalization):
        return normalization
    try:
        return NORMALIZATIONS[normalization]
    except (KeyError, TypeError):
        raise ValueError(f"normalization must be one of {tuple(NORMALIZATIONS)} or a Normalization, "
                         f"got {normalization!r}") from None


# --------------------------------------------------------------------------------------------
# To tensor
# --------------------------------------------------------------------------------------------

def to_tensor(image: Any, scale: float = 1.0) -> Tensor:
    """An image as float32 (C, H, W) with values in ``[0, scale]``.

    ``image``: a PIL image, or a numpy array / tensor (H, W, C) or (H, W) (greyscale, returned as
    (1, H, W)). uint8 values 0..255 are mapped to ``[0, scale]``; floating values are taken to be
    in [0, 1] already and multiplied by ``scale``. Other dtypes raise TypeError.
    """
    if not isinstance(image, (np.ndarray, Tensor)) or (isinstance(image, np.ndarray) and not image.flags.writeable):
        image = np.array(image)  # PIL images, nested lists and read-only arrays: a writable copy
    x = torch.as_tensor(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"expected an (H, W, C) or (H, W) image, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) * (scale / 255.0)
    elif torch.is_floating_point(x):
        x = x.to(torch.float32) * scale
    else:
        raise TypeError(f"expected a uint8 or floating image, got {x.dtype}")
    return x.permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------------

def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from an int (a square) or a pair; ValueError unless both are >= 1."""
    pair = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return pair  # type: ignore[return-value]


def resize_image(image: Tensor, size: int | Sequence[int]) -> Tensor:
    """Resize float images (C, H, W) or (B, C, H, W) to ``size`` (an int: a square).

    The module's one policy: bilinear, half-pixel centres, antialiased when a side shrinks (the
    triangle kernel widened by the shrink factor), plain bilinear when it grows. No crop: the
    aspect ratio follows ``size``. Returns the input's dtype; integer images raise TypeError
    (class maps go through :func:`resize_mask`, uint8 photos through :func:`to_tensor` first).
    """
    if not torch.is_floating_point(image):
        raise TypeError(f"resize_image takes float images, got {image.dtype}; use to_tensor or resize_mask")
    if image.ndim not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    target = as_size(size)
    if tuple(image.shape[-2:]) == target:
        return image
    batched = image.ndim == 4
    out = F.interpolate(image if batched else image[None], size=target, mode="bilinear",
                        align_corners=False, antialias=True)
    return out if batched else out[0]


def resize_mask(mask: Any, size: int | Sequence[int]) -> Tensor:
    """Nearest-neighbour resize of an integer class map (H, W) or (B, H, W) to ``size``.

    Every output pixel copies the input pixel whose centre is nearest (``nearest-exact``), so the
    set of labels can only shrink and the ignore label 255 stays 255. Returns int64. Floating
    input raises TypeError (scores are images, not labels).
    """
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
    if torch.is_floating_point(m) or m.dtype == torch.bool:
        raise TypeError(f"resize_mask takes integer class maps, got {m.dtype}")
    if m.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    target = as_size(size)
    batched = m.ndim == 3
    m = (m if batched else m[None]).to(torch.int64)
    if tuple(m.shape[-2:]) != target:
        # Index arithmetic rather than interpolate on floats: exact for any label value.
        rows = _nearest_index(m.shape[-2], target[0], m.device)
        cols = _nearest_index(m.shape[-1], target[1], m.device)
        m = m[:, rows[:, None], cols[None, :]]
    return m if batched else m[0]


def _nearest_index(n_in: int, n_out: int, device: torch.device) -> Tensor:
    """Source index of each output pixel: ``floor((i + 0.5) * n_in / n_out)`` (pixel centres)."""
    i = torch.arange(n_out, device=device, dtype=torch.float64)
    return ((i + 0.5) * (n_in / n_out)).floor().clamp_(max=n_in - 1).to(torch.int64)


# --------------------------------------------------------------------------------------------
# Normalise / denormalise
# --------------------------------------------------------------------------------------------

def _stats(n: Normalization, like: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(n.mean, dtype=like.dtype, device=like.device).view(-1, 1, 1)
    std = torch.tensor(n.std, dtype=like.dtype, device=like.device).view(-1, 1, 1)
    return mean, std


def _channels(x: Tensor, n: Normalization) -> None:
    if x.ndim not in (3, 4) or x.shape[-3] != len(n.mean):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W) with C = {len(n.mean)} for {n.name!r}, "
                         f"got shape {tuple(x.shape)}")


def normalize(image: Tensor, normalization: str | Normalization, scale: float = 1.0) -> Tensor:
    """Network input from RGB images (C, H, W) or (B, C, H, W), Eq. (1) of the module docstring.

    ``image``: float with values in ``[0, scale]`` (dtype kept, bf16 works) or uint8 0..255
    (converted to float32, ``scale`` ignored). ``normalization``: a :class:`Normalization` or its
    name. ImageNet: ``(x - mean) / std``; Caffe: channels reversed to BGR, times 255, minus
    :data:`CAFFE_BGR_MEAN`.
    """
    n = get_normalization(normalization)
    _channels(image, n)
    if not torch.is_floating_point(image):
        image, scale = image.to(torch.float32), 255.0
    if n.bgr:
        image = image.flip(-3)
    mean, std = _stats(n, image)
    factor = n.pixel_scale / scale
    return (image * factor - mean) / std if factor != 1.0 else (image - mean) / std


def denormalize(x: Tensor, normalization: str | Normalization, scale: float = 1.0) -> Tensor:
    """The inverse of :func:`normalize`: RGB images with values in ``[0, scale]`` (not clamped)."""
    n = get_normalization(normalization)
    _channels(x, n)
    mean, std = _stats(n, x)
    image = x * std + mean
    factor = scale / n.pixel_scale
    if factor != 1.0:
        image = image * factor
    return image.flip(-3) if n.bgr else image


class HorizontalFlipItems(Dataset):
    """``dataset`` whose items are flipped left-right with probability ``p``, every tensor of an item
    (a tensor, a tuple/list or a dict of them: an image and its conditioning image, say) by the same
    coin, drawn from torch's global generator.

    Drawing the coin per item, not per batch inside the training step, keeps a run independent of how
    a global batch is split: the engine seeds each sample's generators from (epoch, index)
    (:class:`thesislib.engine.SeededDataset`), so one process and ``nproc`` DDP processes flip the same
    samples. Non-tensor entries (labels, ids) pass through unchanged.
    """

    def __init__(self, dataset: Dataset, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.dataset, self.p = dataset, p

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if not bool(torch.rand(()) < self.p):
            return item
        return _flip_item(item)


def _flip_item(item: Any) -> Any:
    if isinstance(item, Tensor):
        return item.flip(-1)
    if isinstance(item, dict):
        return {k: _flip_item(v) for k, v in item.items()}
    if isinstance(item, (tuple, list)):
        return type(item)(_flip_item(v) for v in item)
    return item


def random_square_crop(x: Tensor, size: int, flip: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """A random ``size`` x ``size`` crop of every image of a batch (N, C, H, W) (no padding; each image its own
    corner, uniform over the valid ones), mirrored left-right with probability 1/2 when ``flip``; any dtype.
    Draws, in this order: ``top`` (N,), ``left`` (N,), then ``flip`` (N,); the gather is
    :func:`thesislib.data.cifar.crop_flip` without padding."""
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if size > min(h, w):
        raise ValueError(f"crop size {size} exceeds the images' {h}x{w}")
    device = generator.device if generator is not None else x.device
    top = torch.randint(0, h - size + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, w - size + 1, (n,), generator=generator, device=device)
    mirrored = (torch.rand(n, generator=generator, device=device) < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    return crop_flip(x, top, left, mirrored, padding=0, out_size=size).contiguous()
