"""MS COCO 2014 as image-level multi-label classification (80 classes), as in G-softmax §IV-B.

On-disk layout (the official 2014 release), under ``$THESISLIB_DATA`` (``root`` follows the rule
of :mod:`thesislib.data.roots`: non-empty, it is the ``coco/`` directory itself)::

    coco/annotations/instances_train2014.json
    coco/annotations/instances_val2014.json
    coco/train2014/COCO_train2014_000000000009.jpg ...
    coco/val2014/COCO_val2014_000000000042.jpg ...

An image's label vector y in {0, 1}^80 has y_c = 1 when at least one object annotation of
category c is on the image (crowd annotations included by default). Categories are mapped to
contiguous indices 0..79 in ascending COCO category-id order (person = 0, ..., toothbrush = 79).
Images without any annotation are dropped when ``drop_unlabeled`` (the paper, following SRN:
82,081 train / 40,137 val of the raw 82,783 / 40,504).

The annotation file (about 450 MB for train2014) is parsed once in the constructor into
arrays; ``__getitem__`` only opens one JPEG.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import open_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir, suggest_root

COCO_SPLITS: tuple[str, ...] = ("train2014", "val2014")
COCO_LAYOUT = """coco/annotations/instances_train2014.json
coco/annotations/instances_val2014.json
coco/train2014/<file_name>.jpg   (e.g. COCO_train2014_000000000009.jpg)
coco/val2014/<file_name>.jpg     (e.g. COCO_val2014_000000000042.jpg)"""
DATASET = "MS COCO 2014"
_DOWNLOAD = ("train2014.zip, val2014.zip and annotations_trainval2014.zip from https://cocodataset.org "
             "(images.cocodataset.org/zips/ and /annotations/), all three unpacked into coco/")


def parse_instances(instances: dict[str, Any], include_crowd: bool = True
                    ) -> tuple[np.ndarray, list[str], np.ndarray, list[str], np.ndarray]:
    """Turn a parsed ``instances_*.json`` into arrays.

    Returns ``(image_ids int64 (N,) ascending, file_names (N,), category_ids int64 (80,)
    ascending, class_names (80,), labels uint8 (N, 80))``; all images, labelled or not.
    Raises ValueError for annotations that name an unknown image or category.
    """
    images = instances["images"]
    categories = sorted(instances["categories"], key=lambda c: c["id"])
    annotations = instances["annotations"]
    image_ids = np.asarray([im["id"] for im in images], dtype=np.int64)
    order = np.argsort(image_ids, kind="stable")
    image_ids = image_ids[order]
    file_names = [images[i]["file_name"] for i in order]
    if len(np.unique(image_ids)) != len(image_ids):
        raise ValueError("duplicate image ids")
    category_ids = np.asarray([c["id"] for c in categories], dtype=np.int64)
    class_names = [c["name"] for c in categories]

    labels = np.zeros((len(image_ids), len(category_ids)), dtype=np.uint8)
    if annotations:
        ann_img = np.asarray([a["image_id"] for a in annotations], dtype=np.int64)
        ann_cat = np.asarray([a["category_id"] for a in annotations], dtype=np.int64)
        if not include_crowd:
            keep = np.asarray([not a.get("iscrowd", 0) for a in annotations], dtype=bool)
            ann_img, ann_cat = ann_img[keep], ann_cat[keep]
        row = np.searchsorted(image_ids, ann_img)
        col = np.searchsorted(category_ids, ann_cat)
        bad_img = (row >= len(image_ids)) | (image_ids[np.minimum(row, len(image_ids) - 1)] != ann_img)
        bad_cat = (col >= len(category_ids)) | (category_ids[np.minimum(col, len(category_ids) - 1)] != ann_cat)
        if bad_img.any():
            raise ValueError(f"{int(bad_img.sum())} annotations refer to unknown image ids, "
                             f"e.g. {int(ann_img[bad_img][0])}")
        if bad_cat.any():
            raise ValueError(f"{int(bad_cat.sum())} annotations refer to unknown category ids, "
                             f"e.g. {int(ann_cat[bad_cat][0])}")
        labels[row, col] = 1
    return image_ids, file_names, category_ids, class_names, labels


class CocoMultiLabel(torch.utils.data.Dataset):
    """MS COCO 2014 image-level multi-label dataset.

    Items are ``(image, target)``: the RGB image (a PIL image, or whatever ``transform``
    returns) and a float32 tensor (80,) of 0/1 labels. Attributes (parsed once):
    ``image_ids`` int64 (N,), ``file_names`` (N,), ``labels`` uint8 (N, 80),
    ``category_ids`` int64 (80,) ascending, ``class_names`` (80,).
    Images are ordered by ascending image id.

    Args:
        root: the ``coco/`` directory ('' or None: ``$THESISLIB_DATA/coco``).
        split: ``"train2014"`` (the paper's training set) or ``"val2014"`` (its test set).
        transform: applied to the PIL image.
        drop_unlabeled: drop images with no (counted) annotation.
        include_crowd: count ``iscrowd=1`` annotations as labels (default, as in the usual
            image-level COCO protocol); with False an image whose only objects are crowds
            becomes unlabeled.
    """

    def __init__(self, root: str | Path | None = None, split: str = "train2014",
                 transform: Callable[[Any], Any] | None = None, drop_unlabeled: bool = True,
                 include_crowd: bool = True) -> None:
        if split not in COCO_SPLITS:
            raise ValueError(f"split must be one of {COCO_SPLITS}, got {split!r}")
        self.root = dataset_dir("coco", root)
        self.split = split
        self.transform = transform
        ann_path = self.root / "annotations" / f"instances_{split}.json"
        self.image_dir = self.root / split
        missing = [str(p.relative_to(self.root)) for p in (ann_path, self.image_dir) if not p.exists()]
        if missing:
            raise DatasetNotFoundError(DATASET, self.root, COCO_LAYOUT, missing=missing, download=_DOWNLOAD,
                                       suggestion=suggest_root("coco", self.root, "annotations"))
        try:
            with ann_path.open("rb") as fh:
                instances = json.load(fh)
            parsed = parse_instances(instances, include_crowd=include_crowd)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
            raise DatasetCorruptError(DATASET, ann_path, f"{type(err).__name__}: {err}") from err
        del instances
        image_ids, file_names, category_ids, class_names, labels = parsed
        self.num_images_total = len(image_ids)
        if drop_unlabeled:
            keep = labels.any(axis=1)
            image_ids, labels = image_ids[keep], labels[keep]
            file_names = [f for f, k in zip(file_names, keep) if k]
        self.image_ids = image_ids
        self.file_names = np.asarray(file_names, dtype=str)
        self.labels = labels
        self.category_ids = category_ids
        self.class_names = class_names
        self._targets = torch.from_numpy(labels.astype(np.float32))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def targets(self) -> torch.Tensor:
        """All label vectors, float32 (N, 80)."""
        return self._targets

    def category_index(self, category_id: int) -> int:
        """Contiguous index of a COCO category id (e.g. 90 -> 79)."""
        hits = np.flatnonzero(self.category_ids == category_id)
        if len(hits) == 0:
            raise KeyError(f"unknown COCO category id {category_id}")
        return int(hits[0])

    def image_path(self, index: int) -> Path:
        return self.image_dir / str(self.file_names[index])

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        path = self.image_path(index)
        try:
            image = open_rgb(path, DATASET)
        except FileNotFoundError:
            raise DatasetNotFoundError(DATASET, self.root, COCO_LAYOUT, missing=str(path.relative_to(self.root)),
                                       download=_DOWNLOAD) from None
        if self.transform is not None:
            image = self.transform(image)
        return image, self._targets[index]
