"""The chapter's data: unlabelled images for self-supervision, labelled ones for the probes, and the
procedural faces of the rotation-shortcut diagnostic.

Images are float32 (C, L, L) in [-1, 1] at ``load_size`` L (F's tanh range); C sees ``image_size`` crops.

* ``smoke``: the 1,797 scikit-learn digits, upscaled to ``load_size``; a seeded stratified 70/30 split per
  replicate. Self-supervision on the training part (labels unused); the probes train on ``probe_per_class``
  labelled training digits per class and test on the test part, both centre-cropped to ``image_size`` (the
  scale C saw).
* ``stl10``: the unlabelled split plus the labelled train split (the thesis's 100k + 5k), random
  ``load_size`` crops and flips; probes on train / test, resized to ``load_size`` and centre-cropped.
* ``celeba``: the aligned crops at ``load_size`` with flips; no single-label probe (Table 4.3's 40-attribute
  average precision needs a multi-label probe, not wired here): ``probe_train`` is None.
* ``imagenet``: ILSVRC train, 1.15 x ``load_size`` resize then a random ``load_size`` crop; probes on a
  ``probe_per_class`` subsample of train, tested on val.
* :func:`procedural_faces`: "faces" made of isotropic parts only (a bright disk, two dark eye disks, a dark
  mouth disk) on noise, either *aligned* (filling the frame at a fixed place, like CelebA's aligned crops) or
  *placed* at a random position and scale inside the frame. Their orientation is in the arrangement of the parts,
  not in any part's texture.

Missing data stops in the shared loaders with their message naming ``$THESISLIB_DATA/<dir>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from thesislib.data.celeba import CelebA
from thesislib.data.crops import (
    CenterResize,
    ImageNetCrop,
    ImagesOnly,
    LabelledResize,
    RandomCropFlip,
    RandomResizeCropFlip,
    to_unit_range,
)
from thesislib.data.digits import load_digits_split
from thesislib.data.imagenet import ImageNetLocalization
from thesislib.data.roots import dataset_dir
from thesislib.data.round_robin import center_crop
from thesislib.data.stl10 import STL10
from thesislib.data.tensors import TensorImages
from thesislib.data.transforms import resize_image
from thesislib.eval.probe import per_class_subset
from thesislib.methods.lci.config import LCIParams

__all__ = ["ChapterData", "CenterCrop", "chapter_data", "procedural_faces"]


@dataclass(frozen=True)
class ChapterData:
    """``unlabelled``: the self-supervised images (items float (C, L, L)); ``probe_train`` / ``probe_test``:
    ``(image (C, S, S), label)`` datasets for the linear probes (None where no single-label probe exists);
    ``test_images``: held-out images (N, C, L, L) for the figures and the diagnostics."""

    unlabelled: Dataset
    probe_train: Dataset | None
    probe_test: Dataset | None
    test_images: Tensor


@dataclass(frozen=True)
class CenterCrop:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: resized to ``load`` then the central ``size`` crop."""

    load: int
    size: int

    def __call__(self, image: Tensor) -> Tensor:
        return center_crop(CenterResize(self.load)(image), self.size)


def _digits(params: LCIParams, seed: int) -> ChapterData:
    split = load_digits_split(test_fraction=0.3, seed=seed)

    def up(x: Tensor) -> Tensor:
        return to_unit_range(resize_image(x.float(), params.load_size).clamp(0, 1))

    x_train, x_test = up(split.x_train), up(split.x_test)
    x_ssl = x_train[: params.n_unlabelled] if params.n_unlabelled else x_train
    keep = torch.as_tensor(per_class_subset(split.y_train, params.probe_per_class, seed))
    crop = params.image_size
    return ChapterData(unlabelled=TensorImages(x_ssl),
                       probe_train=TensorDataset(center_crop(x_train[keep], crop), split.y_train[keep]),
                       probe_test=TensorDataset(center_crop(x_test, crop), split.y_test), test_images=x_test)


def _subset(dataset: Dataset, n: int) -> Dataset:
    return torch.utils.data.Subset(dataset, range(n)) if n else dataset


def _stl10(params: LCIParams) -> ChapterData:
    root = dataset_dir("stl10", data_root=params.data_root)
    ssl = _subset(ImagesOnly(STL10(("train", "unlabeled"), root=root), RandomCropFlip(params.load_size)),
                  params.n_unlabelled)
    evaluate = CenterResize(params.probe_size) if params.probe_size else CenterCrop(params.load_size, params.image_size)
    train_view = RandomResizeCropFlip(params.probe_size) if params.probe_views > 1 else evaluate
    test = STL10("test", root=root, transform=evaluate)
    figures = STL10("test", root=root, transform=CenterResize(params.load_size))
    return ChapterData(unlabelled=ssl, probe_train=STL10("train", root=root, transform=train_view), probe_test=test,
                       test_images=torch.stack([figures[i][0] for i in range(64)]))


