"""Writers of tiny datasets in the real on-disk formats, for tests and smoke runs.

The files are what the official releases contain, only smaller: CIFAR as the python pickle
batches (Python-2 style string keys, uint8 ``data`` rows of 3,072 values, channel-major
R, G, B planes of 32x32 row-major pixels) with their meta files, and MS COCO 2014 as an
``instances_<split>.json`` with images / annotations (bbox, area, iscrowd, polygon or RLE
segmentation) / all 80 real categories, plus small JPEG files. Point ``THESISLIB_DATA`` at
the ``root`` given to the writers and every full-scale code path runs on them.

Fixture pixels are not noise only: each class has its own colour and pattern, so a smoke
training run can learn something; COCO objects are drawn as filled boxes of their category's
colour, and the top-left 16x16 block of each COCO image is the flat colour
:func:`coco_fixture_color` of its image id (so a test can tell which file it got).
"""

from __future__ import annotations

import datetime as _dt
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from thesislib.data.names import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    CIFAR100_COARSE_CLASSES,
    CIFAR100_COARSE_OF_FINE,
    COCO_CATEGORIES,
)
from thesislib.data.stl10 import STL10_CLASSES

# --------------------------------------------------------------------------------------------
# Pickles as the official (Python 2) CIFAR files have them
# --------------------------------------------------------------------------------------------

class _Py2Str(bytes):
    """A Python 2 ``str``: pickled with the (SHORT_)BINSTRING opcodes, like the CIFAR files.

    ``pickle.load(f, encoding="latin1")`` (torchvision) reads it as ``str``,
    ``encoding="bytes"`` (the CIFAR web page's snippet) as ``bytes``, exactly as for the
    official files.
    """


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us emit Python 2 strings
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj: _Py2Str) -> None:
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2str


def _py2(value: Any) -> Any:
    """Turn ``str`` (also inside lists and dict keys) into Python 2 strings."""
    if isinstance(value, str):
        return _Py2Str(value.encode("latin1"))
    if isinstance(value, list):
        return [_py2(v) for v in value]
    if isinstance(value, dict):
        return {_py2(k): _py2(v) for k, v in value.items()}
    return value


def _write_pickle(path: Path, obj: dict[str, Any]) -> None:
    with path.open("wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(_py2(obj))


# --------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------

def _cifar_images(labels: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 3072) rows: class colour x class pattern + noise, as channel-major planes."""
    palette = np.random.default_rng(12345).uniform(40, 215, size=(num_classes, 3))
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    angle = np.linspace(0, np.pi, num_classes, endpoint=False)
    pattern = 0.5 + 0.5 * np.sin(4 * (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy))
    img = palette[labels][:, :, None, None] * (0.6 + 0.4 * pattern[labels][:, None])
    img = img + rng.normal(0.0, 20.0, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8).reshape(len(labels), 3 * 32 * 32)


def _balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def write_cifar_fixture(root: str | Path, name: str = "cifar10", n_train: int = 50,
                        n_test: int = 20, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 or CIFAR-100 in the official python-pickle layout.

    Writes ``<root>/cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
    (the ``n_train`` images spread over the five batches) or
    ``<root>/cifar100/cifar-100-python/{train, test, meta}`` (with fine and consistent coarse
    labels). Labels are balanced over the classes, in random order. Returns the dataset
    directory (``<root>/<name>``), which the loaders take as ``root``.
    """
    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    if n_train < 0 or n_test < 0:
        raise ValueError("n_train and n_test must be non-negative")
    rng = np.random.default_rng(seed)
    classes = CIFAR10_CLASSES if name == "cifar10" else CIFAR100_CLASSES
    base = Path(root) / name
    folder = base / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(10**6))

    def batch(n: int, title: str) -> dict[str, Any]:
        labels = _balanced_labels(n, len(classes), rng)
        files = [f"{classes[c]}_s_{next(counter):06d}.png" for c in labels]
        entry: dict[str, Any] = {"batch_label": title}
        if name == "cifar10":
            entry["labels"] = labels.tolist()
        else:
            entry["fine_labels"] = labels.tolist()
            entry["coarse_labels"] = [CIFAR100_COARSE_OF_FINE[c] for c in labels]
        entry["data"] = _cifar_images(labels, len(classes), rng)
        entry["filenames"] = files
        return entry

    if name == "cifar10":
        sizes = [len(part) for part in np.array_split(np.arange(n_train), 5)]
        for i, n in enumerate(sizes, start=1):
            _write_pickle(folder / f"data_batch_{i}", batch(n, f"training batch {i} of 5"))
        _write_pickle(folder / "test_batch", batch(n_test, "testing batch 1 of 1"))
        _write_pickle(folder / "batches.meta", {"num_cases_per_batch": max(sizes),
                                                "label_names": list(CIFAR10_CLASSES),
                                                "num_vis": 3072})
    else:
        _write_pickle(folder / "train", batch(n_train, "training batch 1 of 1"))
        _write_pickle(folder / "test", batch(n_test, "testing batch 1 of 1"))
        _write_pickle(folder / "meta", {"fine_label_names": list(CIFAR100_CLASSES),
                                        "coarse_label_names": list(CIFAR100_COARSE_CLASSES)})
    return base


