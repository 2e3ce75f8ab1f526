"""The chapter's data: procedural scenes (smoke) and the ILSVRC / VOC sets of the full runs.

* :func:`scene_data`: training and test scenes of one replicate
  (:func:`~thesislib.data.distractor_scenes`: a boat always on water, a train always on rails,
  a car and a ball anywhere; one object per 32x32 image; image-level labels for training, the
  object masks and distractor bands only for evaluation and the oracle annotator).
* :func:`ilsvrc_sets` / :func:`voc_sets`: the real datasets under ``data_root`` (or
  ``$THESISLIB_DATA``) in the layouts of :mod:`thesislib.data.imagenet` and
  :mod:`thesislib.data.voc`.
* :func:`training_set`: what the CAM classifier trains on for a given ``data`` (the torchrun
  entry point of :mod:`.train` uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader, Subset, TensorDataset

from thesislib.data import Scenes, distractor_scenes, generate_scenes
from thesislib.data.imagenet import (
    ImageNetLocalization,
    ResizeNormalize,
    check_layout,
    collate_localization,
)
from thesislib.data.roots import dataset_dir
from thesislib.data.transforms import IMAGENET
from thesislib.data.transforms import denormalize as denormalize_pixels
from thesislib.data.voc import VOC_CLASSES, SegInputTransform, VOCSegmentation
from thesislib.methods.micro_annotation.config import MicroAnnotationParams

#: the 20 VOC foreground classes (index c = VOC class c + 1)
FOREGROUND: tuple[str, ...] = VOC_CLASSES[1:]


def scene_data(params: MicroAnnotationParams, seed: int) -> tuple[Scenes, Scenes]:
    """``n_train`` training and ``n_test`` test scenes of replicate ``seed`` (independent streams)."""
    scene_cfg = distractor_scenes()
    train = generate_scenes(scene_cfg, params.n_train, seed=np.random.default_rng([seed, 0]))
    test = generate_scenes(scene_cfg, params.n_test, seed=np.random.default_rng([seed, 1]))
    return train, test


def batches(images: Tensor, labels: Tensor, size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, labels) in chunks of ``size`` (inference batches)."""
    for lo in range(0, len(images), size):
        yield images[lo:lo + size], labels[lo:lo + size]


def denormalize(images: Tensor) -> Tensor:
    """ImageNet-normalised (B, 3, H, W) -> RGB in [0, 1] for display."""
    return denormalize_pixels(images, IMAGENET).clamp(0, 1)


def loader(dataset: Any, params: MicroAnnotationParams,
           collate_fn: Callable[[list[Any]], Any] | None = None) -> DataLoader:
    """An in-order loader of ``batch_size`` over ``dataset`` (patterns, evaluation, cues)."""
    return DataLoader(dataset, batch_size=params.batch_size, shuffle=False, num_workers=params.num_workers,
                      collate_fn=collate_fn)


def ilsvrc_sets(params: MicroAnnotationParams) -> tuple[ImageNetLocalization, Any]:
    """ILSVRC CLS-LOC train (``classes``, the first ``max_train_per_class`` per class) and val (the
    first ``max_val``), resized to ``input_size`` squared and ImageNet-normalised."""
    root = check_layout(dataset_dir("imagenet", data_root=params.data_root))
    transform = ResizeNormalize(params.input_size)
    train = ImageNetLocalization("train", root, list(params.classes) or None, params.max_train_per_class, transform)
    val: Any = ImageNetLocalization("val", root, list(params.classes) or None, 0, transform)
    if params.max_val:
        val = Subset(val, list(range(min(params.max_val, len(val)))))
    return train, val


def voc_roots(params: MicroAnnotationParams) -> tuple[Path, Path]:
    """The VOC and SBD dataset directories under ``data_root`` (empty: ``$THESISLIB_DATA``), by the
    one root rule of :func:`thesislib.data.roots.dataset_dir`."""
    return dataset_dir("voc", data_root=params.data_root), dataset_dir("sbd", data_root=params.data_root)


def voc_sets(params: MicroAnnotationParams) -> tuple[VOCSegmentation, Any, list[int]]:
    """VOC 2012 trainaug and val (the first ``max_val``) at ``input_size`` squared, and the
    foreground class indices to process (``classes`` by name; all 20 when empty)."""
    voc_root, sbd_root = voc_roots(params)
    transform = SegInputTransform((params.input_size, params.input_size), "imagenet", resize_mask=True)
    train = VOCSegmentation("trainaug", voc_root, sbd_root, transform)
    val: Any = VOCSegmentation("val", voc_root, None, transform)
    if params.max_val:
        val = Subset(val, list(range(min(params.max_val, len(val)))))
    unknown = [n for n in params.classes if n not in FOREGROUND]
    if unknown:
        raise KeyError(f"unknown VOC class(es) {unknown}; classes are {', '.join(FOREGROUND)}")
    return train, val, [FOREGROUND.index(n) for n in params.classes] or list(range(20))


def training_set(params: MicroAnnotationParams, seed: int) -> tuple[Any, int, bool, Callable[[list[Any]], Any] | None]:
    """``(dataset, number of classes, multilabel, collate_fn)`` the CAM classifier trains on for
    ``params.data``: the replicate's training scenes, ILSVRC train (single label) or VOC trainaug."""
    if params.data == "scenes":
        train, _ = scene_data(params, seed)
        return TensorDataset(train.images, train.labels), train.num_classes, True, None
    if params.data == "ilsvrc":
        train, _ = ilsvrc_sets(params)
        return train, len(train.wnids), False, collate_localization
    train, _, _ = voc_sets(params)
    return train, len(FOREGROUND), True, None
