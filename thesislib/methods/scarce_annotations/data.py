"""Data of the chapter: a training set of which only a few images per class keep their label, and a test set.

* ``digits`` (smoke): the 1,797 scikit-learn digits (N, 1, 8, 8) floats in [0, 1], ``digits_test``
  of them held out (stratified, :func:`thesislib.data.digits.load_digits_split`);
* ``cifar10`` / ``cifar100``: the 50,000 / 10,000 python-pickle splits, uint8 (N, 3, 32, 32);
* ``svhn``: ``train_32x32.mat`` (73,257) / ``test_32x32.mat`` (26,032), uint8;
* ``mit67`` / ``places10`` (Table 2): MIT Indoor-67's TrainImages / TestImages lists and the ``places_classes``
  of Places205 (train / validation csv), uint8 (N, 3, image_size, image_size)
  (:mod:`thesislib.data.scene_datasets`); :func:`imagenet32` is the Downsampled ImageNet 32x32 of the
  ImageNet pre-training for the 32x32 targets.

The labelled subset (:func:`labelled_subset`) has ``labels_per_class`` images of every class, drawn
with the replicate's seed; every method of a replicate uses the same subset (thesis §4.1). A missing
dataset raises :class:`~thesislib.data.errors.DatasetNotFoundError` naming ``$THESISLIB_DATA/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.data.cifar import crop_flip, load_cifar_tensors, random_crop_flip
from thesislib.data.digits import load_digits_split
from thesislib.data.imagenet_downsampled import load_downsampled_imagenet
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir
from thesislib.data.scene_datasets import load_mit67, load_places
from thesislib.data.svhn import load_svhn_tensors
from thesislib.data.transforms import normalize, random_square_crop
from thesislib.methods.scarce_annotations.config import ScarceParams


@dataclass(frozen=True)
class ScarceData:
    """``train_images`` (N, C, H, W), ``train_labels`` (N,) (read only at the labelled indices and for
    monitoring), ``test_images`` / ``test_labels``, and C classes."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int
    name: str

    @property
    def train_set(self) -> TensorDataset:
        return TensorDataset(self.train_images, self.train_labels)

    @property
    def test_set(self) -> TensorDataset:
        return TensorDataset(self.test_images, self.test_labels)


def load_data(params: ScarceParams) -> ScarceData:
    """Training and test images of ``params.data``."""
    if params.data == "digits":
        s = load_digits_split(test_fraction=params.digits_test / 1797, seed=0)
        return ScarceData(s.x_train, s.y_train, s.x_test, s.y_test, 10, "digits")
    if params.data == "mit67":
        root = dataset_dir("mit67", data_root=params.data_root)
        (xtr, ytr, classes), (xte, yte, _) = (load_mit67(s, params.image_size, root) for s in ("train", "test"))
        if len(classes) != params.num_classes:
            raise DatasetCorruptError("MIT Indoor-67", root / "Images", f"{len(classes)} class folders, the release "
                                      f"has {params.num_classes}")
        return ScarceData(xtr, ytr, xte, yte, params.num_classes, params.data)
    if params.data == "places10":
        root = dataset_dir("places205", data_root=params.data_root)
        xtr, ytr = load_places("train", params.places_classes, params.image_size, root, params.places_max_per_class)
        xte, yte = load_places("test", params.places_classes, params.image_size, root)
        return ScarceData(xtr, ytr, xte, yte, params.num_classes, params.data)
    if params.data == "svhn":
        root = dataset_dir("svhn", data_root=params.data_root)
        (xtr, ytr), (xte, yte) = load_svhn_tensors("train", root), load_svhn_tensors("test", root)
    else:
        root = dataset_dir(params.data, data_root=params.data_root)
        (xtr, ytr), (xte, yte) = (load_cifar_tensors(params.data, t, root) for t in (True, False))
    return ScarceData(xtr, ytr, xte, yte, params.num_classes, params.data)


def imagenet32(params: ScarceParams) -> TensorDataset:
    """The 1,281,167 training images (uint8 (N, 3, 32, 32)) and labels 0..999 of Downsampled ImageNet 32x32,
    ``$THESISLIB_DATA/imagenet32`` (or ``data_root``/imagenet32), for the ImageNet pre-training of Table 2."""
    x, y = load_downsampled_imagenet(32, "train", dataset_dir("imagenet32", data_root=params.data_root))
    return TensorDataset(x, y)


def labelled_subset(labels: Tensor, per_class: int, num_classes: int, seed: int) -> Tensor:
    """Indices (C * per_class,) of ``per_class`` images of every class, drawn uniformly with ``seed``
    (sorted). A class with fewer images is an error."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    picked = []
    for c in range(num_classes):
        members = order[labels[order] == c]
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} training images, fewer than {per_class} labels per class")
        picked.append(members[:per_class])
    return torch.cat(picked).sort().values


def model_input(x: Tensor, params: ScarceParams) -> Tensor:
    """Network input of a batch without augmentation: digits as they are; CIFAR / SVHN normalised
    with their channel statistics (SVHN: CIFAR-10's, as the released code); MIT-67 / Places10: the centre
    ``crop_size`` square, ImageNet statistics."""
    if params.data == "digits":
        return x.float()
    if params.data in ("mit67", "places10"):
        top = (x.shape[-2] - params.crop_size) // 2
        left = (x.shape[-1] - params.crop_size) // 2
        return normalize(x[..., top:top + params.crop_size, left:left + params.crop_size], "imagenet")
    return normalize(x, "cifar100" if params.data == "cifar100" else "cifar10")


def augment(x: Tensor, params: ScarceParams) -> Tensor:
    """One random view: digits + N(0, noise_std²) pixel noise; CIFAR pad-4 crop + flip; SVHN pad-4 crop;
    MIT-67 / Places10 a random ``crop_size`` square + flip."""
    if params.data == "digits":
        x = x.float()
        return x + params.noise_std * torch.randn_like(x) if params.noise_std > 0 else x
    if params.data in ("mit67", "places10"):
        return normalize(random_square_crop(x, params.crop_size, flip=True), "imagenet")
    if params.data == "svhn":
        n = x.shape[0]
        top, left = (torch.randint(0, 9, (n,), device=x.device) for _ in range(2))
        return model_input(crop_flip(x, top, left, torch.zeros(n, dtype=torch.bool, device=x.device)), params)
    return model_input(random_crop_flip(x, 4), params)
