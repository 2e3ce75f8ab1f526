"""The data of one G-softmax run, on the device: :func:`prepare_data` turns a
:class:`~thesislib.methods.gsoftmax.config.RunSpec` into an :class:`ExperimentData`.

* ``digits`` (single-label, scikit-learn's 8x8 digits) and ``mosaics`` (multi-label, 2x2 digit
  mosaics) live as whole tensors on the device; the engine's DataLoader only hands out sample
  indices (:class:`thesislib.engine.IndexDataset`) and the step function gathers the batch on the device.
* ``cifar10``/``cifar100``: the uint8 images (N, 3, 32, 32) are moved to the device once; every
  batch is gathered, randomly cropped (pad 4) and flipped, and normalised THERE
  (:func:`~thesislib.data.random_crop_flip`, :func:`~thesislib.data.normalize`), so data loading
  never limits a GPU.
* ``coco``: :class:`~thesislib.data.CocoMultiLabel` with the released code's transforms (square
  resize to ``image_size``, horizontal flip, colour jitter 0.4, ImageNet normalisation; test:
  square resize only), decoded by DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data import (
    IMAGENET,
    CocoMultiLabel,
    cifar_class_names,
    dataset_dir,
    load_cifar_tensors,
    load_digits_split,
    normalize,
    random_crop_flip,
    resize_image,
    to_tensor,
)
from thesislib.engine import IndexDataset, collate_indices
from thesislib.methods.gsoftmax.config import RunSpec
from thesislib.methods.gsoftmax.mosaics import digit_mosaic_splits

Batch = tuple[Tensor, Tensor]


@dataclass
class ExperimentData:
    """The train and test sides of one experiment.

    ``train_set``/``test_set`` are what the engine's loaders iterate (indices or COCO items);
    ``train_batch(batch)``/``test_batch(batch)`` turn a loaded batch, already on the device, into
    ``(inputs, targets)``: targets are class indices (B,) for single-label and {0, 1} (B, m) for
    multi-label data. ``collate_fn`` is the loaders' collate function (None: PyTorch's default).
    """

    dataset: str
    multilabel: bool
    num_classes: int
    class_names: tuple[str, ...]
    train_set: Dataset
    test_set: Dataset
    train_batch: Callable[[Any], Batch]
    test_batch: Callable[[Any], Batch]
    collate_fn: Callable[[list[Any]], Any] | None
    in_features: int = 0      # flattened input size, for the MLP

    @property
    def num_outputs(self) -> int:
        """m logits single-label, 2m (positive and negative per class) multi-label."""
        return 2 * self.num_classes if self.multilabel else self.num_classes


def _in_memory(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, device: torch.device,
               **kwargs: Any) -> ExperimentData:
    tensors = [t.to(device) for t in (train_x, train_y, test_x, test_y)]
    tx, ty, vx, vy = tensors

    def train_batch(idx: Tensor) -> Batch:
        return tx[idx], ty[idx]

    def test_batch(idx: Tensor) -> Batch:
        idx = idx.to(device)
        return vx[idx], vy[idx]

    return ExperimentData(train_set=IndexDataset(len(ty)), test_set=IndexDataset(len(vy)), train_batch=train_batch,
                          test_batch=test_batch, collate_fn=collate_indices, in_features=tx[0].numel(), **kwargs)


def _digits(config: RunSpec, device: torch.device) -> ExperimentData:
    split = load_digits_split(config.params.test_fraction, config.data_seed, flat=True)
    return _in_memory(split.x_train, split.y_train, split.x_test, split.y_test, device, dataset="digits",
                      multilabel=False, num_classes=split.num_classes, class_names=split.class_names)


def _mosaics(config: RunSpec, device: torch.device) -> ExperimentData:
    train, test = digit_mosaic_splits(config.params.mosaic_train, config.params.mosaic_test, config.data_seed,
                                      test_fraction=config.params.test_fraction)
    flat = [train.images.flatten(1), train.labels, test.images.flatten(1), test.labels]
    return _in_memory(*flat, device, dataset="mosaics", multilabel=True, num_classes=10,
                      class_names=tuple(str(d) for d in range(10)))


def _cifar(config: RunSpec, device: torch.device) -> ExperimentData:
    name = config.dataset
    root = dataset_dir(name, data_root=config.params.data_root)
    train_x, train_y = (t.to(device) for t in load_cifar_tensors(name, train=True, root=root))
    test_x, test_y = (t.to(device) for t in load_cifar_tensors(name, train=False, root=root))
    channels_last = config.params.channels_last and device.type == "cuda"

    def prepare(x: Tensor) -> Tensor:
        x = normalize(x, name)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def train_batch(idx: Tensor) -> Batch:
        return prepare(random_crop_flip(train_x[idx], padding=4)), train_y[idx]

    def test_batch(idx: Tensor) -> Batch:
        idx = idx.to(device)
        return prepare(test_x[idx]), test_y[idx]

    names = cifar_class_names(name)
    return ExperimentData(name, False, len(names), names, IndexDataset(len(train_y)), IndexDataset(len(test_y)),
                          train_batch, test_batch, collate_indices, in_features=3 * 32 * 32)


def coco_transforms(image_size: int) -> tuple[Callable[[Any], Tensor], Callable[[Any], Tensor]]:
    """(train, test) PIL-image transforms of the released COCO code: square resize (no crop), flip,
    colour jitter 0.4 (brightness, contrast, saturation), ImageNet mean/std; test: resize only.
    To-tensor, resize and normalisation are :mod:`thesislib.data.transforms`' (one resize policy).

    The code's AlexNet-style PCA lighting noise (0.1) is left out (torchvision has no such transform).
    """
    import torchvision.transforms as T

    resize = partial(resize_image, size=image_size)
    norm = partial(normalize, normalization=IMAGENET)
    train = T.Compose([to_tensor, resize, T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4), norm])
    return train, T.Compose([to_tensor, resize, norm])


def _coco(config: RunSpec, device: torch.device) -> ExperimentData:
    train_tf, test_tf = coco_transforms(config.params.image_size)
    root = dataset_dir("coco", data_root=config.params.data_root)
    train = CocoMultiLabel(root, "train2014", transform=train_tf)
    test = CocoMultiLabel(root, "val2014", transform=test_tf)

    def passthrough(batch: Any) -> Batch:
        images, targets = batch
        return images, targets

    return ExperimentData("coco", True, train.num_classes, tuple(train.class_names), train, test, passthrough,
                          passthrough, None)


def prepare_data(config: RunSpec, device: torch.device) -> ExperimentData:
    """Load (or generate) the data of ``config.dataset``; in-memory data is moved to ``device``.

    Missing CIFAR/COCO files raise :class:`~thesislib.data.DatasetNotFoundError` (it names
    ``THESISLIB_DATA`` and the layout); ``config.params.data_root`` overrides the data root.
    """
    builders = {"digits": _digits, "mosaics": _mosaics, "cifar10": _cifar, "cifar100": _cifar, "coco": _coco}
    return builders[config.dataset](config, torch.device(device))
