"""Scene-classification datasets of Rebuffi thesis ch. 5 Table 2, read from their own releases: MIT Indoor-67
(Quattoni & Torralba, CVPR 2009) and "Places10", ten classes of Places205 (Zhou et al., NeurIPS 2014).

On-disk layouts under ``$THESISLIB_DATA``::

    mit67/Images/<class>/<file>.jpg             (the release's indoorCVPR_09.tar, 67 class folders)
    mit67/TrainImages.txt                       ("<class>/<file>.jpg" per line: 80 per class, 5,360)
    mit67/TestImages.txt                        (the same, 20 per class, 1,340)

    places205/images256/<letter>/<category>/<file>.jpg      (imagesPlaces205_resize.tar, 256x256 JPEGs; the tar
                                                             nests images256/ under data/vision/torralba/deeplearning/,
                                                             read as it extracts)
    places205/trainvalsplit_places205/train_places205.csv    ("<letter>/<category>/<file>.jpg <index>" per line)
    places205/trainvalsplit_places205/val_places205.csv      (the same, 100 images per category)

A class is named by its folder (MIT-67: ``kitchen``; Places205: ``abbey``, or ``a/abbey`` as the csv writes
it). Images are decoded with PIL, the shorter side resized to ``size`` and the centre ``size`` x ``size``
square kept (:func:`square_resize`), and returned as uint8 (N, 3, size, size) with int64 labels in the order
of the chosen classes. A missing file raises :class:`~thesislib.data.errors.DatasetNotFoundError` with the
layout; an image that does not decode or a list line that does not parse raises
:class:`~thesislib.data.integrity.DatasetCorruptError` naming that file.

**Places10** (the thesis: "we only kept 10 classes from Places", without listing them): the classes are a
parameter; :data:`PLACES10_DEFAULT` is our choice, the first ten categories of Places205 in the release's index
order (the csv's indices 0-9), since the thesis names none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import open_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir

MIT67 = "MIT Indoor-67"
MIT67_CLASSES = 67
PLACES205_CLASSES = 205
MIT67_LAYOUT = """mit67/Images/<class>/<file>.jpg   (67 class folders)
mit67/TrainImages.txt             ("<class>/<file>.jpg" per line)
mit67/TestImages.txt"""
MIT67_DOWNLOAD = "https://web.mit.edu/torralba/www/indoor.html (indoorCVPR_09.tar, TrainImages.txt, TestImages.txt)"
PLACES205 = "Places205"
PLACES205_LAYOUT = """places205/images256/<letter>/<category>/<file>.jpg
  (or places205/data/vision/torralba/deeplearning/images256/..., where imagesPlaces205_resize.tar.gz extracts it)
places205/trainvalsplit_places205/train_places205.csv   ("<letter>/<category>/<file>.jpg <index>" per line)
places205/trainvalsplit_places205/val_places205.csv"""
#: where imagesPlaces205_resize.tar.gz puts images256/ (relative to places205/); images256/ itself is tried first
PLACES205_TAR_IMAGES = "data/vision/torralba/deeplearning/images256"
PLACES205_DOWNLOAD = ("http://places.csail.mit.edu/downloadData.html (imagesPlaces205_resize.tar.gz, "
                      "trainvalsplit_places205)")
#: Places10 by default: Places205's categories 0-9 (our choice; the thesis does not list its ten classes)
PLACES10_DEFAULT: tuple[str, ...] = ("abbey", "airport_terminal", "alley", "amphitheater", "amusement_park",
                                     "aquarium", "aqueduct", "arch", "art_gallery", "art_studio")


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """Shorter side to ``size`` (bilinear), then the centre ``size`` x ``size`` square: uint8 (3, size, size)."""
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8).transpose(2, 0, 1)


def _decode(paths: Sequence[Path], size: int, dataset: str, workers: int | None = None) -> torch.Tensor:
    """Decode ``paths`` into uint8 (N, 3, size, size) on a thread pool (PIL releases the GIL while decoding and
    resizing; ``workers`` default: min(8, CPUs))."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def one(i: int) -> None:
        out[i] = square_resize(open_rgb(paths[i], dataset), size)

    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 64:
        for i in range(len(paths)):
            one(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(len(paths)), chunksize=64))     # list(): re-raises a worker's error
    return torch.from_numpy(out)


def _require(base: Path, files: Sequence[str], dataset: str, layout: str, download: str) -> None:
    missing = [f for f in files if not (base / f).exists()]
    if missing:
        raise DatasetNotFoundError(dataset, base, layout, missing=missing, download=download)


