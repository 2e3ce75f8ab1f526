"""Data of the chapter: a training set of which only a few images per class keep their label, and a test set.

* ``digits`` (smoke): the 1,797 scikit-learn digits (N, 1, 8, 8) floats in [0, 1], ``digits_test``
  of them held out (stratified, :func:`thesislib.data.digits.load_digits_split`);
* ``cifar10`` / ``cifar100``: the 50,000 / 10,000 python-pickle splits, uint8 (N, 3, 32, 32);
* ``svhn``: ``train_32x32.mat`` (73,257) / ``test_32x32.mat`` (26,032), uint8.

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
from thesislib.data.roots import dataset_dir
from thesislib.data.svhn import load_svhn_tensors
from thesislib.data.transforms import normalize
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
    if params.data == "svhn":
        root = dataset_dir("svhn", data_root=params.data_root)
        (xtr, ytr), (xte, yte) = load_svhn_tensors("train", root), load_svhn_tensors("test", root)
    else:
        root = dataset_dir(params.data, data_root=params.data_root)
        (xtr, ytr), (xte, yte) = (load_cifar_tensors(params.data, t, root) for t in (True, False))
    return ScarceData(xtr, ytr, xte, yte, params.num_classes, params.data)


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
    with their channel statistics (SVHN: CIFAR-10's, as the released code)."""
    if params.data == "digits":
        return x.float()
    return normalize(x, "cifar100" if params.data == "cifar100" else "cifar10")


def augment(x: Tensor, params: ScarceParams) -> Tensor:
    """One random view: digits + N(0, noise_std²) pixel noise; CIFAR pad-4 crop + flip; SVHN pad-4 crop."""
    if params.data == "digits":
        x = x.float()
        return x + params.noise_std * torch.randn_like(x) if params.noise_std > 0 else x
    if params.data == "svhn":
        n = x.shape[0]
        top, left = (torch.randint(0, 9, (n,), device=x.device) for _ in range(2))
        return model_input(crop_flip(x, top, left, torch.zeros(n, dtype=torch.bool, device=x.device)), params)
    return model_input(random_crop_flip(x, 4), params)