# --------------------------------------------------------------------------------------------
# MS COCO 2014
# --------------------------------------------------------------------------------------------

def coco_fixture_color(image_id: int) -> tuple[int, int, int]:
    """The flat RGB colour of the top-left 16x16 block of fixture image ``image_id``."""
    return (32 + (image_id * 37) % 192, 32 + (image_id * 101) % 192, 32 + (image_id * 211) % 192)


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE: run lengths of the column-major flattened mask, zeros first."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return counts


def _coco_split(split: str, ids: np.ndarray, rng: np.random.Generator, image_dir: Path,
                next_ann_id: int) -> tuple[dict[str, Any], int]:
    from PIL import Image

    cat_ids = [c[0] for c in COCO_CATEGORIES]
    cat_color = np.random.default_rng(777).integers(0, 256, size=(max(cat_ids) + 1, 3))
    images, annotations = [], []
    n = len(ids)
    unlabeled = int(rng.integers(0, n))                            # no annotation at all
    crowd_only = int((unlabeled + 1 + rng.integers(0, n - 1)) % n)  # one crowd annotation only
    for pos, image_id in enumerate(ids.tolist()):
        height, width = (int(v) for v in rng.integers(40, 72, size=2))
        yy, xx = np.mgrid[0:height, 0:width]
        base = np.stack([100 + 80 * xx / width, 100 + 80 * yy / height,
                         np.full_like(xx, 140.0, dtype=float)], axis=-1)
        pixels = base.copy()
        n_obj = 0 if pos == unlabeled else 1 if pos == crowd_only else int(rng.integers(1, 5))
        for _k in range(n_obj):
            cat = int(rng.choice(cat_ids))
            w, h = int(rng.integers(8, width // 2)), int(rng.integers(8, height // 2))
            x, y = int(rng.integers(16, width - w)), int(rng.integers(16, height - h))
            pixels[y:y + h, x:x + w] = cat_color[cat]
            crowd = pos == crowd_only
            if crowd:
                mask = np.zeros((height, width), dtype=bool)
                mask[y:y + h, x:x + w] = True
                segmentation: Any = {"counts": _rle_counts(mask), "size": [height, width]}
            else:
                segmentation = [[float(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h)]]
            annotations.append({
                "segmentation": segmentation, "area": float(w * h), "iscrowd": int(crowd),
                "image_id": image_id, "bbox": [float(x), float(y), float(w), float(h)],
                "category_id": cat, "id": next_ann_id,
            })
            next_ann_id += 1
        pixels[:16, :16] = coco_fixture_color(image_id)
        file_name = f"COCO_{split}_{image_id:012d}.jpg"
        Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8)).save(
            image_dir / file_name, quality=95)
        images.append({
            "license": 1, "file_name": file_name,
            "coco_url": f"http://images.cocodataset.org/{split}/{file_name}",
            "height": height, "width": width, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "", "id": image_id,
        })
    order = rng.permutation(len(annotations))  # the real files are not grouped by image
    instances = {
        "info": {"description": "thesislib fixture in the COCO 2014 instances format",
                 "version": "1.0", "year": 2014, "contributor": "thesislib",
                 "date_created": _dt.date(2015, 1, 1).isoformat()},
        "images": images,
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 1,
                      "name": "Attribution License"}],
        "annotations": [annotations[i] for i in order],
        "categories": [{"supercategory": sup, "id": cid, "name": name}
                       for cid, name, sup in COCO_CATEGORIES],
    }
    return instances, next_ann_id


