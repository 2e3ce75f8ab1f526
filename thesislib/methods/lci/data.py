"""The chapter's data: unlabelled images for self-supervision, labelled ones for the probes, and the
procedural faces of the rotation-shortcut diagnostic.

Images are float32 (C, L, L) in [-1, 1] at ``load_size`` L (F's tanh range); C sees ``image_size`` crops.

* ``smoke``: the 1,797 scikit-learn digits, upscaled to ``load_size``; a seeded stratified 70/30 split per
  replicate. Self-supervision on the training part (labels unused); the probes train on ``probe_per_class``
  labelled training digits per class and test on the test part, both centre-cropped to ``image_size`` (the
  scale C saw).
* ``stl10``: the unlabelled split plus the labelled train split (the thesis's 100k + 5k), random
  ``load_size`` crops and flips; probes on train / test, centre ``image_size`` crops of the native 96-px images
  (the scale C saw; precomputed features, no probe augmentation).
* ``celeba``: the aligned crops at ``load_size`` with flips; Table 4.3's probes read the 40 attributes of
  ``list_attr_celeba.txt`` (items ``(image, attrs float (40,) in {0, 1})``) on the official train / test
  partition, both centre-cropped to ``image_size`` from ``load_size`` (the scale C saw; features extracted once,
  no probe augmentation).
* ``imagenet``: ILSVRC train, 1.15 x ``load_size`` resize then a random ``load_size`` crop; probes on a
  ``probe_per_class`` subsample of train, tested on val, both resized to 1.15 x ``load_size`` (the scale C saw)
  and centre-cropped to ``image_size``.
* :func:`procedural_faces`: aligned "faces" (two eyes with eyebrows, a shaded mouth, on noise) whose parts are
  either *upright* (a local window shows the up direction, as on CelebA's aligned crops) or *scrambled* (each
  part turned by its own random multiple of 90°: the same content, the up direction only in the arrangement).

Missing data stops in the shared loaders with their message naming ``$THESISLIB_DATA/<dir>``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from thesislib.config import ConfigError
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
from thesislib.data.imagenet import IMAGENET_CLASSES, ImageNetLocalization, linear_probe_sets
from thesislib.data.roots import dataset_dir
from thesislib.data.round_robin import center_crop
from thesislib.data.stl10 import STL10
from thesislib.data.tensors import TensorImages
from thesislib.data.transforms import resize_image
from thesislib.eval.probe import per_class_subset
from thesislib.eval.streaming_probe import probe_data_set
from thesislib.methods.lci.config import LCIParams

CELEBA_ATTRIBUTES = 40

__all__ = ["CELEBA_ATTRIBUTES", "FACE_PARTS", "ChapterData", "CenterCrop", "LabelledCenterCrop", "chapter_data",
           "check_face_geometry", "face_clearance", "face_layout", "probe_side", "face_stamps", "procedural_faces"]


@dataclass(frozen=True)
class ChapterData:
    """``unlabelled``: the self-supervised images (items float (C, L, L)); ``probe_train`` / ``probe_test``:
    ``(image (C, S, S), label)`` datasets for the linear probes (the label a (40,) 0/1 attribute vector on CelebA,
    :attr:`multilabel`; None where no probe exists);
    ``test_images``: held-out images (N, C, L, L) for the figures and the diagnostics; ``probe_classes``: the
    probes' class count (the attribute count on CelebA); ``probe_crop``: with ``probe_mode: streaming`` on
    ImageNet / Places, the side of the centre (and ten) test crops cut from the larger ``probe_test`` images by
    :func:`thesislib.eval.streaming_probe.streaming_probe` (0: ``probe_test`` images are already at the probe
    size).;
    ``labelled_train``: ``(image (C, L, L), class)`` training images at ``load_size`` for Fig. 4.1's supervised C
    (None on CelebA); ``tiles_test``: Fig. 4.1's labelled held-out images ``(image (C, S, S), class)`` at C's
    ``image_size`` where ``probe_test`` is not (the streaming ImageNet / Places probes; None: ``probe_test``)."""

    unlabelled: Dataset
    probe_train: Dataset | None
    probe_test: Dataset | None
    test_images: Tensor
    multilabel: bool = False
    probe_classes: int = 10
    probe_crop: int = 0
    labelled_train: Dataset | None = None
    tiles_test: Dataset | None = None


@dataclass(frozen=True)
class CenterCrop:
    """uint8 (C, H, W) -> float (C, size, size) in [-1, 1]: resized to ``load`` (0: kept at its native size) then
    the central ``size`` crop."""

    load: int
    size: int

    def __call__(self, image: Tensor) -> Tensor:
        x = CenterResize(self.load)(image) if self.load else to_unit_range(image.float() / 255.0)
        return center_crop(x, self.size)


@dataclass(frozen=True)
class LabelledCenterCrop:
    """ImageNet item dict -> (float (3, size, size) in [-1, 1], label): resized whole to ``load``, then the central
    ``size`` crop (the probes' images at the scale the self-supervised C saw)."""

    load: int
    size: int

    def __call__(self, item: dict[str, Any]) -> tuple[Tensor, int]:
        x, y = LabelledResize(self.load)(item)
        return center_crop(x, self.size), y


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
                       probe_test=TensorDataset(center_crop(x_test, crop), split.y_test), test_images=x_test,
                       labelled_train=TensorDataset(x_train, split.y_train))


