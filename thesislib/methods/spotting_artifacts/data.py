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
  100k + 5k), random resizes, ``image_size`` crops and horizontal flips (:class:`RandomResizeCropFlip`);
  the probes use the labelled train split and the test split.
* ``imagenet``: ILSVRC train images resized to 1.15 x ``image_size`` then randomly cropped (the thesis's
  random 128x128 crops); probes on the train/val splits are run through the shared loaders at full scale.

Missing data stops in the shared loaders with their message naming ``$THESISLIB_DATA/<dir>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from thesislib.data.digits import load_digits_split
from thesislib.data.imagenet import ImageNetLocalization
from thesislib.data.roots import dataset_dir
from thesislib.data.scenes import SceneClass, SceneConfig, generate_scenes, scene_config
from thesislib.data.stl10 import STL10
from thesislib.data.tensors import TensorImages
from thesislib.data.transforms import resize_image, to_tensor
from thesislib.methods.spotting_artifacts.config import SpottingArtifactsParams

__all__ = ["SHAPE_CLASSES", "ChapterData", "ImagesOnly", "RandomCropFlip", "RandomResizeCropFlip", "chapter_data",
           "per_class_subset", "shape_scenes", "to_unit_range"]

SHAPE_CLASSES: tuple[str, ...] = ("disk", "square", "triangle", "cross")
"""The classes of the ``shapes`` smoke set: four outlines that differ in their parts (corners, arms, curvature)."""
SHAPES_TEST = 600
"""Held-out labelled scenes per replicate of the ``shapes`` smoke set (the probes' test set)."""


def to_unit_range(x: Tensor) -> Tensor:
    """Images with values in [0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


class ImagesOnly(Dataset):
    """The images of a dataset of ``(image, label)`` items (labels dropped)."""

    def __init__(self, dataset: Dataset, transform: Any = None) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Tensor:
        x = self.dataset[i][0]
        return self.transform(x) if self.transform is not None else x


@dataclass(frozen=True)
class RandomCropFlip:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: a random crop and a coin-flip mirror
    (drawn from torch's global generator, which the engine seeds per sample)."""

    size: int

    def __call__(self, image: Tensor) -> Tensor:
        x = to_unit_range(image.float() / 255.0)
        top = int(torch.randint(0, x.shape[-2] - self.size + 1, ()))
        left = int(torch.randint(0, x.shape[-1] - self.size + 1, ()))
        x = x[..., top:top + self.size, left:left + self.size]
        return x.flip(-1) if bool(torch.rand(()) < 0.5) else x


@dataclass(frozen=True)
class RandomResizeCropFlip:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: resize so that the shorter side is a random
    integer in [size, round(max_scale x size)], then :class:`RandomCropFlip`.

    STL-10 (thesis §3.4: "we randomly resize the images and extract 96x96 crops"): a 96-pixel crop of a
    96-pixel image is the whole image, so without the resize only the flip would vary. The thesis gives
    no scale range; up to 1.15 x (the ImageNet crop's margin, :class:`ImageNetCrop`) is a decision."""

    size: int
    max_scale: float = 1.15

    def __call__(self, image: Tensor) -> Tensor:
        high = max(self.size, int(round(self.max_scale * self.size)))
        side = int(torch.randint(self.size, high + 1, ()))
        h, w = image.shape[-2:]
        scale = side / min(h, w)
        big = resize_image(image.float() / 255.0, (max(side, round(h * scale)), max(side, round(w * scale))))
        return RandomCropFlip(self.size)((big * 255.0).clamp(0, 255))


@dataclass(frozen=True)
class CenterResize:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1], resized whole (evaluation)."""

    size: int

    def __call__(self, image: Tensor) -> Tensor:
        return to_unit_range(resize_image(image.float() / 255.0, self.size))


@dataclass(frozen=True)
class ImageNetCrop:
    """ImageNet item dict -> float (3, size, size) in [-1, 1]: resize to 1.15 x size, random crop."""

    size: int

    def __call__(self, item: dict[str, Any]) -> Tensor:
        big = resize_image(to_tensor(item["image"]), int(round(self.size * 1.15)))
        return RandomCropFlip(self.size)((big * 255.0).clamp(0, 255))


@dataclass(frozen=True)
class LabelledResize:
    """ImageNet item dict -> (float (3, size, size) in [-1, 1], label), resized whole (probes)."""

    size: int

    def __call__(self, item: dict[str, Any]) -> tuple[Tensor, int]:
        return to_unit_range(resize_image(to_tensor(item["image"]), self.size)), int(item["label"])


@dataclass(frozen=True)
class ChapterData:
    """``unlabelled``: the self-supervised training images (items: float (C, S, S)); ``probe_train`` /
    ``probe_test``: ``(image, label)`` datasets for the linear probes; ``test_images``: a few
    held-out images (N, C, S, S) for the figures."""

    unlabelled: Dataset
    probe_train: Dataset
    probe_test: Dataset
    test_images: Tensor


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
                       test_images=torch.stack([test[i][0] for i in range(64)]))


def _imagenet(params: SpottingArtifactsParams) -> ChapterData:
    root = dataset_dir("imagenet", data_root=params.data_root)
    crop = ImageNetCrop(params.image_size)
    ssl: Dataset = ImageNetLocalization("train", root=root, transform=crop)
    if params.n_unlabelled:
        ssl = torch.utils.data.Subset(ssl, range(params.n_unlabelled))

    labelled = LabelledResize(params.image_size)
    val = ImageNetLocalization("val", root=root, transform=labelled)
    train = ImageNetLocalization("train", root=root, transform=labelled)
    probe_train = torch.utils.data.Subset(train, per_class_subset(train.labels, params.probe_per_class, params.seed))
    return ChapterData(unlabelled=ssl, probe_train=probe_train, probe_test=val,
                       test_images=torch.stack([val[i][0] for i in range(64)]))


def per_class_subset(labels: Any, per_class: int, seed: int) -> list[int]:
    """Sorted indices of at most ``per_class`` items of every class in ``labels`` (N,), drawn with ``seed``.

    The ImageNet probes train on this subsample, not on all 1.28M train images: their features are
    extracted into memory (conv1 pooled to ~9.6k dims: 1.28M x 9.6k fp32 = 49 GB, twice that in the
    probe's float64 standardisation), so the full configs state ``probe_per_class`` instead."""
    y = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    picks = [idx[torch.randperm(len(idx), generator=gen)[:per_class]]
             for idx in (torch.nonzero(y == c).flatten() for c in torch.unique(y))]
    return torch.cat(picks).sort().values.tolist() if picks else []


def chapter_data(params: SpottingArtifactsParams, seed: int) -> ChapterData:
    """The :class:`ChapterData` of ``params.data`` (the smoke split depends on ``seed``)."""
    if params.data == "shapes":
        return _shapes(params, seed)
    if params.data == "smoke":
        return _digits(params, seed)
    if params.data == "stl10":
        return _stl10(params)
    return _imagenet(params)
