"""PASCAL VOC 2007 classification (20 classes, mAP), read from the devkit's XML annotations.

The transfer benchmark of the self-supervised chapters (Jenni Tables 3.3, 4.x; Krähenbühl et al.'s
framework): fine-tune on ``trainval`` (5,011 images), test on ``test`` (4,952). Layout, under
``$THESISLIB_DATA`` (the same ``voc/`` directory as VOC 2012: both releases unpack into
``VOCdevkit/``)::

    voc/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    voc/VOCdevkit/VOC2007/Annotations/<id>.xml
    voc/VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt

**Labels** (the devkit's classification ground truth, as in ``ImageSets/Main/<class>_<split>.txt``):
for each class, 1 when the image has a non-difficult object of it, 0 when it has only
``<difficult>1</difficult>`` objects of it, -1 otherwise. The evaluation ignores the 0 entries
(VOC ``VOCevalcls``); :func:`voc07_targets` turns the (N, 20) {-1, 0, 1} matrix into the
targets of :func:`thesislib.eval.multilabel.mean_ap` with the difficult entries dropped per class.

Items are dicts ``image`` uint8 numpy (H, W, 3), ``labels`` int8 numpy (20,) in {-1, 0, 1}, ``id``;
a ``transform`` receives the dict. A missing file raises DatasetNotFoundError with the layout; an
annotation that does not parse, or names an unknown class, raises DatasetCorruptError naming it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir, suggest_root
from thesislib.data.transforms import NORMALIZATIONS, as_size, normalize, resize_image, to_tensor

DATASET = "PASCAL VOC 2007"
VOC07_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
VOC07_SPLITS: tuple[str, ...] = ("train", "val", "trainval", "test")
VOC07_INNER = "VOCdevkit/VOC2007"
VOC07_LAYOUT = """voc/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
voc/VOCdevkit/VOC2007/Annotations/<id>.xml
voc/VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt"""
_DOWNLOAD = ("VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar from "
             "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/, both unpacked into voc/")


def parse_annotation(path: Path) -> np.ndarray:
    """One VOC XML annotation -> int8 (20,) labels in {-1, 0, 1} (see the module docstring)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DatasetCorruptError(DATASET, path, f"annotation XML does not parse: {err}") from err
    labels = np.full(len(VOC07_CLASSES), -1, dtype=np.int8)
    for obj in root.iter("object"):
        name_el = obj.find("name")
        name = (name_el.text or "").strip() if name_el is not None else ""
        if name not in VOC07_CLASSES:
            raise DatasetCorruptError(DATASET, path, f"object class {name!r} is not a VOC class")
        difficult_el = obj.find("difficult")
        difficult = difficult_el is not None and (difficult_el.text or "0").strip() == "1"
        k = VOC07_CLASSES.index(name)
        labels[k] = max(int(labels[k]), 0 if difficult else 1)
    return labels


def voc07_targets(labels: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 20) {-1, 0, 1} labels -> ``(targets (N, 20) float 0/1, valid (N, 20) bool)``; difficult = invalid."""
    t = torch.as_tensor(np.asarray(labels))
    return (t > 0).float(), t != 0


class VOC2007Classification(torch.utils.data.Dataset):
    """VOC 2007 image-level labels of one split (``"train"``, ``"val"``, ``"trainval"``, ``"test"``).

    ``root``: the ``voc/`` directory (rule of :mod:`thesislib.data.roots`); ``limit`` keeps the first
    ``limit`` ids (0 = all). All annotations of the split are parsed up front into ``labels``
    (N, 20) int8, so a bad file is reported at construction.
    """

    def __init__(self, split: str = "trainval", root: str | os.PathLike[str] | None = None, limit: int = 0,
                 transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        if split not in VOC07_SPLITS:
            raise ValueError(f"split must be one of {VOC07_SPLITS}, got {split!r}")
        looked = dataset_dir("voc", root)
        self.root = looked / VOC07_INNER
        list_path = self.root / "ImageSets" / "Main" / f"{split}.txt"
        if not list_path.is_file():
            raise DatasetNotFoundError(DATASET, looked, VOC07_LAYOUT,
                                       missing=f"{VOC07_INNER}/ImageSets/Main/{split}.txt", download=_DOWNLOAD,
                                       suggestion=suggest_root("voc", looked, VOC07_INNER))
        ids = [line.split()[0] for line in list_path.read_text().splitlines() if line.strip()]
        if limit:
            ids = ids[:limit]
        missing = [f"{VOC07_INNER}/{sub}/{i}{ext}" for i in ids
                   for sub, ext in (("Annotations", ".xml"), ("JPEGImages", ".jpg"))
                   if not (self.root / sub / f"{i}{ext}").is_file()]
        if missing:
            raise DatasetNotFoundError(DATASET, looked, VOC07_LAYOUT, missing=missing, download=_DOWNLOAD,
                                       hint=f"{len(missing)} file(s) of split {split!r} are absent.")
        self.ids = ids
        self.transform = transform
        self.labels = (np.stack([parse_annotation(self.root / "Annotations" / f"{i}.xml") for i in ids])
                       if ids else np.zeros((0, len(VOC07_CLASSES)), np.int8))

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int) -> dict[str, Any]:
        i = self.ids[index]
        return {"image": read_rgb(self.root / "JPEGImages" / f"{i}.jpg", DATASET),
                "labels": self.labels[index], "id": i}

    def __getitem__(self, index: int) -> Any:
        sample = self.read(index)
        return self.transform(sample) if self.transform is not None else sample



@dataclass(frozen=True)
class VOC07Input:
    """Item transform for the transfer protocol: resize to ``size`` (no crop), normalise.

    ``{"image", "labels", ...}`` -> ``(float32 (3, h, w), int8 labels (20,) in {-1, 0, 1})``; the
    crops of :mod:`thesislib.eval.transfer` are cut from this. ``normalization`` must match what the
    transferred network was trained on: ``"imagenet"`` for torchvision-style inputs, ``"symmetric"``
    ([-1, 1]) for Jenni ch. 3's discriminator (trained on tanh-range images).
    """

    size: tuple[int, int] | int = (256, 256)
    normalization: str = "imagenet"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", as_size(self.size))
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {tuple(NORMALIZATIONS)}, got {self.normalization!r}")

    def __call__(self, sample: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        image = normalize(resize_image(to_tensor(sample["image"]), self.size), self.normalization)
        return image, torch.as_tensor(np.asarray(sample["labels"]), dtype=torch.int8)


# --- Detection: the boxes of the same annotations (Jenni Table 3.3's VOC07 detection transfer) ---

@dataclass(frozen=True)
class VOC07Boxes:
    """One image's objects: ``boxes`` float32 (K, 4) as (x1, y1, x2, y2) in 0-based pixel coordinates
    (the devkit's 1-based inclusive ``xmin..xmax`` -> ``xmin - 1 .. xmax``, so a box's width is
    ``xmax - xmin + 1`` pixels), ``labels`` int64 (K,) in 1..20 (0 is background, as torchvision's
    detectors count), ``difficult`` bool (K,)."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray


def _box_number(obj: ET.Element, tag: str, path: Path) -> float:
    el = obj.find(f"bndbox/{tag}")
    try:
        return float((el.text or "").strip()) if el is not None else float("nan")
    except ValueError as err:
        raise DatasetCorruptError(DATASET, path, f"bndbox/{tag} is not a number: {el.text!r}") from err


def parse_boxes(path: Path) -> VOC07Boxes:
    """The objects of one VOC XML annotation (see :class:`VOC07Boxes`); a missing or empty box, or an
    unknown class, raises DatasetCorruptError naming the file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DatasetCorruptError(DATASET, path, f"annotation XML does not parse: {err}") from err
    boxes, labels, difficult = [], [], []
    for k, obj in enumerate(root.iter("object")):
        name_el = obj.find("name")
        name = (name_el.text or "").strip() if name_el is not None else ""
        if name not in VOC07_CLASSES:
            raise DatasetCorruptError(DATASET, path, f"object class {name!r} is not a VOC class")
        x1, y1, x2, y2 = (_box_number(obj, t, path) for t in ("xmin", "ymin", "xmax", "ymax"))
        if not all(np.isfinite((x1, y1, x2, y2))) or x2 < x1 or y2 < y1:
            raise DatasetCorruptError(DATASET, path, f"object {k} ({name}) has no valid bndbox "
                                                     f"({x1}, {y1}, {x2}, {y2})")
        boxes.append((x1 - 1.0, y1 - 1.0, x2, y2))
        labels.append(VOC07_CLASSES.index(name) + 1)
        difficult_el = obj.find("difficult")
        difficult.append(difficult_el is not None and (difficult_el.text or "0").strip() == "1")
    return VOC07Boxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64),
                      np.asarray(difficult, bool))


class VOC2007Detection(VOC2007Classification):
    """VOC 2007 boxes of one split: items ``{"image": uint8 (H, W, 3), "boxes", "labels", "difficult"`` (see
    :class:`VOC07Boxes`), ``"id"}``, or what ``transform`` makes of that dict. Every annotation is parsed
    at construction (a bad file is reported then); layout and errors as :class:`VOC2007Classification`."""

    def __init__(self, split: str = "trainval", root: str | os.PathLike[str] | None = None, limit: int = 0,
                 transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        super().__init__(split, root, limit, transform)
        self.objects = [parse_boxes(self.root / "Annotations" / f"{i}.xml") for i in self.ids]

    def read(self, index: int) -> dict[str, Any]:
        sample = super().read(index)
        obj = self.objects[index]
        sample.update(boxes=obj.boxes, labels=obj.labels, difficult=obj.difficult)
        return sample


@dataclass(frozen=True)
class VOC07DetectionInput:
    """Item transform for torchvision detectors: ``(image float32 (3, H, W) in [0, 1], target)`` with
    ``target = {"boxes" (K, 4) float32, "labels" (K,) int64, "difficult" (K,) bool}``; with ``flip``, a
    left-right mirror with probability 1/2 (torch's global generator, seeded per sample by the engine).
    Resizing and normalisation are the detector's own (``GeneralizedRCNNTransform``); training drops
    the difficult objects (``keep_difficult=False``, the Fast R-CNN convention), testing keeps them
    for the evaluation to ignore."""

    flip: bool = False
    keep_difficult: bool = True

    def __call__(self, sample: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = to_tensor(sample["image"])
        boxes = torch.as_tensor(np.asarray(sample["boxes"]), dtype=torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(np.asarray(sample["labels"]), dtype=torch.int64)
        difficult = torch.as_tensor(np.asarray(sample["difficult"]), dtype=torch.bool)
        if not self.keep_difficult:
            boxes, labels, difficult = boxes[~difficult], labels[~difficult], difficult[~difficult]
        if self.flip and bool(torch.randint(0, 2, ()) == 1):
            image = image.flip(-1)
            w = image.shape[-1]
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
        return image, {"boxes": boxes, "labels": labels, "difficult": difficult}