def _held_out(dataset: Dataset, params: LCIParams, whole: bool = False) -> Tensor:
    """The first max(64, ``diag_test``) images of a test split (N, C, L, L) (``whole``: items are images, else
    (image, label)): the figures, C's per-transformation accuracy and the diagnostics' held-out images."""
    n = min(len(dataset), max(64, params.diag_test))  # type: ignore[arg-type]
    return torch.stack([dataset[i] if whole else dataset[i][0] for i in range(n)])


def _subset(dataset: Dataset, n: int) -> Dataset:
    return torch.utils.data.Subset(dataset, range(n)) if n else dataset


def _stl10(params: LCIParams) -> ChapterData:
    root = dataset_dir("stl10", data_root=params.data_root)
    ssl = _subset(ImagesOnly(STL10(("train", "unlabeled"), root=root), RandomCropFlip(params.load_size)),
                  params.n_unlabelled)
    # probes at the scale C saw: the native 96 px centre crop (no resize), or Table 4.1's probe_size protocol
    evaluate = CenterResize(params.probe_size) if params.probe_size else CenterCrop(0, params.image_size)
    if params.streaming_probe:  # a fresh random crop per epoch: Table 4.1's 96 crops, Table 4.2's 64 crops
        train_view: Any = RandomResizeCropFlip(params.probe_size) if params.probe_size else \
            RandomCropFlip(params.image_size)
    else:
        train_view = RandomResizeCropFlip(params.probe_size) if params.probe_views > 1 else evaluate
    test = STL10("test", root=root, transform=evaluate)
    figures = STL10("test", root=root, transform=CenterResize(params.load_size))
    return ChapterData(unlabelled=ssl, probe_train=STL10("train", root=root, transform=train_view), probe_test=test,
                       test_images=_held_out(figures, params),
                       labelled_train=STL10("train", root=root, transform=CenterCrop(0, params.load_size)))


def _celeba(params: LCIParams) -> ChapterData:
    root = dataset_dir("celeba", data_root=params.data_root)
    ssl = _subset(CelebA("train", root=root, size=params.load_size, transform=RandomCropFlip(params.load_size)),
                  params.n_unlabelled)
    test = CelebA("test", root=root, size=params.load_size, transform=CenterResize(params.load_size))
    probe = CenterCrop(0, params.image_size)  # images arrive at load_size: the central image_size crop
    # streaming: Table 4.3's random image_size crops (and flips) of the training images, a fresh one per epoch
    train_view = RandomCropFlip(params.image_size) if params.streaming_probe else probe

    def attributes(split: str, view: Any) -> CelebA:
        return CelebA(split, root=root, size=params.load_size, transform=view, attributes=True)

    return ChapterData(unlabelled=ssl, probe_train=attributes("train", train_view),
                       probe_test=attributes("test", probe), test_images=_held_out(test, params, whole=True),
                       multilabel=True, probe_classes=CELEBA_ATTRIBUTES)


def _imagenet(params: LCIParams) -> ChapterData:
    root = dataset_dir("imagenet", data_root=params.data_root)
    ssl = _subset(ImageNetLocalization("train", root=root, transform=ImageNetCrop(params.load_size)),
                  params.n_unlabelled)
    figures = ImageNetLocalization("val", root=root, transform=LabelledResize(params.load_size))
    supervised = LabelledCenterCrop(int(round(params.load_size * 1.15)), params.load_size)
    labelled_train = ImageNetLocalization("train", root=root, transform=supervised)  # Fig. 4.1's supervised C
    labelled = LabelledCenterCrop(int(round(params.load_size * 1.15)), params.image_size)  # ImageNetCrop's scale
    val = ImageNetLocalization("val", root=root, transform=labelled)
    if params.streaming_probe:
        return dataclasses.replace(_streaming_probe_data(params, ssl, _held_out(figures, params)),
                                   labelled_train=labelled_train, tiles_test=val)
    train = ImageNetLocalization("train", root=root, transform=labelled)
    probe_train = torch.utils.data.Subset(train, per_class_subset(train.labels, params.probe_per_class, params.seed))
    return ChapterData(unlabelled=ssl, probe_train=probe_train, probe_test=val,
                       test_images=_held_out(figures, params), probe_classes=IMAGENET_CLASSES,
                       labelled_train=labelled_train)