def load_mit67(split: str, size: int = 256, root: str | Path | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """MIT Indoor-67 ``split`` ("train": TrainImages.txt, "test": TestImages.txt): images uint8
    (N, 3, size, size), labels int64 (N,) indexing the sorted class folders of ``Images/`` (67 in the release),
    and those class names."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown MIT Indoor-67 split {split!r}; choose train or test")
    base = dataset_dir("mit67", root)
    listing = "TrainImages.txt" if split == "train" else "TestImages.txt"
    _require(base, ["Images", listing], MIT67, MIT67_LAYOUT, MIT67_DOWNLOAD)
    classes = sorted(p.name for p in (base / "Images").iterdir() if p.is_dir())
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for n, line in enumerate((base / listing).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        cls = line.split("/", 1)[0]
        if "/" not in line or cls not in index:
            raise DatasetCorruptError(MIT67, base / listing, f"line {n} {line!r} does not name an image "
                                      "<class>/<file> of a class folder under Images/")
        path = base / "Images" / line
        if not path.is_file():
            raise DatasetNotFoundError(MIT67, base, MIT67_LAYOUT, missing=f"Images/{line} (listed in {listing})",
                                       download=MIT67_DOWNLOAD)
        paths.append(path)
        labels.append(index[cls])
    return _decode(paths, size, MIT67), torch.tensor(labels, dtype=torch.long), classes


def _places_listing(path: Path) -> list[tuple[str, int]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or parts[0].count("/") < 2:
            raise DatasetCorruptError(PLACES205, path, f"line {n} {line!r} is not '<letter>/<category>/<file> <index>'")
        rows.append((parts[0].lstrip("/"), int(parts[1])))
    return rows


def _category_name(name: str) -> str:
    """``abbey`` from ``abbey``, ``a/abbey`` or ``/a/abbey``; ``bakery/shop`` from ``b/bakery/shop``."""
    parts = name.strip("/").split("/")
    return "/".join(parts[1:] if len(parts) > 1 and len(parts[0]) == 1 else parts)


def _places_files(train: bool, root: str | Path | None) -> tuple[Path, str, str]:
    """``(base, images, listing)`` of the Places205 release under ``root``: its directory, the image folder
    (``images256``, or the tar's ``data/vision/torralba/deeplearning/images256``) and the split's csv (train or
    val), both relative to ``base``; checked to exist (a missing one names ``$THESISLIB_DATA/places205``)."""
    base = dataset_dir("places205", root)
    listing = "trainvalsplit_places205/" + ("train_places205.csv" if train else "val_places205.csv")
    images = "images256" if (base / "images256").is_dir() or not (base / PLACES205_TAR_IMAGES).is_dir() \
        else PLACES205_TAR_IMAGES
    _require(base, [images, listing], PLACES205, PLACES205_LAYOUT, PLACES205_DOWNLOAD)
    return base, images, listing


def load_places(split: str, classes: Sequence[str] = PLACES10_DEFAULT, size: int = 256,
                root: str | Path | None = None, max_per_class: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of the Places205 categories ``classes`` (``abbey``, ``a/abbey`` or ``bakery/shop``) in ``split``
    ("train": train_places205.csv, "test": val_places205.csv, the release's evaluation split): uint8
    (N, 3, size, size) and labels int64 (N,) = the position of the category in ``classes``. ``max_per_class``
    > 0 keeps the first that many listed images of each category (0: all)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown Places split {split!r}; choose train or test")
    base, images, listing = _places_files(split == "train", root)
    wanted = {_category_name(c): i for i, c in enumerate(classes)}
    if len(wanted) != len(classes):
        raise ValueError(f"Places: repeated class names in {list(classes)}")
    paths, labels, counts = [], [], dict.fromkeys(range(len(classes)), 0)
    for rel, _ in _places_listing(base / listing):
        label = wanted.get("/".join(rel.split("/")[1:-1]))
        if label is None or (max_per_class and counts[label] >= max_per_class):
            continue
        path = base / images / rel
        if not path.is_file():
            raise DatasetNotFoundError(PLACES205, base, PLACES205_LAYOUT, missing=f"{images}/{rel} (listed in "
                                       f"{listing})", download=PLACES205_DOWNLOAD)
        paths.append(path)
        labels.append(label)
        counts[label] += 1
    absent = [c for c, i in wanted.items() if counts[i] == 0]
    if absent:
        raise ValueError(f"Places: no image of the categories {absent} in {base / listing}; category names are "
                         "the folder names of the csv paths (e.g. abbey, airport_terminal)")
    return _decode(paths, size, PLACES205), torch.tensor(labels, dtype=torch.long)


def _jpeg(path: Path, colour: tuple[int, int, int], rng: np.random.Generator, shape: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(rng.normal(colour, 12.0, (*shape, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def write_mit67_fixture(root: str | Path, classes: Sequence[str] | None = None,
                        n_train: int = 3, n_test: int = 2, seed: int = 0) -> Path:
    """A tiny MIT Indoor-67 in the release's layout under ``<root>/mit67/`` (non-square JPEGs, one colour per
    class; ``classes`` default: 67 folders ``scene00`` .. ``scene66``); returns the dataset directory."""
    rng = np.random.default_rng(seed)
    classes = [f"scene{c:02d}" for c in range(MIT67_CLASSES)] if classes is None else classes
    base = Path(root) / "mit67"
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for c, name in enumerate(classes):
        for split, n in (("train", n_train), ("test", n_test)):
            for k in range(n):
                rel = f"{name}/{split[:2]}_{k}.jpg"
                _jpeg(base / "Images" / rel, ((60 * c + 20) % 256, (200 - 50 * c) % 256, 100), rng, (40 + 3 * k, 52))
                lines[split].append(rel)
    (base / "TrainImages.txt").write_text("\n".join(lines["train"]) + "\n")
    (base / "TestImages.txt").write_text("\n".join(lines["test"]) + "\n")
    return base


def write_places205_fixture(root: str | Path, categories: Sequence[str] = ("a/abbey", "a/alley", "b/bakery/shop"),
                            n_train: int = 3, n_val: int = 2, seed: int = 0, nested: bool = False) -> Path:
    """A tiny Places205 in the release's layout under ``<root>/places205/`` (the csv's index is the position in
    ``categories``; ``nested``: the images under ``data/vision/torralba/deeplearning/images256/`` as the tar
    extracts); returns the dataset directory."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "places205"
    split_dir = base / "trainvalsplit_places205"
    split_dir.mkdir(parents=True, exist_ok=True)
    images = base / (PLACES205_TAR_IMAGES if nested else "images256")
    for split, n, csv in (("train", n_train, "train_places205.csv"), ("val", n_val, "val_places205.csv")):
        rows = []
        for c, cat in enumerate(categories):
            for k in range(n):
                rel = f"{cat}/gsun_{split}{k:04d}.jpg"
                _jpeg(images / rel, (70 * c + 10, 120, 220 - 60 * c), rng, (48, 48))
                rows.append(f"{rel} {c}")
        (split_dir / csv).write_text("\n".join(rows) + "\n")
    return base


