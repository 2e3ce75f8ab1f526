"""ImageNet at the PixelCNN chapters' resolutions: 32x32 and 64x64 releases, and 128x128 from ILSVRC.

Decision on what is read (the thesis trains PIC on "ILSVRC 2012 rescaled to 128x128" without
saying how; the PixelCNN papers it compares with use 32x32 and 64x64 ImageNet):

* **32 and 64**: the official *Downsampled ImageNet* npz release of Chrabaszcz et al. (2017),
  which has labels. Each file holds ``data`` uint8 (N, 3*S*S) -- one row per image, the R
  plane, then G, then B, each row-major, as CIFAR -- and ``labels`` (N,) in 1..1000 (returned
  0-based). Under ``$THESISLIB_DATA``::

      imagenet32/Imagenet32_train_npz/train_data_batch_1.npz ... train_data_batch_10.npz
      imagenet32/Imagenet32_val_npz/val_data.npz
      imagenet64/Imagenet64_train_part1_npz/train_data_batch_1.npz ... (any Imagenet64_train*_npz/)
      imagenet64/Imagenet64_val_npz/val_data.npz

  Also accepted, in the same directory: the unlabeled PNG release of van den Oord et al. (2016)
  on which PixelRNN/PixelCNN report bits/dim (``train_32x32/*.png``, ``valid_32x32/*.png``;
  ``train_64x64``, ``valid_64x64``). When both are there the npz files are read. Labels of the
  PNG release are -1.
* **128**: the ILSVRC CLS-LOC folders read by :class:`thesislib.data.imagenet.ImageNetLocalization`
  (its layout; ``root`` is the ``imagenet/`` directory), each image rescaled online by the shared
  resize policy (:func:`thesislib.data.transforms.resize_image`) after a central square crop of
  the shorter side (``crop="center"``, the default: the aspect ratio is kept) or without crop
  (``crop="none"``: the whole image squashed to a square). Rescaling offline into folders is not
  needed: the resize is deterministic.

Everything is returned as uint8 RGB (N, 3, S, S) with int64 labels (N,).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.imagenet import ImageNetLocalization
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir
from thesislib.data.transforms import resize_image, to_tensor

DATASET = "Downsampled ImageNet"
RELEASE_SIZES = (32, 64)
SPLITS = ("train", "val")
CROPS = ("center", "none")
_DOWNLOAD = ("https://image-net.org/download-images (Downsampled ImageNet 32x32 / 64x64, npz; unpack each "
             "zip into imagenet32/ or imagenet64/)")


def layout(size: int) -> str:
    """The accepted layouts of the ``size`` release (see the module docstring)."""
    d = f"imagenet{size}"
    return (f"{d}/Imagenet{size}_train*_npz/train_data_batch_<k>.npz   (npz release, keys data, labels)\n"
            f"{d}/Imagenet{size}_val_npz/val_data.npz\n"
            f"or the PNG release: {d}/train_{size}x{size}/*.png and {d}/valid_{size}x{size}/*.png")


def _check_size(size: int) -> None:
    if size not in RELEASE_SIZES:
        raise ValueError(f"the downsampled releases are {RELEASE_SIZES}; for 128 use ImageNet128, got {size}")


def _batch_number(path: Path) -> int:
    match = re.search(r"_(\d+)\.npz$", path.name)
    return int(match.group(1)) if match else 0


def release_files(size: int, split: str, root: str | os.PathLike[str] | None = None) -> tuple[str, list[Path]]:
    """(``"npz"`` or ``"png"``, the files of ``split`` in reading order); DatasetNotFoundError if neither."""
    _check_size(size)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    base = dataset_dir(f"imagenet{size}", root)
    if split == "train":
        npz = sorted(base.glob(f"Imagenet{size}_train*_npz/train_data_batch_*.npz"), key=_batch_number)
    else:
        npz = sorted(base.glob(f"Imagenet{size}_val_npz/val_data.npz"))
    if npz:
        return "npz", npz
    folder = base / f"{'train' if split == 'train' else 'valid'}_{size}x{size}"
    png = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if png:
        return "png", png
    wanted = (f"Imagenet{size}_train*_npz/train_data_batch_*.npz" if split == "train"
              else f"Imagenet{size}_val_npz/val_data.npz") + f" or {folder.name}/*.png"
    raise DatasetNotFoundError(f"{DATASET} {size}x{size}", base, layout(size), missing=wanted, download=_DOWNLOAD)


def read_npz_batch(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One npz file -> (images uint8 (N, 3, S, S), labels int64 (N,) 0-based); corrupt -> error naming it."""
    try:
        with np.load(path) as f:
            data, labels = np.asarray(f["data"]), np.asarray(f["labels"]).reshape(-1)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetCorruptError(DATASET, path, f"unreadable npz batch: {type(err).__name__}: {err}") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * size * size:
        raise DatasetCorruptError(DATASET, path,
                                  f"data {data.dtype} {data.shape}, expected uint8 (N, {3 * size * size})")
    if len(labels) != len(data):
        raise DatasetCorruptError(DATASET, path, f"{len(data)} images with {len(labels)} labels")
    if labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise DatasetCorruptError(DATASET, path, "labels outside 1..1000")
    return data.reshape(-1, 3, size, size), labels.astype(np.int64) - 1


