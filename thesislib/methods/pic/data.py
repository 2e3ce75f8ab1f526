"""PIC's data: RGB images -> the L channel and the low-resolution Lab canvas (thesis §5.3.1).

For an image X (uint8 RGB, (N, 3, H, W)) with Lab values from :func:`thesislib.data.color.rgb_to_lab`,
and the chroma factor s (2 for CIFAR-10, 4 for ImageNet 128²):

* ``L``: the full-resolution lightness scaled to [-1, 1], ``L / 50 - 1``, (N, 1, H, W): the input of g^w;
* ``canvas``: the Lab image at (H/s, W/s), by s x s area averaging of L, a and b, with a and b snapped
  onto the 256-bin DMOL grid (:func:`thesislib.data.color.quantize_ab`, Eq. 5 there), (N, 3, H/s, W/s)
  in [-1, 1]: channel 0 the low-resolution L (given), channels 1, 2 the chroma that f^θ models.
  The released code's autoregressive canvas is the same 3-channel low-resolution Lab image.

:func:`load_data` returns the train/test items of a run: the ambiguity images (smoke; with their
region, disk and colour labels at chroma resolution for the benchmark's assertions), random crops of
the bundled colour photos (the illustrative cell, :data:`PHOTO_SIDE`), CIFAR-10
(``$THESISLIB_DATA/cifar10``, python pickles) or ILSVRC 2012 folders rescaled to 128²
(``$THESISLIB_DATA/imagenet``, CLS-LOC layout); a missing dataset stops with the layout it expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from thesislib.data.cifar import load_cifar_tensors
from thesislib.data.color import quantize_ab, rgb_to_lab
from thesislib.data.imagenet_downsampled import ImageNet128
from thesislib.data.pixelcnn_smoke import AmbiguityImages, ambiguity_images, photo_crops
from thesislib.data.roots import dataset_dir
from thesislib.methods.pic.config import PICParams

__all__ = ["AmbiguityLabels", "LabItems", "PICData", "ambiguity_labels", "lab_inputs", "load_data"]


def lab_inputs(rgb: Tensor, chroma_factor: int) -> tuple[Tensor, Tensor]:
    """uint8 RGB (N, 3, H, W) -> (L (N, 1, H, W), canvas (N, 3, H/s, W/s)), both in [-1, 1] (module docstring)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3 or rgb.dtype != torch.uint8:
        raise ValueError(f"rgb must be uint8 (N, 3, H, W), got {rgb.dtype} {tuple(rgb.shape)}")
    if rgb.shape[2] % chroma_factor or rgb.shape[3] % chroma_factor:
        raise ValueError(f"image size {tuple(rgb.shape[2:])} is not divisible by chroma_factor {chroma_factor}")
    lab = rgb_to_lab(rgb)
    low = F.avg_pool2d(lab, chroma_factor) if chroma_factor > 1 else lab
    canvas = torch.cat([low[:, :1] / 50.0 - 1.0, quantize_ab(low[:, 1:])], dim=1)
    return lab[:, :1] / 50.0 - 1.0, canvas


class LabItems(Dataset):
    """Items ``(L (1, H, W), canvas (3, h, w))`` of a dataset of ``(uint8 image, label)`` pairs,
    converted on access (for ILSVRC, which does not fit in memory as tensors)."""

    def __init__(self, base: Dataset, chroma_factor: int) -> None:
        self.base, self.chroma_factor = base, chroma_factor

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.base[index][0]
        big_l, canvas = lab_inputs(image[None], self.chroma_factor)
        return big_l[0], canvas[0]


@dataclass(frozen=True)
class AmbiguityLabels:
    """Labels of the ambiguity test images at chroma resolution (N, h, w): ``region`` 0 background,
    1 square, 2 disk where the whole s x s block is of that region, else -1; ``disk`` k where the
    block lies wholly in disk k, else -1; ``yellow`` (N, n_disks) the true colour of each disk."""

    region: Tensor
    disk: Tensor
    yellow: Tensor


