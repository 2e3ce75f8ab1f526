"""The chapter's data: unlabelled images for self-supervision, labelled ones for the probes.

Images are float32 (C, S, S) in [-1, 1] (the autoencoder's tanh range; [code]).

* ``smoke``: the 1,797 scikit-learn digits (note §3.6(a)), 8x8 grey, upscaled to ``image_size`` by
  the shared resize policy. A seeded stratified split gives the self-supervised set (the training
  part, labels unused) and the test part; the probes train on ``probe_per_class`` labelled images
  per class drawn from the training part and test on the test part.
* ``shapes`` (an alternative smoke set, not the default: see the notebook): procedural scenes
  (:func:`thesislib.data.generate_scenes`), one object per image, one of :data:`SHAPE_CLASSES`, drawn
  in a random hue on a tinted crop of a real texture or photo, converted to grey and contrast-stretched.
  The class is the shape alone (hue jittered over the whole
  circle, so neither colour nor brightness carries the label), and an object (45-60 % of the side)
  is larger than one latent entry's receptive field, so a dropped entry removes a *part* (a corner,
  an arm) of it. ``n_unlabelled`` (0: 1,200) unlabelled scenes for self-supervision, ``probe_per_class``
  labelled ones per class for the probes and :data:`SHAPES_TEST` held-out ones, three independent streams.
* ``stl10``: the unlabelled split plus the labelled train split for self-supervision (the thesis's
  100k + 5k), random resizes, ``image_size`` crops and horizontal flips
  (:class:`thesislib.data.crops.RandomResizeCropFlip`);
  the probes use the labelled train split and the test split.
* ``imagenet``: ILSVRC train images resized to 1.15 x ``image_size`` then randomly cropped (the thesis's
  random 128x128 crops); probes on the train/val splits: ``probe_mode: cached``, ``probe_per_class`` train images
  per class resized whole to ``image_size`` (a reduced probe); ``streaming`` (Table 3.4), all of train resized whole
  to 1.15 x ``probe_size`` with a fresh random ``probe_size`` crop and flip each epoch, val resized the same and
  centre-cropped by the probe; with ``probe_data: places205`` (Table 3.5) the same on all of Places205 train / val
  (:func:`thesislib.data.imagenet.linear_probe_sets`, as ch. 4's Table 4.6), C still trained on ImageNet.

Missing data stops in the shared loaders with their message naming ``$THESISLIB_DATA/<dir>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from thesislib.data.crops import (
    CenterResize,
    ImageNetCrop,
    ImagesOnly,
    LabelledResize,
    RandomResizeCropFlip,
    to_unit_range,
)
from thesislib.data.digits import load_digits_split
from thesislib.data.imagenet import IMAGENET_CLASSES, ImageNetLocalization, linear_probe_sets
from thesislib.data.roots import dataset_dir
from thesislib.data.scenes import SceneClass, SceneConfig, generate_scenes, scene_config
from thesislib.data.stl10 import STL10
from thesislib.data.tensors import TensorImages
from thesislib.data.transforms import resize_image
from thesislib.eval.probe import per_class_subset
from thesislib.eval.streaming_probe import probe_data_set
from thesislib.methods.spotting_artifacts.config import SpottingArtifactsParams

__all__ = ["SHAPE_CLASSES", "ChapterData", "chapter_data", "shape_scenes"]

SHAPE_CLASSES: tuple[str, ...] = ("disk", "square", "triangle", "cross")
"""The classes of the ``shapes`` smoke set: four outlines that differ in their parts (corners, arms, curvature)."""
SHAPES_TEST = 600
"""Held-out labelled scenes per replicate of the ``shapes`` smoke set (the probes' test set)."""



@dataclass(frozen=True)
class ChapterData:
    """``unlabelled``: the self-supervised training images (items: float (C, S, S)); ``probe_train`` /
    ``probe_test``: ``(image, label)`` datasets for the linear probes; ``test_images``: a few
    held-out images (N, C, S, S) for the figures; ``probe_classes``: the probes' class count; ``probe_crop``:
    with ``probe_mode: streaming`` on ImageNet, the side of the centre test crop the streaming probe cuts from the
    larger ``probe_test`` images (0: already at the probe size)."""

    unlabelled: Dataset
    probe_train: Dataset
    probe_test: Dataset
    test_images: Tensor
    probe_classes: int = 10
    probe_crop: int = 0


def _digits(params: SpottingArtifactsParams, seed: int) -> ChapterData:
    split = load_digits_split(test_fraction=0.3, seed=seed)
    size = params.image_size

    def up(x: Tensor) -> Tensor:
        return to_unit_range(resize_image(x.float(), size).clamp(0, 1))

    x_train, x_test = up(split.x_train), up(split.x_test)
    x_ssl = x_train[: params.n_unlabelled] if params.n_unlabelled else x_train
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(10):
        idx = torch.nonzero(split.y_train == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=gen)[: params.probe_per_class]])
    keep = torch.cat(picks).sort().values
    return ChapterData(unlabelled=TensorImages(x_ssl),
                       probe_train=TensorDataset(x_train[keep], split.y_train[keep]),
                       probe_test=TensorDataset(x_test, split.y_test), test_images=x_test[:64])