def load_downsampled_imagenet(size: int, split: str, root: str | os.PathLike[str] | None = None,
                              limit: int = 0) -> tuple[Tensor, Tensor]:
    """A split of the 32 or 64 release: images uint8 (N, 3, S, S) RGB, labels int64 (N,)
    (0..999; -1 for the unlabeled PNG release). ``limit`` > 0 stops after that many images
    (files are read in batch order, so the first ``limit`` images are always the same).
    Full train sizes: 1,281,167 images, 3.9 GB at 32 and 15.7 GB at 64 in memory."""
    kind, files = release_files(size, split, root)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    count = 0
    for path in files:
        if limit and count >= limit:
            break
        if kind == "npz":
            x, y = read_npz_batch(path, size)
        else:
            img = read_rgb(path, DATASET)
            if img.shape[:2] != (size, size):
                raise DatasetCorruptError(DATASET, path, f"image of {img.shape[:2]}, expected {size}x{size}")
            x, y = img.transpose(2, 0, 1)[None], np.full(1, -1, dtype=np.int64)
        images.append(x)
        labels.append(y)
        count += len(x)
    x_all = np.concatenate(images) if images else np.zeros((0, 3, size, size), np.uint8)
    y_all = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    if limit:
        x_all, y_all = x_all[:limit], y_all[:limit]
    return torch.from_numpy(np.ascontiguousarray(x_all)), torch.from_numpy(y_all)


def rescale_square(image: np.ndarray, size: int, crop: str = "center") -> Tensor:
    """uint8 (H, W, 3) -> uint8 (3, size, size): central square crop of the shorter side
    (``crop="center"``) or none (``"none"``), then the shared resize policy, rounded."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    if crop == "center":
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
    x = resize_image(to_tensor(np.ascontiguousarray(image)), size)
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


class ImageNet128(torch.utils.data.Dataset):
    """ILSVRC 2012 CLS-LOC ``train`` / ``val`` rescaled to ``size`` (128 for PIC): items
    (uint8 (3, size, size), int label). Layout and ``root`` as
    :class:`~thesislib.data.imagenet.ImageNetLocalization` (its checks and errors apply);
    ``classes``, ``max_per_class`` select a subset; ``crop`` as :func:`rescale_square`."""

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None, size: int = 128,
                 crop: str = "center", classes: Sequence[str] | None = None, max_per_class: int = 0,
                 transform: Callable[[Tensor], Any] | None = None) -> None:
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        self.base = ImageNetLocalization(split, root=root, classes=classes, max_per_class=max_per_class)
        self.size, self.crop, self.transform = int(size), crop, transform
        self.labels = self.base.labels

    def __len__(self) -> int:
        return len(self.base)

    def read(self, index: int) -> Tensor:
        return rescale_square(self.base.read(index)["image"], self.size, self.crop)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x = self.read(index)
        return (self.transform(x) if self.transform is not None else x), int(self.labels[index])

    def tensors(self) -> tuple[Tensor, Tensor]:
        """The whole selection: uint8 (N, 3, size, size) and int64 labels (N,)."""
        images = [self.read(i) for i in range(len(self))]
        x = torch.stack(images) if images else torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return x, torch.as_tensor(self.labels, dtype=torch.int64)
