"""Image transforms of the self-supervised chapters (Jenni ch. 3-4): uint8 / float images to float crops in
[-1, 1] (the autoencoders' tanh range), random crops and flips for self-supervision, whole-image resizes for
evaluation, and a dataset view that drops labels.

Random draws come from torch's global generator, which the engine seeds per sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data.round_robin import center_crop
from thesislib.data.transforms import resize_image, to_tensor

__all__ = ["CenterResize", "ImageNetCrop", "ImagesOnly", "LabelledResize", "RandomCropFlip", "RandomResizeCropFlip",
           "AreaCropFlip", "ResizeCenterCrop", "to_unit_range"]


def to_unit_range(x: Tensor) -> Tensor:
    """Images with values in [0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


class ImagesOnly(Dataset):
    """The images of a dataset of ``(image, label)`` items (labels dropped)."""

    def __init__(self, dataset: Dataset, transform: Any = None) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Tensor:
        x = self.dataset[i][0]
        return self.transform(x) if self.transform is not None else x


@dataclass(frozen=True)
class RandomCropFlip:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: a random crop and a coin-flip mirror
    (drawn from torch's global generator, which the engine seeds per sample)."""

    size: int

    def __call__(self, image: Tensor) -> Tensor:
        x = to_unit_range(image.float() / 255.0)
        top = int(torch.randint(0, x.shape[-2] - self.size + 1, ()))
        left = int(torch.randint(0, x.shape[-1] - self.size + 1, ()))
        x = x[..., top:top + self.size, left:left + self.size]
        return x.flip(-1) if bool(torch.rand(()) < 0.5) else x


@dataclass(frozen=True)
class RandomResizeCropFlip:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: resize so that the shorter side is a random
    integer in [size, round(max_scale x size)], then :class:`RandomCropFlip`.

    STL-10 (thesis §3.4: "we randomly resize the images and extract 96x96 crops"): a 96-pixel crop of a
    96-pixel image is the whole image, so without the resize only the flip would vary. The thesis gives
    no scale range; up to 1.15 x (the ImageNet crop's margin, :class:`ImageNetCrop`) is a decision.
    Not :class:`AreaCropFlip` (torchvision's RandomResizedCrop: a random area fraction and aspect ratio)."""

    size: int
    max_scale: float = 1.15

    def __call__(self, image: Tensor) -> Tensor:
        high = max(self.size, int(round(self.max_scale * self.size)))
        side = int(torch.randint(self.size, high + 1, ()))
        h, w = image.shape[-2:]
        scale = side / min(h, w)
        big = resize_image(image.float() / 255.0, (max(side, round(h * scale)), max(side, round(w * scale))))
        return RandomCropFlip(self.size)((big * 255.0).clamp(0, 255))


@dataclass(frozen=True)
class CenterResize:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1], resized whole (evaluation)."""

    size: int

    def __call__(self, image: Tensor) -> Tensor:
        return to_unit_range(resize_image(image.float() / 255.0, self.size))


@dataclass(frozen=True)
class ImageNetCrop:
    """ImageNet item dict -> float (3, size, size) in [-1, 1]: resize to 1.15 x size, random crop."""

    size: int

    def __call__(self, item: dict[str, Any]) -> Tensor:
        big = resize_image(to_tensor(item["image"]), int(round(self.size * 1.15)))
        return RandomCropFlip(self.size)((big * 255.0).clamp(0, 255))


@dataclass(frozen=True)
class LabelledResize:
    """ImageNet item dict -> (float (3, size, size) in [-1, 1], label), resized whole (probes)."""

    size: int

    def __call__(self, item: dict[str, Any]) -> tuple[Tensor, int]:
        return to_unit_range(resize_image(to_tensor(item["image"]), self.size)), int(item["label"])


@dataclass(frozen=True)
class AreaCropFlip:
    """Float image (3, H, W) in [0, 1] -> (3, size, size): torchvision's RandomResizedCrop (a region of
    ``scale`` x the image's area and aspect ratio in [3/4, 4/3], resized to ``size``) and a coin-flip
    mirror, drawn from torch's global generator (which the engine seeds per sample). The ImageNet
    training view of AutoNovel's released code: ``RandomResizedCrop(224, scale=(0.5, 1.0))`` + flip.
    Not :class:`RandomResizeCropFlip` (STL-10's shorter-side jitter, then a fixed-size crop)."""

    size: int
    scale: tuple[float, float] = (0.5, 1.0)

    def __call__(self, image: Tensor) -> Tensor:
        from torchvision.transforms import RandomResizedCrop

        top, left, h, w = RandomResizedCrop.get_params(image, list(self.scale), [3.0 / 4.0, 4.0 / 3.0])
        x = resize_image(image[..., top:top + h, left:left + w], self.size)
        return x.flip(-1) if bool(torch.rand(()) < 0.5) else x


@dataclass(frozen=True)
class ResizeCenterCrop:
    """Float image (3, H, W) -> (3, size, size): the shorter side resized to ``resize`` (aspect kept),
    then the central ``size`` x ``size`` crop (ImageNet evaluation: ``Resize(256)`` + ``CenterCrop(224)``)."""

    resize: int
    size: int

    def __call__(self, image: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        scale = self.resize / min(h, w)
        x = resize_image(image, (max(self.size, round(h * scale)), max(self.size, round(w * scale))))
        return center_crop(x, self.size)
