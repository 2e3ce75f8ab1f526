"""ILSVRC CLS-LOC (ImageNet classification with localization) read from its real on-disk layout.

Thesis chapter 3 evaluates boxes on ILSVRC 2014 *val* with the classification-with-localization
protocol and clusters patterns of the *train* images (study note 001, section 2.3). The 2012-2014
CLS-LOC images and boxes are the same. Supported layout: the ``ILSVRC/`` tree of the CLS-LOC
release as distributed with the Kaggle "ImageNet Object Localization Challenge", under
``$THESISLIB_DATA/imagenet`` (``root`` follows :mod:`thesislib.data.roots`: non-empty, it is the
``imagenet/`` directory itself)::

    imagenet/LOC_synset_mapping.txt     "<wnid> <names>" per line; line order = class index 0..999
    imagenet/LOC_val_solution.csv       ImageId,PredictionString ("<wnid> x0 y0 x1 y1 <wnid> ...")
    imagenet/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG
    imagenet/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG
    imagenet/ILSVRC/Annotations/CLS-LOC/train/<wnid>/<wnid>_<n>.xml   (boxes for a subset of train)
    imagenet/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml

The synset file and the images are required. Val ground truth comes from ``LOC_val_solution.csv``
when present, else from the val XML files (one of the two must exist). Train XML files are
optional: only the simulated annotator reads them. The XML files are PASCAL-VOC style
(``<size><width/><height/></size>``, one ``<object><name>wnid</name><bndbox>xmin ymin xmax
ymax</bndbox></object>`` per box). Their coordinates, like the CSV's, are inclusive pixel
indices; the ILSVRC devkit measures a box as ``xmax - xmin + 1`` wide. They are returned here
in pixel-edge coordinates ``(xmin, ymin, xmax + 1, ymax + 1)`` (see
:mod:`thesislib.methods.micro_annotation.regions`).

Items are dicts: ``image`` uint8 (H, W, 3) RGB, ``label`` int, ``boxes`` float64 (n, 4) of the
image's class (may be empty for train images without an XML file), ``size`` (H, W), ``id``.
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from thesislib.data.crops import LabelledRandomCrop, LabelledResize
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir, suggest_root
from thesislib.data.scene_datasets import PLACES205_CLASSES, Places205
from thesislib.data.transforms import IMAGENET, normalize, resize_image, to_tensor

DATASET = "ILSVRC CLS-LOC"
IMAGENET_LAYOUT = """imagenet/LOC_synset_mapping.txt      ("<wnid> <names>" per line, in class order)
imagenet/LOC_val_solution.csv        (ImageId,PredictionString) or the val XML files below
imagenet/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG
imagenet/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG
imagenet/ILSVRC/Annotations/CLS-LOC/train/<wnid>/<wnid>_<n>.xml   (optional, PASCAL-VOC-style boxes)
imagenet/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml"""
_DOWNLOAD = ("the Kaggle 'ImageNet Object Localization Challenge' "
             "(https://www.kaggle.com/c/imagenet-object-localization-challenge, "
             "imagenet-object-localization-challenge.zip), "
             "unpacked into imagenet/")
SPLITS = ("train", "val")
_IMAGE_SUFFIXES = (".JPEG", ".jpeg", ".jpg")


def _not_found(root: Path, missing: Sequence[str]) -> DatasetNotFoundError:
    return DatasetNotFoundError(DATASET, root, IMAGENET_LAYOUT, missing=missing, download=_DOWNLOAD,
                                suggestion=suggest_root("imagenet", root, "ILSVRC"))


def check_layout(root: str | Path | None = None) -> Path:
    """Raise :class:`DatasetNotFoundError` (naming the layout) unless the required parts exist."""
    base = dataset_dir("imagenet", root)
    data = base / "ILSVRC" / "Data" / "CLS-LOC"
    missing = [str(p.relative_to(base)) for p in (base / "LOC_synset_mapping.txt", data / "train", data / "val")
               if not p.exists()]
    val_xml = base / "ILSVRC" / "Annotations" / "CLS-LOC" / "val"
    if not (base / "LOC_val_solution.csv").is_file() and not val_xml.is_dir():
        missing.append("LOC_val_solution.csv or ILSVRC/Annotations/CLS-LOC/val/")
    if missing:
        raise _not_found(base, missing)
    return base


def read_synsets(path: Path) -> tuple[list[str], list[str]]:
    """``LOC_synset_mapping.txt`` -> (wnids, names) in file order (= class indices)."""
    wnids, names = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if not parts[0].startswith("n") or not parts[0][1:].isdigit():
            raise DatasetCorruptError(DATASET, path, f"line {number} does not start with a wnid: {line[:40]!r}")
        wnids.append(parts[0])
        names.append(parts[1] if len(parts) > 1 else parts[0])
    if len(set(wnids)) != len(wnids):
        raise DatasetCorruptError(DATASET, path, "a wnid is listed twice")
    return wnids, names


def read_box_xml(path: Path) -> tuple[tuple[int, int], list[tuple[str, np.ndarray]]]:
    """A PASCAL-VOC-style annotation: ((H, W), [(wnid, box (4,) pixel-edge coordinates), ...])."""
    try:
        tree = ET.parse(path).getroot()
        size = tree.find("size")
        height, width = int(size.findtext("height")), int(size.findtext("width"))
        objects = []
        for obj in tree.iter("object"):
            bb = obj.find("bndbox")
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            objects.append((obj.findtext("name").strip(), np.array([x0, y0, x1 + 1, y1 + 1])))
    except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
        raise DatasetCorruptError(DATASET, path, f"unreadable box annotation: {err}") from err
    return (height, width), objects


def read_val_solution(path: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``LOC_val_solution.csv`` -> {image id: [(wnid, box pixel-edge (4,)), ...]}."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DatasetCorruptError(DATASET, path, f"expected the header ImageId,PredictionString, got {header}")
        for row in reader:
            if not row:
                continue
            fields = row[1].split()
            if len(row) != 2 or not fields or len(fields) % 5:
                raise DatasetCorruptError(DATASET, path, f"malformed row {row[:2]}")
            boxes = []
            for k in range(0, len(fields), 5):
                x0, y0, x1, y1 = (float(v) for v in fields[k + 1:k + 5])
                boxes.append((fields[k], np.array([x0, y0, x1 + 1, y1 + 1])))
            out[row[0]] = boxes
    return out


def _images_in(folder: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if n.endswith(_IMAGE_SUFFIXES))
    except FileNotFoundError:
        return []


class ImageNetLocalization(torch.utils.data.Dataset):
    """ILSVRC CLS-LOC ``train`` or ``val`` (layout in the module docstring), a map-style dataset.

    Args:
        split: ``"train"`` or ``"val"``.
        root: the ``imagenet/`` directory ('' or None: ``$THESISLIB_DATA/imagenet``).
        classes: wnids to keep (default all); class indices stay those of the synset file.
        max_per_class: keep the first n images of each class (sorted file names; 0 = all).
        transform: applied to the item dict.

    Attributes: ``wnids`` and ``names`` (all classes, in index order), ``ids``, ``labels`` (N,)
    int64, ``paths``.
    """

    def __init__(self, split: str, root: str | Path | None = None, classes: Sequence[str] | None = None,
                 max_per_class: int = 0, transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.transform = split, transform
        self.root = check_layout(root)
        self.wnids, self.names = read_synsets(self.root / "LOC_synset_mapping.txt")
        index = {w: i for i, w in enumerate(self.wnids)}
        unknown = [c for c in (classes or []) if c not in index]
        if unknown:
            raise KeyError(f"unknown wnid(s) {unknown[:5]}; the synset file lists {len(self.wnids)} classes")
        keep = set(classes) if classes else set(self.wnids)
        data = self.root / "ILSVRC" / "Data" / "CLS-LOC" / split
        self._ann = self.root / "ILSVRC" / "Annotations" / "CLS-LOC" / split
        self.ids: list[str] = []
        self.paths: list[Path] = []
        labels: list[int] = []
        self._val: dict[str, list[tuple[str, np.ndarray]]] | None = None
        if split == "train":
            for wnid in self.wnids:
                if wnid not in keep:
                    continue
                files = _images_in(data / wnid)
                if not files:
                    raise _not_found(self.root, [f"ILSVRC/Data/CLS-LOC/train/{wnid}/*.JPEG"])
                files = files[:max_per_class] if max_per_class else files
                self.ids += [os.path.splitext(f)[0] for f in files]
                self.paths += [data / wnid / f for f in files]
                labels += [index[wnid]] * len(files)
        else:
            solution = self.root / "LOC_val_solution.csv"
            self._val = read_val_solution(solution) if solution.is_file() else None
            counts: dict[int, int] = {}
            for f in _images_in(data):
                image_id = os.path.splitext(f)[0]
                objects = self._val_objects(image_id)
                if not objects:
                    raise DatasetCorruptError(DATASET, data / f, "a val image without ground truth")
                label = index.get(objects[0][0])
                if label is None:
                    raise DatasetCorruptError(DATASET, data / f, f"unknown wnid {objects[0][0]}")
                if self.wnids[label] not in keep or (max_per_class and counts.get(label, 0) >= max_per_class):
                    continue
                counts[label] = counts.get(label, 0) + 1
                self.ids.append(image_id)
                self.paths.append(data / f)
                labels.append(label)
        self.labels = np.asarray(labels, dtype=np.int64)

    def _val_objects(self, image_id: str) -> list[tuple[str, np.ndarray]]:
        if self._val is not None:
            return self._val.get(image_id, [])
        path = self._ann / f"{image_id}.xml"
        if not path.is_file():
            raise _not_found(self.root, [f"ILSVRC/Annotations/CLS-LOC/val/{image_id}.xml"])
        return read_box_xml(path)[1]

    def __len__(self) -> int:
        return len(self.ids)

    def boxes(self, index: int) -> np.ndarray:
        """Ground-truth boxes (n, 4) of item ``index``'s own class, pixel-edge coordinates of the
        original image; empty for a train image without an XML file."""
        wnid = self.wnids[int(self.labels[index])]
        if self.split == "val":
            objects = self._val_objects(self.ids[index])
        else:
            path = self._ann / wnid / f"{self.ids[index]}.xml"
            objects = read_box_xml(path)[1] if path.is_file() else []
        found = [box for name, box in objects if name == wnid]
        return np.asarray(found, dtype=np.float64).reshape(-1, 4)

    def has_boxes(self, index: int) -> bool:
        """True for val items and for train items with an XML file."""
        if self.split == "val":
            return True
        return (self._ann / self.wnids[int(self.labels[index])] / f"{self.ids[index]}.xml").is_file()

    def indices_of(self, label: int) -> np.ndarray:
        """Positions of the items of class ``label``."""
        return np.flatnonzero(self.labels == label)

    def read(self, index: int) -> dict[str, Any]:
        image = read_rgb(self.paths[index], DATASET)
        return {"image": image, "label": int(self.labels[index]), "boxes": self.boxes(index),
                "size": image.shape[:2], "id": self.ids[index]}

    def __getitem__(self, index: int) -> Any:
        item = self.read(index)
        return self.transform(item) if self.transform is not None else item


class ResizeNormalize:
    """Item dict -> (image float32 (3, S, S), label, original size (2,) int64, boxes in the S x S
    frame (n, 4) float64). Square resize without crop (:func:`~thesislib.data.transforms.resize_image`:
    the whole image stays visible, so every ground-truth box stays inside) and ImageNet
    normalisation."""

    def __init__(self, size: int = 224) -> None:
        self.size = int(size)

    def __call__(self, item: dict[str, Any]) -> tuple[Tensor, int, Tensor, np.ndarray]:
        image = normalize(resize_image(to_tensor(item["image"]), self.size), IMAGENET)
        height, width = item["size"]
        scale = np.array([self.size / width, self.size / height] * 2)
        return (image, item["label"], torch.tensor([height, width]),
                np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4) * scale)


def collate_localization(batch: list[tuple[Tensor, int, Tensor, np.ndarray]]
                         ) -> tuple[Tensor, Tensor, Tensor, list[np.ndarray]]:
    """Stack :class:`ResizeNormalize` items: images (B, 3, S, S), labels (B,), sizes (B, 2), boxes list."""
    images, labels, sizes, boxes = zip(*batch)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long), torch.stack(sizes), list(boxes)


IMAGENET_CLASSES = 1000
"""ILSVRC's class count (the linear probes' output size)."""

LINEAR_PROBE_SETS = ("imagenet", "places205")


def linear_probe_sets(name: str, side: int, data_root: str | Path | None = None,
                      load: int = 0) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset, int]:
    """``(train, test, num_classes)`` of the streaming linear probes on all of ImageNet (``name`` "imagenet":
    ILSVRC train / val, 1000 classes; Jenni Tables 3.4, 4.5) or Places205 ("places205": the release's train / val
    csv, 205 classes; Table 4.6), under ``data_root`` (or ``$THESISLIB_DATA``).

    Train items: (float (3, side, side) in [-1, 1], label), the image resized whole to ``load`` and a fresh random
    ``side`` crop and flip each read (:class:`thesislib.data.crops.LabelledRandomCrop`); test items: the image
    resized whole to ``load`` (float (3, load, load)), whose centre (and ten) ``side`` crops the probe cuts
    (:func:`thesislib.eval.streaming_probe.streaming_probe` with ``crop=side``). ``load`` 0: round(1.15 x side),
    :class:`thesislib.data.crops.ImageNetCrop`'s margin (258 for 224 crops); Zhang et al.'s Caffe protocol loads
    256."""
    if name not in LINEAR_PROBE_SETS:
        raise ValueError(f"unknown linear-probe data set {name!r}; choose one of {LINEAR_PROBE_SETS}")
    load = load or int(round(side * 1.15))
    if load < side:
        raise ValueError(f"linear_probe_sets: load {load} is smaller than the crop side {side}")
    train_view, test_view = LabelledRandomCrop(side, load), LabelledResize(load)
    if name == "places205":
        root = dataset_dir("places205", data_root=data_root)
        return (Places205("train", root=root, transform=train_view), Places205("val", root=root, transform=test_view),
                PLACES205_CLASSES)
    root = dataset_dir("imagenet", data_root=data_root)
    return (ImageNetLocalization("train", root=root, transform=train_view),
            ImageNetLocalization("val", root=root, transform=test_view), IMAGENET_CLASSES)