def probe_side(params: LCIParams) -> int:
    """The side of the streaming ImageNet / Places probes' crops: ``probe_size`` (224: the protocol of Tables
    4.5-4.6), else ``image_size`` (the scale C saw)."""
    return params.probe_size or params.image_size


def _streaming_probe_data(params: LCIParams, ssl: Dataset, test_images: Tensor) -> ChapterData:
    """Tables 4.5 / 4.6: every training image of ImageNet (or of Places205 with ``probe_data: places205``), resized
    whole to 1.15 x the probe side (C's own ImageNet margin, :class:`ImageNetCrop`; a decision, where Zhang et al.
    load 256 for 224 crops) with a fresh random crop and flip each epoch; val resized the same, its centre (and ten)
    crops cut by the streaming probe (``probe_crop``): :func:`thesislib.data.imagenet.linear_probe_sets`."""
    side = probe_side(params)
    name = probe_data_set(params.data, params.probe_data)
    train, test, classes = linear_probe_sets(name, side, data_root=params.data_root)
    return ChapterData(unlabelled=ssl, probe_train=train, probe_test=test, test_images=test_images,
                       probe_classes=classes, probe_crop=side)


def chapter_data(params: LCIParams, seed: int) -> ChapterData:
    """The :class:`ChapterData` of ``params.data`` (the smoke split depends on ``seed``)."""
    if params.data == "smoke":
        return _digits(params, seed)
    if params.data == "stl10":
        return _stl10(params)
    if params.data == "celeba":
        return _celeba(params)
    return _imagenet(params)


FACE_PARTS = ("left_eye", "right_eye", "mouth")
"""The parts of a procedural face, in the order of :func:`face_layout`."""


