"""LSD-C's data: every image of the dataset with its class (used only to score the clustering),
and the augmentation of the training views.

* ``digits``: the 1,797 scikit-learn digits as (N, 1, 8, 8) floats in [0, 1] (smoke);
* ``stl10``: the 5,000 train and 8,000 test images (96x96), RotNet optionally also on the 100,000
  unlabelled ones (:mod:`thesislib.data.stl10`, read item by item);
* ``cifar10`` / ``cifar100_20``: the 50,000 training and 10,000 test images together (the thesis
  trains and scores on the whole dataset, "acceptable given that the method uses no supervision"),
  uint8 (N, 3, 32, 32), normalised on the device after augmentation; CIFAR-100-20 scores against the
  20 superclasses (:func:`thesislib.data.cifar.cifar100_superclasses`).

* ``mnist``: the 60,000 train and 10,000 test digits, uint8 (N, 1, 28, 28) (:mod:`thesislib.data.mnist`);
* ``reuters10k``: DEC's 10,000 tf-idf vectors, float (N, 2000), 4 classes (:mod:`thesislib.data.reuters`).

A missing CIFAR raises :class:`~thesislib.data.errors.DatasetNotFoundError` naming
``$THESISLIB_DATA/cifar10`` (or ``cifar100``) and the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, TensorDataset

from thesislib.data.cifar import cifar100_superclasses, load_cifar_tensors, random_crop, random_crop_flip
from thesislib.data.digits import load_digits_arrays
from thesislib.data.mnist import load_mnist
from thesislib.data.reuters import load_reuters10k
from thesislib.data.roots import dataset_dir
from thesislib.data.stl10 import STL10, load_stl10
from thesislib.data.transforms import normalize
from thesislib.methods.lsdc.config import LSDCParams

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class LSDCData:
    """``images`` (N, C, H, W) (float digits or uint8 CIFAR), ``labels`` (N,), K clusters."""

    images: Tensor
    labels: Tensor
    num_clusters: int
    name: str
    extra_pretrain: Dataset | None = None

    @property
    def dataset(self) -> TensorDataset:
        return TensorDataset(self.images, self.labels)

    @property
    def pretrain_set(self) -> Dataset:
        """What RotNet trains on: the clustered images, plus STL-10's unlabelled split when asked."""
        return self.dataset if self.extra_pretrain is None else ConcatDataset([self.dataset, self.extra_pretrain])


class _Unlabeled(Dataset):
    """STL-10's unlabelled split with items shaped as the TensorDataset's: (uint8 image, int64 -1)."""

    def __init__(self, root: object) -> None:
        self.split = STL10("unlabeled", root)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image, _ = self.split[i]
        return image, torch.tensor(-1)


def load_data(params: LSDCParams) -> LSDCData:
    """The whole dataset of ``params.data`` (the first ``n_images`` when set)."""
    extra = None
    if params.data == "digits":
        x, y = load_digits_arrays()
        images, labels = torch.from_numpy(x)[:, None], torch.from_numpy(y)
    elif params.data == "mnist":
        root = dataset_dir("mnist", data_root=params.data_root)
        parts = [load_mnist(split, root) for split in ("train", "test")]
        images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    elif params.data == "reuters10k":
        images, labels = load_reuters10k(dataset_dir("reuters10k", data_root=params.data_root))
    elif params.data == "stl10":
        root = dataset_dir("stl10", data_root=params.data_root)
        parts = [load_stl10(split, root) for split in ("train", "test")]
        images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        extra = _Unlabeled(root) if params.rotnet_unlabeled else None
    else:
        name = "cifar10" if params.data == "cifar10" else "cifar100"
        root = dataset_dir(name, data_root=params.data_root)
        parts = [load_cifar_tensors(name, train, root) for train in (True, False)]
        images = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        if params.data == "cifar100_20":
            labels = cifar100_superclasses(labels)
    if params.n_images:
        images, labels = images[: params.n_images], labels[: params.n_images]
    return LSDCData(images, labels, params.num_clusters, params.data, extra)


def model_input(x: Tensor, params: LSDCParams) -> Tensor:
    """Network input of a batch without augmentation (evaluation): digits as they are, CIFAR
    normalised with its channel statistics, MNIST standardised, Reuters-10K as it is."""
    if params.data in ("digits", "reuters10k"):
        return x.float()
    if params.data == "mnist":
        return (x.float() / 255.0 - MNIST_MEAN) / MNIST_STD
    return normalize(x, {"cifar100_20": "cifar100", "stl10": "imagenet"}.get(params.data, "cifar10"))


def augment(x: Tensor, params: LSDCParams) -> Tensor:
    """One random view of a batch: digits + N(0, noise_std²) pixel noise; images a random crop padded by
    an eighth of the side (CIFAR: 4, the released code's; STL-10: 12) + flip, then normalised; MNIST a
    random crop padded by 2 without flip; Reuters-10K a ``drop_rate`` share of entries zeroed. Draws
    from the global RNG of x's device."""
    if params.data == "digits":
        x = x.float()
        return x + params.noise_std * torch.randn_like(x) if params.noise_std > 0 else x
    if params.data == "reuters10k":
        x = x.float()
        return x * (torch.rand_like(x) >= params.drop_rate) if params.drop_rate > 0 else x
    if params.data == "mnist":
        return model_input(random_crop(x, 2), params)
    return model_input(random_crop_flip(x, x.shape[-1] // 8), params)