def write_coco_fixture(root: str | Path, n_train: int = 8, n_test: int = 4, seed: int = 0) -> Path:
    """Write a tiny MS COCO 2014 in the official layout under ``<root>/coco``.

    ``n_train`` images in ``train2014/`` and ``n_test`` in ``val2014/`` (JPEG, 40-71 px a side),
    with ``annotations/instances_{train,val}2014.json``. In each split one image has no
    annotation (dropped by ``drop_unlabeled``) and one has a single crowd annotation (RLE
    segmentation); the others have 1-4 objects (polygon segmentation), categories drawn from
    the 80 real ones, repeats allowed. Image ids are distinct across splits. Returns
    ``<root>/coco``, which :class:`~thesislib.data.coco.CocoMultiLabel` takes as ``root``.
    """
    if n_train < 2 or n_test < 2:
        raise ValueError("each split needs at least 2 images (one unlabeled, one crowd-only)")
    rng = np.random.default_rng(seed)
    base = Path(root) / "coco"
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    ids = rng.choice(np.arange(1, 600_000), size=n_train + n_test, replace=False)
    next_ann_id = 1
    for split, split_ids in (("train2014", ids[:n_train]), ("val2014", ids[n_train:])):
        image_dir = base / split
        image_dir.mkdir(parents=True, exist_ok=True)
        instances, next_ann_id = _coco_split(split, split_ids, rng, image_dir, next_ann_id)
        (base / "annotations" / f"instances_{split}.json").write_text(json.dumps(instances))
    return base


# --------------------------------------------------------------------------------------------
# STL-10 binary release
# --------------------------------------------------------------------------------------------

def stl10_fixture_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 3, 96, 96) images, rows top to bottom: each class its own colour, a bright
    horizontal bar in the top rows (so a reader that swaps rows and columns is caught), noise."""
    n = len(labels)
    hues = (np.arange(10)[:, None] * np.array([37, 91, 151])[None, :]) % 200 + 30
    images = hues[labels][:, :, None, None] + rng.integers(-20, 21, size=(n, 3, 96, 96))
    images[:, :, 4:12, :] = 250
    return np.clip(images, 0, 255).astype(np.uint8)


def write_stl10_fixture(root: str | Path, n_train: int = 40, n_test: int = 20, n_unlabeled: int = 12,
                        fold_size: int = 8, seed: int = 0) -> Path:
    """Write a tiny STL-10 in the official binary layout under ``<root>/stl10/stl10_binary``.

    Images are written as the release stores them (per channel, column-major: the stored array
    is (N, 3, 96[x], 96[y])), labels 1..10 as uint8, ten folds of ``fold_size`` distinct 0-based
    train indices (one line each) and the class names. Images follow
    :func:`stl10_fixture_images` (a bar across the top rows). Returns ``<root>/stl10``.
    """
    if fold_size > n_train:
        raise ValueError("fold_size cannot exceed n_train")
    rng = np.random.default_rng(seed)
    folder = Path(root) / "stl10" / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        labels = _balanced_labels(n, 10, rng)
        stored = np.swapaxes(stl10_fixture_images(labels, rng), -1, -2)      # column-major per channel
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(stored).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    folds = [np.sort(rng.choice(n_train, size=fold_size, replace=False)) for _ in range(10)]
    (folder / "fold_indices.txt").write_text("".join(" ".join(map(str, f)) + " \n" for f in folds))
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    return folder.parent