def face_stamps(size: int) -> dict[str, tuple[Tensor, Tensor]]:
    """The upright parts of a procedural face at frame side ``size``: ``{part: (alpha, value)}``, two (t, t)
    tensors (t = the odd stamp side, 9 at size 32): ``alpha`` in [0, 1] is the part's coverage, ``value`` its
    grey level in [-1, 1]. Each part has a local up direction, none is symmetric under a 90° or 180° turn:

    * an eye: a dark disk in the lower part of the stamp under a dark eyebrow bar along its top rows;
    * the mouth: a horizontal band whose grey level is shaded from dark (top) to mid grey (bottom)."""
    t = max(5, int(round(0.28 * size)) | 1)
    rows, cols = torch.meshgrid(torch.arange(t, dtype=torch.float32), torch.arange(t, dtype=torch.float32),
                                indexing="ij")
    brow = t // 5 + 1                                          # 2 rows at t = 9
    radius = (t - brow - 1) / 2 - 0.5                          # 2.5 at t = 9
    centre = (t - 1 - radius - 0.5, (t - 1) / 2)
    disk = (radius + 0.5 - torch.sqrt((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)).clamp(0.0, 1.0)
    bar = ((rows < brow) & (cols >= 1) & (cols <= t - 2)).float()
    eye = (torch.maximum(disk, bar), torch.full((t, t), -0.8))
    top, bottom = t // 4, t - 1 - t // 4                        # rows 2..6 at t = 9
    band = ((rows >= top) & (rows <= bottom)).float()
    shade = -0.9 + 0.9 * (rows - top) / max(1, bottom - top)   # -0.9 (top) .. 0.0 (bottom)
    return {"left_eye": eye, "right_eye": eye, "mouth": (band, shade)}


def face_layout(size: int) -> dict[str, tuple[int, int]]:
    """Top-left (row, col) of each part's stamp in an upright face of side ``size`` (before the ±1 px jitter):
    eyes side by side in the upper half, the mouth centred below; every stamp 0.16 x size from the frame (5 px at
    size 32) and the stamps 4 px apart at size 32, so that no 5-pixel window of a local net touches the zero
    padding and a part, or two parts."""
    t = face_stamps(size)["mouth"][0].shape[0]
    m = int(round(0.16 * size))
    return {"left_eye": (m, m), "right_eye": (m, size - m - t),
            "mouth": (size - m - t, (size - t) // 2)}


def face_clearance(size: int) -> tuple[int, int]:
    """(margin, gap) in pixels of :func:`face_layout` at side ``size``, after the ±1 px jitter: the fewest pixels
    between a part's stamp and the frame, and between two stamps. A local net of receptive field ``rf`` with zero
    padding sees the padding and a part in one window when margin < rf - 1, and two parts when gap < rf - 1."""
    t = face_stamps(size)["mouth"][0].shape[0]
    boxes = list(face_layout(size).values())
    margin = min(min(r, c, size - r - t, size - c - t) for r, c in boxes) - 1
    gap = min(max(r2 - r1 - t, r1 - r2 - t, c2 - c1 - t, c1 - c2 - t)
              for i, (r1, c1) in enumerate(boxes) for (r2, c2) in boxes[i + 1:])
    return margin, gap


def check_face_geometry(size: int, local_rf: int) -> None:
    """Raise :class:`~thesislib.config.ConfigError` when the local net (receptive field ``local_rf``) could see the
    padding and a part, or two parts, in one window of a ``size``-pixel face: its at-chance verdict on scrambled
    faces would then not mean what the page says."""
    margin, gap = face_clearance(size)
    if margin < local_rf - 1 or gap < local_rf - 1:
        raise ConfigError(f"LCIParams: face_size {size} leaves {margin} px to the frame and {gap} px between parts; "
                          f"a local net of receptive field {local_rf} needs at least {local_rf - 1} for both "
                          "(raise face_size or lower local_rf)")


def procedural_faces(n: int, size: int, parts: str, seed: int) -> Tensor:
    """``n`` grey "faces" (n, 1, size, size) in [-1, 1], upright and aligned (every face's parts at the same
    places of the frame, ±1 px, like CelebA's aligned crops), drawn with ``seed``.

    The background is noise N(0.6, 0.2²) (no orientation, also where a local net sees the zero padding);
    :func:`face_stamps`'s parts are pasted at :func:`face_layout`'s places. ``parts``:

    * ``"upright"``: every part upright: a window on an eye or the mouth shows which way is up (the CelebA
      case of the thesis's rotation shortcut);
    * ``"scrambled"``: the same parts at the same places, each turned by its own uniform random multiple of
      90°: every part's orientation is independent of the face's, so the up direction is only in the
      global arrangement (mouth below the two eyes). Turning the image by k x 90° leaves the distribution of
      its local windows unchanged."""
    if parts not in ("upright", "scrambled"):
        raise ValueError(f"procedural_faces: parts must be 'upright' or 'scrambled', got {parts!r}")
    rng = np.random.default_rng([seed, int(parts == "scrambled")])
    stamps, layout = face_stamps(size), face_layout(size)
    t = stamps["mouth"][0].shape[0]
    out = torch.empty(n, 1, size, size)
    for i in range(n):
        img = torch.from_numpy(rng.normal(0.6, 0.2, (size, size)).astype(np.float32))
        dy, dx = (int(v) for v in rng.integers(-1, 2, size=2))
        for name in FACE_PARTS:
            alpha, value = stamps[name]
            if parts == "scrambled":
                k = int(rng.integers(4))
                alpha, value = torch.rot90(alpha, k), torch.rot90(value, k)
            r, c = layout[name][0] + dy, layout[name][1] + dx
            window = img[r:r + t, c:c + t]
            img[r:r + t, c:c + t] = window * (1 - alpha) + value * alpha
        out[i, 0] = img.clamp(-1, 1)
    return out


__all__ += ["stl10_finetune_data"]


def stl10_finetune_data(params: LCIParams) -> tuple[Dataset, Dataset]:
    """Table 4.7's fine-tune data: STL-10's 5,000 labelled train and 8,000 test images, each ``(float (3, L, L) in
    [-1, 1], label)`` with L = ``load_size`` (the whole 96-px image resized to the scale C saw during the
    self-supervised training; the fine-tune cuts random and the test fixed random ``image_size`` crops).
    A missing data set raises naming ``$THESISLIB_DATA/stl10`` and its layout (:class:`thesislib.data.stl10.STL10`)."""
    root = dataset_dir("stl10", data_root=params.data_root)
    view = CenterCrop(params.load_size, params.load_size)
    return STL10("train", root=root, transform=view), STL10("test", root=root, transform=view)


__all__ += ["NUM_CLASSES"]

NUM_CLASSES = {"smoke": 10, "stl10": 10, "imagenet": IMAGENET_CLASSES}
"""Classes of each single-label data set (Fig. 4.1's supervised C: digits, STL-10, ILSVRC-2012)."""