class Places205(torch.utils.data.Dataset):
    """All of Places205 (205 categories, the release's csv labels), read lazily: item ``index`` is ``{"image":
    decoded RGB PIL image, "label": int}`` (the ImageNet items' keys, so the same labelled transforms apply), or
    ``transform`` of it. ``split``: "train" (train_places205.csv, ~2.45M images) or "val" (val_places205.csv, 100 per
    category; the linear probes' test set, Jenni Table 4.6). For the linear probes of an ImageNet-trained network
    (study note 004 §0), where :func:`load_places` would decode millions of images into memory.

    The listing and the image folder are checked when the dataset is built, but not each of the ~2.45M files (a
    scan would take minutes on a network disk): a listed image that is missing raises when it is read, possibly
    hours into a run, naming the file and ``$THESISLIB_DATA/places205``."""

    def __init__(self, split: str, root: str | Path | None = None, transform: Any = None) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"unknown Places205 split {split!r}; choose train or val")
        base, images, listing = _places_files(split == "train", root)
        rows = _places_listing(base / listing)
        self.base, self.images, self.listing, self.transform = base, base / images, listing, transform
        self.paths = [rel for rel, _ in rows]
        self.labels = np.asarray([label for _, label in rows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        path = self.images / self.paths[index]
        if not path.is_file():
            raise DatasetNotFoundError(PLACES205, self.base, PLACES205_LAYOUT,
                                       missing=f"{path.relative_to(self.base)} (listed in {self.listing})",
                                       download=PLACES205_DOWNLOAD)
        item = {"image": open_rgb(path, PLACES205), "label": int(self.labels[index])}
        return self.transform(item) if self.transform is not None else item