def _uniform_blocks(labels: Tensor, s: int) -> Tensor:
    """(N, H, W) int64 -> (N, H/s, W/s): the label of every s x s block that has one label, else -1."""
    x = labels[:, None].float()
    hi, lo = F.max_pool2d(x, s), -F.max_pool2d(-x, s)
    return torch.where(hi == lo, hi, torch.full_like(hi, -1.0))[:, 0].long()


def ambiguity_labels(images: AmbiguityImages, chroma_factor: int) -> AmbiguityLabels:
    """The benchmark's region / disk labels at chroma resolution (see :class:`AmbiguityLabels`)."""
    return AmbiguityLabels(_uniform_blocks(images.region, chroma_factor),
                           _uniform_blocks(images.disk_id, chroma_factor), images.disk_yellow)


@dataclass(eq=False)
class PICData:
    """A run's data: ``train`` and ``test`` datasets of ``(L, canvas)`` items, the first test images
    as uint8 RGB (``test_rgb``, for figures and saturation) and, for the ambiguity images, their labels."""

    kind: str
    train: Dataset
    test: Dataset
    test_rgb: Tensor
    labels: AmbiguityLabels | None = None

    def test_batch(self, n: int) -> tuple[Tensor, Tensor]:
        """(L, canvas) of the first ``n`` test images, stacked."""
        items = [self.test[i] for i in range(min(n, len(self.test)))]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


#: Photo crops: each photo is resized so its shorter side is ``PHOTO_SIDE`` x ``image_size`` before
#: cropping, so a crop shows about a quarter of the photo's height (an object part, not a texture patch).
PHOTO_SIDE = 4


def _first(dataset: Dataset, n: int) -> Dataset:
    return dataset if n <= 0 or n >= len(dataset) else Subset(dataset, range(n))


def load_data(params: PICParams) -> PICData:
    """The data of one run (module docstring). The ambiguity images and photo crops are a new draw per
    seed (train from ``seed``, test from ``seed + 10**6``; test crops come from the same photos as the
    training crops and may overlap them); a missing real dataset raises
    :class:`~thesislib.data.DatasetNotFoundError` naming ``$THESISLIB_DATA/<subdir>`` and its layout."""
    s = params.chroma_factor
    if params.data == "ambiguity":
        kwargs = {"size": params.image_size, "n_disks": params.n_disks, "n_squares": params.n_squares}
        train = ambiguity_images(params.n_train, seed=params.seed, **kwargs)
        test = ambiguity_images(params.n_test, seed=params.seed + 10**6, **kwargs)
        return PICData("ambiguity", TensorDataset(*lab_inputs(train.images, s)),
                       TensorDataset(*lab_inputs(test.images, s)), test.images, ambiguity_labels(test, s))
    if params.data == "photos":
        side = PHOTO_SIDE * params.image_size
        train_rgb = photo_crops(params.n_train, seed=params.seed, size=params.image_size, side=side).images
        test_rgb = photo_crops(params.n_test, seed=params.seed + 10**6, size=params.image_size, side=side).images
        return PICData("photos", TensorDataset(*lab_inputs(train_rgb, s)), TensorDataset(*lab_inputs(test_rgb, s)),
                       test_rgb)
    if params.data == "cifar10":
        root = dataset_dir("cifar10", data_root=params.data_root)
        x_train, _ = load_cifar_tensors("cifar10", True, root)
        x_test, _ = load_cifar_tensors("cifar10", False, root)
        if params.n_train:
            x_train = x_train[: params.n_train]
        if params.n_test:
            x_test = x_test[: params.n_test]
        return PICData("cifar10", TensorDataset(*lab_inputs(x_train, s)), TensorDataset(*lab_inputs(x_test, s)),
                       x_test[: max(params.n_sample_images, params.n_saturation)])
    root = dataset_dir("imagenet", data_root=params.data_root)
    train = _first(ImageNet128("train", root=root, size=params.image_size), params.n_train)
    test = _first(ImageNet128("val", root=root, size=params.image_size), params.n_test)
    n_rgb = min(len(test), max(params.n_sample_images, params.n_saturation))
    rgb = torch.stack([test[i][0] for i in range(n_rgb)])
    return PICData("imagenet128", LabItems(train, s), LabItems(test, s), rgb)