def shape_scenes(size: int) -> SceneConfig:
    """The scene settings of the ``shapes`` smoke set at side ``size`` (>= 16)."""
    classes = tuple(SceneClass(name, name, 0.0) for name in SHAPE_CLASSES)
    return scene_config({"classes": classes, "size": size, "min_objects": 1, "max_objects": 1,
                         "hue_jitter": 0.5, "object_size": (0.45, 0.6)})


def _scene_tensors(config: SceneConfig, n: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """(grey images (n, 1, S, S) in [-1, 1], labels (n,) int64) of ``n`` one-object scenes, each image's
    grey levels stretched to the full range (min -> -1, max -> 1)."""
    scenes = generate_scenes(config, n, seed=rng)
    grey = scenes.images.mean(dim=1, keepdim=True)
    low = grey.amin(dim=(1, 2, 3), keepdim=True)
    high = grey.amax(dim=(1, 2, 3), keepdim=True)
    return to_unit_range((grey - low) / (high - low).clamp_min(1e-6)), scenes.labels.argmax(dim=1)


def _shapes(params: SpottingArtifactsParams, seed: int) -> ChapterData:
    config = shape_scenes(params.image_size)
    x_ssl, _ = _scene_tensors(config, params.n_unlabelled or 1200, np.random.default_rng([seed, 0]))
    per_class = params.probe_per_class
    x_pool, y_pool = _scene_tensors(config, 8 * per_class * len(SHAPE_CLASSES), np.random.default_rng([seed, 1]))
    keep = torch.cat([torch.nonzero(y_pool == c).flatten()[:per_class] for c in range(len(SHAPE_CLASSES))])
    if keep.numel() < per_class * len(SHAPE_CLASSES):
        raise ValueError("shapes: too few scenes of some class drawn for the probe's training set")
    keep = keep.sort().values
    x_test, y_test = _scene_tensors(config, SHAPES_TEST, np.random.default_rng([seed, 2]))
    return ChapterData(unlabelled=TensorImages(x_ssl), probe_train=TensorDataset(x_pool[keep], y_pool[keep]),
                       probe_test=TensorDataset(x_test, y_test), test_images=x_test[:64])


def _stl10(params: SpottingArtifactsParams) -> ChapterData:
    root = dataset_dir("stl10", data_root=params.data_root)
    ssl = ImagesOnly(STL10(("train", "unlabeled"), root=root), RandomResizeCropFlip(params.image_size))
    if params.n_unlabelled:
        ssl = torch.utils.data.Subset(ssl, range(params.n_unlabelled))
    evaluate = CenterResize(params.image_size)
    test = STL10("test", root=root, transform=evaluate)
    return ChapterData(unlabelled=ssl, probe_train=STL10("train", root=root, transform=evaluate), probe_test=test,
                       test_images=torch.stack([test[i][0] for i in range(min(64, len(test)))]))


def _imagenet(params: SpottingArtifactsParams) -> ChapterData:
    root = dataset_dir("imagenet", data_root=params.data_root)
    crop = ImageNetCrop(params.image_size)
    ssl: Dataset = ImageNetLocalization("train", root=root, transform=crop)
    if params.n_unlabelled:
        ssl = torch.utils.data.Subset(ssl, range(params.n_unlabelled))

    labelled = LabelledResize(params.image_size)
    val = ImageNetLocalization("val", root=root, transform=labelled)
    figures = torch.stack([val[i][0] for i in range(min(64, len(val)))])
    if params.probe_mode == "streaming":  # Tables 3.4 / 3.5: all of train, a fresh random crop each epoch
        side = params.probe_size or params.image_size
        name = probe_data_set(params.data, params.probe_data)  # imagenet, or places205 (Table 3.5)
        train, test, classes = linear_probe_sets(name, side, data_root=params.data_root)
        return ChapterData(unlabelled=ssl, probe_train=train, probe_test=test, test_images=figures,
                           probe_classes=classes, probe_crop=side)
    train = ImageNetLocalization("train", root=root, transform=labelled)
    probe_train = torch.utils.data.Subset(train, per_class_subset(train.labels, params.probe_per_class, params.seed))
    return ChapterData(unlabelled=ssl, probe_train=probe_train, probe_test=val, test_images=figures,
                       probe_classes=IMAGENET_CLASSES)


def chapter_data(params: SpottingArtifactsParams, seed: int) -> ChapterData:
    """The :class:`ChapterData` of ``params.data`` (the smoke split depends on ``seed``)."""
    if params.data == "shapes":
        return _shapes(params, seed)
    if params.data == "smoke":
        return _digits(params, seed)
    if params.data == "stl10":
        return _stl10(params)
    return _imagenet(params)