def _celeba(params: LCIParams) -> ChapterData:
    root = dataset_dir("celeba", data_root=params.data_root)
    ssl = _subset(CelebA("train", root=root, size=params.load_size, transform=RandomCropFlip(params.load_size)),
                  params.n_unlabelled)
    test = CelebA("test", root=root, size=params.load_size, transform=CenterResize(params.load_size))
    return ChapterData(unlabelled=ssl, probe_train=None, probe_test=None,
                       test_images=torch.stack([test[i] for i in range(64)]))


def _imagenet(params: LCIParams) -> ChapterData:
    root = dataset_dir("imagenet", data_root=params.data_root)
    ssl = _subset(ImageNetLocalization("train", root=root, transform=ImageNetCrop(params.load_size)),
                  params.n_unlabelled)
    labelled = LabelledResize(params.image_size)
    val = ImageNetLocalization("val", root=root, transform=labelled)
    train = ImageNetLocalization("train", root=root, transform=labelled)
    probe_train = torch.utils.data.Subset(train, per_class_subset(train.labels, params.probe_per_class, params.seed))
    figures = ImageNetLocalization("val", root=root, transform=LabelledResize(params.load_size))
    return ChapterData(unlabelled=ssl, probe_train=probe_train, probe_test=val,
                       test_images=torch.stack([figures[i][0] for i in range(64)]))


def chapter_data(params: LCIParams, seed: int) -> ChapterData:
    """The :class:`ChapterData` of ``params.data`` (the smoke split depends on ``seed``)."""
    if params.data == "smoke":
        return _digits(params, seed)
    if params.data == "stl10":
        return _stl10(params)
    if params.data == "celeba":
        return _celeba(params)
    return _imagenet(params)


def _disk(rows: Tensor, cols: Tensor, centre: tuple[float, float], radius: float) -> Tensor:
    """Soft disk (S, S) in [0, 1] (one-pixel antialiased edge)."""
    d = torch.sqrt((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)
    return (radius + 0.5 - d).clamp(0.0, 1.0)


def procedural_faces(n: int, size: int, aligned: bool, seed: int) -> Tensor:
    """``n`` grey "faces" (n, 1, size, size) in [-1, 1], upright, drawn with ``seed``: isotropic parts only.

    Three dark disks on noise N(0.6, 0.2²): two eyes (radius 0.15 s) at (−0.45 s, ±0.5 s) from the face centre and
    a mouth (radius 0.2 s) at (+0.5 s, 0); s is the face scale. The orientation is only in the parts'
    arrangement: no part, and no outline, is oriented. ``aligned``: s = 0.85 x size, centred (±1 px jitter), a
    tight crop (as CelebA's aligned crops) whose parts sit at fixed places at the frame, the mouth cut by it;
    otherwise s is uniform in [0.28, 0.31] x size and the face is placed uniformly wherever it fits. At size 32
    the placed faces' parts are 6-7 px apart edge to edge, beyond a 5-pixel receptive field."""
    rng = np.random.default_rng([seed, int(aligned)])
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    out = torch.empty(n, 1, size, size)
    for i in range(n):
        if aligned:
            scale = 0.85 * size
            cy, cx = (size - 1) / 2 + rng.uniform(-1, 1), (size - 1) / 2 + rng.uniform(-1, 1)
        else:
            scale = rng.uniform(0.28 * size, 0.31 * size)
            cy = rng.uniform(0.6 * scale, size - 1 - 0.75 * scale)
            cx = rng.uniform(0.7 * scale, size - 1 - 0.7 * scale)
        img = torch.from_numpy(rng.normal(0.6, 0.2, (size, size)).astype(np.float32))
        parts = [((cy - 0.45 * scale, cx - 0.5 * scale), 0.15 * scale),
                 ((cy - 0.45 * scale, cx + 0.5 * scale), 0.15 * scale),
                 ((cy + 0.5 * scale, cx), 0.2 * scale)]
        for centre, r in parts:
            d = _disk(rows, cols, centre, r)
            img = img * (1 - d) - 0.8 * d
        out[i, 0] = img.clamp(-1, 1)
    return out
