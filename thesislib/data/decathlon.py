"""The Visual Decathlon (Rebuffi et al. 2017) read from its distributed on-disk format.

The release (``decathlon-1.0-data.tar.gz`` with the images of nine domains, plus ImageNet at 72 px
from the challenge page, and ``decathlon-1.0-devkit`` with the annotations) unpacks to, under
``$THESISLIB_DATA/decathlon`` (``root`` follows :mod:`thesislib.data.roots`: non-empty, it is the
``decathlon/`` directory itself)::

    decathlon/annotations/<domain>_train.json        COCO-style, one per domain and split
    decathlon/annotations/<domain>_val.json
    decathlon/annotations/<domain>_test_stripped.json (no labels: the challenge's hidden test)
    decathlon/data/<domain>/{train,val,test}/<image>.jpg  (each "file_name" of the JSON is relative
                                                          to decathlon/, e.g. data/dtd/train/0000001.jpg)
    decathlon/decathlon_mean_std.pickle              (optional: {"<domain>mean": [r, g, b], "<domain>std": ...})

Every image is already resized isotropically to a 72-px shorter side (thesis Ch. 3 §4). The JSON
files hold ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations`` (one per
image: ``image_id``, ``category_id``) and ``categories`` (``id``, ``name``); category ids carry a
per-domain offset (e.g. 10000001...), and a domain's classes are its categories in ascending id
order, index 0..C-1 (the released code subtracts the smallest label: the same for contiguous ids).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir, suggest_root
from thesislib.data.transforms import resize_image, to_tensor

DATASET = "Visual Decathlon"
DECATHLON_DOMAINS: tuple[str, ...] = ("imagenet12", "aircraft", "cifar100", "daimlerpedcls", "dtd", "gtsrb",
                                      "vgg-flowers", "omniglot", "svhn", "ucf101")
#: Domains the released code neither flips nor randomly crops (text and symbols).
NO_FLIP_DOMAINS: tuple[str, ...] = ("gtsrb", "omniglot", "svhn")
SPLITS: tuple[str, ...] = ("train", "val", "test")
DECATHLON_LAYOUT = """decathlon/annotations/<domain>_train.json, <domain>_val.json, <domain>_test_stripped.json
decathlon/data/<domain>/train/<image>.jpg, val/..., test/...   (file_name in the JSON is relative to decathlon/)
decathlon/decathlon_mean_std.pickle   (optional per-domain mean/std)
domains: """ + ", ".join(DECATHLON_DOMAINS)
_DOWNLOAD = ("decathlon-1.0-devkit.tar.gz and decathlon-1.0-data.tar.gz (+ the 72-px ImageNet, "
             "decathlon-1.0-data-imagenet.tar) from https://www.robots.ox.ac.uk/~vgg/decathlon/, "
             "unpacked into decathlon/")
SHORT_SIDE = 72


def annotation_path(base: Path, domain: str, split: str) -> Path:
    name = f"{domain}_test_stripped.json" if split == "test" else f"{domain}_{split}.json"
    return base / "annotations" / name


def parse_annotations(instances: dict[str, Any], labelled: bool = True
                      ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """A decathlon JSON -> (file names, labels int64 (N,) in 0..C-1 (-1 without labels), class
    names (C,), category ids (C,) ascending). Images are in ascending image-id order; an image
    without an annotation (or with two) is a ValueError when ``labelled``."""
    categories = sorted(instances["categories"], key=lambda c: int(c["id"]))
    cat_ids = np.asarray([int(c["id"]) for c in categories], dtype=np.int64)
    images = sorted(instances["images"], key=lambda im: int(im["id"]))
    files = [str(im["file_name"]) for im in images]
    labels = np.full(len(images), -1, dtype=np.int64)
    if labelled:
        index = {int(im["id"]): i for i, im in enumerate(images)}
        class_of = {int(c): k for k, c in enumerate(cat_ids)}
        seen = np.zeros(len(images), dtype=np.int64)
        for ann in instances["annotations"]:
            i = index.get(int(ann["image_id"]))
            k = class_of.get(int(ann["category_id"]))
            if i is None or k is None:
                raise ValueError(f"annotation {ann.get('id')} names an unknown image or category")
            labels[i], seen[i] = k, seen[i] + 1
        if (seen != 1).any():
            bad = int(np.flatnonzero(seen != 1)[0])
            raise ValueError(f"image {files[bad]} has {int(seen[bad])} annotations, expected one")
    return files, labels, [str(c["name"]) for c in categories], cat_ids


def read_mean_std(base: Path, domain: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The released per-domain mean and std (RGB, in [0, 1]) from ``decathlon_mean_std.pickle``,
    or None when the file is absent."""
    path = base / "decathlon_mean_std.pickle"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            table = pickle.load(fh, encoding="latin1")
        return tuple(float(v) for v in table[f"{domain}mean"]), tuple(float(v) for v in table[f"{domain}std"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DatasetCorruptError(DATASET, path, f"{type(err).__name__}: {err}") from err


class DecathlonDomain(torch.utils.data.Dataset):
    """One domain and split of the Visual Decathlon (layout in the module docstring).

    Items are ``(image, label)``: uint8 (H, W, 3) RGB with a 72-px shorter side (or whatever
    ``transform`` makes of it) and an int (-1 for the unlabelled test split). Attributes:
    ``files``, ``labels`` int64 (N,), ``class_names``, ``num_classes``.
    """

    def __init__(self, domain: str, split: str = "train", root: str | Path | None = None,
                 transform: Callable[[np.ndarray], Any] | None = None) -> None:
        if domain not in DECATHLON_DOMAINS:
            raise ValueError(f"unknown decathlon domain {domain!r}; domains are {', '.join(DECATHLON_DOMAINS)}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.domain, self.split, self.transform = domain, split, transform
        self.root = dataset_dir("decathlon", root)
        ann = annotation_path(self.root, domain, split)
        folder = self.root / "data" / domain / split
        missing = [str(p.relative_to(self.root)) for p in (ann, folder) if not p.exists()]
        if missing:
            raise DatasetNotFoundError(DATASET, self.root, DECATHLON_LAYOUT, missing=missing, download=_DOWNLOAD,
                                       suggestion=suggest_root("decathlon", self.root, "annotations"))
        try:
            with ann.open("rb") as fh:
                parsed = parse_annotations(json.load(fh), labelled=split != "test")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
            raise DatasetCorruptError(DATASET, ann, f"{type(err).__name__}: {err}") from err
        self.files, self.labels, self.class_names, self.category_ids = parsed

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path = self.root / self.files[index]
        if not path.is_file():
            raise DatasetNotFoundError(DATASET, self.root, DECATHLON_LAYOUT, missing=self.files[index],
                                       download=_DOWNLOAD)
        image = read_rgb(path, DATASET)
        return (self.transform(image) if self.transform is not None else image), int(self.labels[index])


class DecathlonTransform:
    """uint8 (H, W, 3) -> normalised float32 (3, crop, crop), the released code's augmentation:
    resize to a ``short_side`` shorter side (a no-op on the release's own images); training: a
    random ``crop`` and a horizontal flip with probability 1/2, or for text/symbol domains
    (:data:`NO_FLIP_DOMAINS`) a centre ``short_side`` crop; test: a centre ``crop`` (``short_side``
    for those domains). ``flip=False`` turns the flips off. Randomness from ``generator`` (None:
    torch's global one)."""

    def __init__(self, domain: str, train: bool, mean: tuple[float, ...], std: tuple[float, ...],
                 crop: int = 64, short_side: int = SHORT_SIDE, generator: torch.Generator | None = None,
                 flip: bool = True) -> None:
        self.train, self.short_side, self.generator, self.flip = train, short_side, generator, flip
        self.symbols = domain in NO_FLIP_DOMAINS
        self.crop = short_side if self.symbols else crop
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: np.ndarray) -> Tensor:
        x = to_tensor(image)
        h, w = x.shape[-2:]
        if min(h, w) != self.short_side:
            s = self.short_side / min(h, w)
            x = resize_image(x, (max(self.short_side, round(h * s)), max(self.short_side, round(w * s))))
            h, w = x.shape[-2:]
        c = self.crop
        if self.train and not self.symbols:
            top = int(torch.randint(0, h - c + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, w - c + 1, (1,), generator=self.generator))
            x = x[:, top:top + c, left:left + c]
            if self.flip and float(torch.rand((), generator=self.generator)) < 0.5:
                x = x.flip(-1)
        else:
            top, left = (h - c) // 2, (w - c) // 2
            x = x[:, top:top + c, left:left + c]
        return ((x - self.mean) / self.std).contiguous()
