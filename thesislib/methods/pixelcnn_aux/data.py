"""The chapter's data: coloured digits / CIFAR-10 for the grayscale PixelCNN, procedural faces /
CelebA / CIFAR-10 for the pyramid, and the per-part training items.

:func:`gray_images` and :func:`pyramid_images` return an :class:`ImageSplit` of uint8 RGB images
(N, 3, S, S) (the PixelCNNs' 8-bit grid); :class:`PartItems` turns one split into the items a
part trains on (module :mod:`~thesislib.methods.pixelcnn_aux.config` names the parts):

* ``plain``: ``{"x": X}``; ``gray``: ``{"x": X̂}`` with X̂ = ⌊Y/16⌋ the 4-bit luma (uint8 (1, S, S));
* ``color``: ``{"x": X, "aux": X̂}``;
* ``base``: ``{"x": X_L}``; ``level<s>``: ``{"x": X at side s, "aux": X at side s/2}``, the pyramid
  by 2x2 average pooling rounded back to 8 bits (:func:`thesislib.data.color.image_pyramid`).

Real data goes through the shared loaders (missing data: their error naming
``$THESISLIB_DATA/<dir>`` and the layout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data.celeba import CelebA
from thesislib.data.cifar import load_cifar_tensors
from thesislib.data.color import gray4, image_pyramid
from thesislib.data.pixelcnn_smoke import colored_digits, smoke_faces
from thesislib.data.roots import dataset_dir
from thesislib.methods.pixelcnn_aux.config import PixelCNNAuxParams

__all__ = ["ImageSplit", "PartItems", "gray_images", "pyramid_images"]


@dataclass(frozen=True)
class ImageSplit:
    """``train`` / ``test``: uint8 images (N, 3, S, S) as tensors or datasets of such items;
    ``train_labels`` / ``test_labels``: int64 (N,) class labels where the data has them (else None)."""

    train: Tensor | Dataset
    test: Tensor | Dataset
    train_labels: Tensor | None = None
    test_labels: Tensor | None = None


def _limit(x: Tensor, y: Tensor | None, n: int) -> tuple[Tensor, Tensor | None]:
    return (x, y) if n == 0 else (x[:n], None if y is None else y[:n])


def gray_images(params: PixelCNNAuxParams, seed: int) -> ImageSplit:
    """Grayscale-experiment images. Smoke: all 1,797 scikit-learn digits coloured afresh by ``seed``
    (note §3.6(a)1: random saturated stroke, dark background, noise 0.03), split by a seeded
    permutation into the first ``n_train`` and the next ``n_test``. CIFAR-10: the official
    train / test batches (first ``n_train`` / ``n_test`` when non-zero)."""
    if params.data == "cifar10":
        root = dataset_dir("cifar10", data_root=params.data_root)
        tx, ty = load_cifar_tensors("cifar10", True, root=root)
        vx, vy = load_cifar_tensors("cifar10", False, root=root)
        tx, ty = _limit(tx, ty, params.n_train)
        vx, vy = _limit(vx, vy, params.n_test)
        return ImageSplit(tx, vx, ty, vy)
    digits = colored_digits(0, seed=seed, size=params.gray_side)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(digits.labels)))
    n_train = params.n_train or len(order) - params.n_test
    if n_train + params.n_test > len(order):
        raise ValueError(f"n_train + n_test = {n_train + params.n_test} exceeds the {len(order)} digits")
    tr, te = order[:n_train], order[n_train: n_train + params.n_test]
    return ImageSplit(digits.images[tr], digits.images[te], digits.labels[tr], digits.labels[te])


def pyramid_images(params: PixelCNNAuxParams, seed: int) -> ImageSplit:
    """Pyramid-experiment images at the top resolution. Smoke: procedural faces
    (``pyramid_train`` + ``pyramid_test``, drawn from ``seed``); CelebA: the thesis's 128 crop,
    downscaled to ``pyramid_size``, random 95 % / 5 % split (seed 0, fixed for every replicate);
    CIFAR-10: the official split."""
    if params.data == "cifar10":
        split = gray_images(params, seed)
        return ImageSplit(split.train, split.test)
    if params.data == "celeba":
        root = dataset_dir("celeba", data_root=params.data_root)
        train = CelebA("train", root=root, partition="random", size=params.pyramid_size, limit=params.n_train)
        test = CelebA("test", root=root, partition="random", size=params.pyramid_size, limit=params.n_test)
        return ImageSplit(train, test)
    faces = smoke_faces(params.pyramid_train + params.pyramid_test, seed=seed, size=params.pyramid_size)
    return ImageSplit(faces[: params.pyramid_train], faces[params.pyramid_train:])


class PartItems(Dataset):
    """The training / evaluation items of one part over a split's images (module docstring).

    ``images``: uint8 (N, 3, S, S) or a dataset of uint8 (3, S, S) tensors; ``part``: a part name;
    ``levels``: the pyramid's number of halvings below S (for ``base`` / ``level<s>``)."""

    def __init__(self, images: Tensor | Dataset, part: str, levels: int = 0) -> None:
        self.images, self.part, self.levels = images, part, levels
        self._side = int(part[len("level"):]) if part.startswith("level") else 0
        if not part.startswith("level") and part not in ("plain", "gray", "color", "base"):
            raise ValueError(f"unknown part {part!r}")

    def __len__(self) -> int:
        return len(self.images)

    def _pyramid(self, image: Tensor) -> list[Tensor]:
        return image_pyramid(image, self.levels + 1)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.images[index]
        if self.part == "plain":
            return {"x": image}
        if self.part == "gray":
            return {"x": gray4(image)}
        if self.part == "color":
            return {"x": image, "aux": gray4(image)}
        pyramid = self._pyramid(image)
        if self.part == "base":
            return {"x": pyramid[-1]}
        k = int(round(math.log2(image.shape[-1] / self._side)))
        if k < 0 or k >= len(pyramid) - 1 or pyramid[k].shape[-1] != self._side:
            raise ValueError(f"part {self.part} does not fit images of side {image.shape[-1]} "
                             f"with {self.levels} levels")
        return {"x": pyramid[k], "aux": pyramid[k + 1]}
