"""CelebA, aligned & cropped release, with the thesis's fixed 128x128 face crop.

On-disk layout (the official "Align&Cropped Images" + evaluation partition, as torchvision's
``CelebA`` also expects them), under ``$THESISLIB_DATA``::

    celeba/img_align_celeba/000001.jpg ... 202599.jpg     (178 wide x 218 high, RGB JPEG)
    celeba/list_eval_partition.txt                         ("000001.jpg 0" per line: 0 train, 1 val, 2 test)
    celeba/list_attr_celeba.txt                            (only with attributes=True; see below)

``root`` follows :mod:`thesislib.data.roots` (non-empty: the ``celeba/`` directory itself).

**Crop** (study note 001 §3.3): margins left 25, right 25, top 50, bottom 40 of the 178x218
image, i.e. rows 50..177 and columns 25..152 (``image[50:178, 25:153]``), 128x128. **Downscaling**
(``size`` < 128, e.g. the Pyramid PixelCNN's levels) uses the one resize policy of
:func:`thesislib.data.transforms.resize_image` on the crop, rounded back to uint8.

**Splits.** ``partition="official"``: the partition file's ``train`` (0), ``valid`` (1) and
``test`` (2). ``partition="random"``: the thesis's random 95 % / 5 % train/test split. The thesis
does not give its seed or procedure; here it is: all images listed in the partition file, in
file-name order, are permuted by ``numpy.random.default_rng(seed).permutation``; the first
``round(test_fraction * N)`` positions form ``test``, the rest ``train`` (each returned in
file-name order). Same seed, same split, on every machine.

Items are uint8 tensors (3, size, size) (RGB), the input of the PixelCNNs (values 0..255).

**Attributes** (``attributes=True``; Jenni ch. 4's aligned-faces experiments): the release's
``list_attr_celeba.txt``: line 1 the image count N, line 2 the 40 attribute names, then N lines
``<name>.jpg`` followed by 40 values in {-1, 1}. Items become ``(image, attrs)`` with ``attrs``
float32 (40,) in {0, 1}; the whole split's matrix is ``self.attributes`` (N, 40) int8 in {-1, 1}.
"""

from __future__ import annotations

import os
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

DATASET = "CelebA"
CELEBA_LAYOUT = """celeba/img_align_celeba/000001.jpg ... 202599.jpg   (aligned & cropped, 178x218 RGB)
celeba/list_eval_partition.txt                       ("<name>.jpg <0|1|2>" per line: train/valid/test)"""
_DOWNLOAD = ("https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: Img/img_align_celeba.zip (unpacked into "
             "celeba/) and Eval/list_eval_partition.txt (into celeba/)")
IMAGE_DIR = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
ATTR_FILE = "list_attr_celeba.txt"
N_ATTRIBUTES = 40
ALIGNED_SIZE = (218, 178)  # (height, width) of the aligned & cropped release
# Thesis crop margins (left, right, top, bottom) -> the box rows TOP:BOTTOM, columns LEFT:RIGHT.
CROP_MARGINS = {"left": 25, "right": 25, "top": 50, "bottom": 40}
CROP_BOX = (50, 178, 25, 153)  # (row0, row1, col0, col1), half-open
CROP_SIZE = 128
OFFICIAL_SPLITS = {"train": 0, "valid": 1, "test": 2}
PARTITIONS = ("official", "random")


def crop_face(image: np.ndarray) -> np.ndarray:
    """The thesis's 128x128 crop of an aligned CelebA image: (218, 178, C) -> (128, 128, C) view."""
    if image.shape[:2] != ALIGNED_SIZE:
        raise ValueError(f"expected an aligned CelebA image of {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} (HxW), "
                         f"got {image.shape[:2]}")
    r0, r1, c0, c1 = CROP_BOX
    return image[r0:r1, c0:c1]


def check_layout(root: str | os.PathLike[str] | None = None) -> Path:
    """The dataset directory; :class:`DatasetNotFoundError` naming the layout unless both parts exist."""
    base = dataset_dir("celeba", root)
    missing = [name for name in (IMAGE_DIR + "/", PARTITION_FILE) if not (base / name.rstrip("/")).exists()]
    if missing:
        raise DatasetNotFoundError(DATASET, base, CELEBA_LAYOUT, missing=missing, download=_DOWNLOAD,
                                   suggestion=suggest_root("celeba", base, IMAGE_DIR))
    return base


def read_partition(path: Path) -> tuple[list[str], np.ndarray]:
    """``list_eval_partition.txt`` -> (file names, partitions int64 (N,) in {0, 1, 2}), file order."""
    names: list[str] = []
    parts: list[int] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2") or not fields[0].endswith(".jpg"):
            raise DatasetCorruptError(DATASET, path, f"line {number} is not '<name>.jpg <0|1|2>': {line[:60]!r}")
        names.append(fields[0])
        parts.append(int(fields[1]))
    if not names:
        raise DatasetCorruptError(DATASET, path, "no entries")
    if len(set(names)) != len(names):
        raise DatasetCorruptError(DATASET, path, "an image is listed twice")
    return names, np.asarray(parts, dtype=np.int64)


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``list_attr_celeba.txt`` -> (file names, 40 attribute names, values int8 (N, 40) in {-1, 1})."""
    if not path.is_file():
        raise DatasetNotFoundError(DATASET, path.parent, CELEBA_LAYOUT, missing=ATTR_FILE,
                                   download="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: Anno/"
                                            f"{ATTR_FILE} (into celeba/)")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DatasetCorruptError(DATASET, path, "expected the image count on line 1 and the names on line 2")
    count, attr_names = int(lines[0]), lines[1].split()
    if len(attr_names) != N_ATTRIBUTES:
        raise DatasetCorruptError(DATASET, path, f"line 2 names {len(attr_names)} attributes, expected "
                                                 f"{N_ATTRIBUTES}")
    names: list[str] = []
    rows: list[list[int]] = []
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if len(fields) != N_ATTRIBUTES + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise DatasetCorruptError(DATASET, path, f"line {number} is not '<name>.jpg' and 40 values in "
                                                     f"{{-1, 1}}: {line[:60]!r}")
        names.append(fields[0])
        rows.append([int(v) for v in fields[1:]])
    if len(names) != count:
        raise DatasetCorruptError(DATASET, path, f"line 1 announces {count} images, the file lists {len(names)}")
    return names, attr_names, np.asarray(rows, dtype=np.int8).reshape(-1, N_ATTRIBUTES)


def random_split(n: int, test_fraction: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The thesis's random train/test split of ``n`` items (rule in the module docstring):
    (train positions, test positions), each sorted int64."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(perm[n_test:]).astype(np.int64), np.sort(perm[:n_test]).astype(np.int64)


class CelebA(torch.utils.data.Dataset):
    """CelebA aligned & cropped, the 128x128 crop, optionally downscaled (layout and splits above).

    Args:
        split: ``"train"``, ``"valid"``, ``"test"`` (official) or ``"train"``, ``"test"`` (random);
            ``"all"`` for every listed image.
        root: the ``celeba/`` directory ('' or None: ``$THESISLIB_DATA/celeba``).
        partition: ``"official"`` (the partition file) or ``"random"`` (95 % / 5 %).
        size: output side (128: the crop itself; smaller: resized by the shared policy).
        test_fraction, seed: of the random split.
        limit: keep the first ``limit`` images of the split (0 = all), for quick runs.
        transform: applied to the uint8 (3, size, size) tensor.
        attributes: also read ``list_attr_celeba.txt``; items become ``(image, attrs (40,) float 0/1)``.

    Attributes: ``names`` (file names of the split), ``paths``, ``root``, ``attributes`` (N, 40)
    int8 in {-1, 1} or None, ``attribute_names``.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 partition: str = "official", size: int = CROP_SIZE, test_fraction: float = 0.05,
                 seed: int = 0, limit: int = 0, transform: Callable[[Tensor], Any] | None = None,
                 attributes: bool = False) -> None:
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
        splits = (*OFFICIAL_SPLITS, "all") if partition == "official" else ("train", "test", "all")
        if split not in splits:
            raise ValueError(f"split must be one of {splits} for partition={partition!r}, got {split!r}")
        if not 1 <= int(size) <= CROP_SIZE:
            raise ValueError(f"size must be in 1..{CROP_SIZE} (a downscaled crop), got {size}")
        self.root = check_layout(root)
        self.size, self.transform = int(size), transform
        names, parts = read_partition(self.root / PARTITION_FILE)
        order = np.argsort(np.asarray(names), kind="stable")
        names, parts = [names[i] for i in order], parts[order]
        if split == "all":
            keep = np.arange(len(names))
        elif partition == "official":
            keep = np.flatnonzero(parts == OFFICIAL_SPLITS[split])
        else:
            train, test = random_split(len(names), test_fraction, seed)
            keep = train if split == "train" else test
        if limit:
            keep = keep[:limit]
        self.names = [names[i] for i in keep]
        folder = self.root / IMAGE_DIR
        present = set(os.listdir(folder))
        absent = [n for n in self.names if n not in present]
        if absent:
            raise DatasetNotFoundError(DATASET, self.root, CELEBA_LAYOUT,
                                       missing=[f"{IMAGE_DIR}/{n}" for n in absent], download=_DOWNLOAD,
                                       hint=f"{len(absent)} image(s) listed in {PARTITION_FILE} are not in "
                                            f"{IMAGE_DIR}/.")
        self.paths = [folder / n for n in self.names]
        self.attributes: np.ndarray | None = None
        self.attribute_names: list[str] = []
        if attributes:
            attr_path = self.root / ATTR_FILE
            attr_files, self.attribute_names, values = read_attributes(attr_path)
            row = {n: i for i, n in enumerate(attr_files)}
            unlisted = [n for n in self.names if n not in row]
            if unlisted:
                raise DatasetCorruptError(DATASET, attr_path, f"{len(unlisted)} image(s) of the split have no "
                                                              f"attribute line, e.g. {unlisted[0]}")
            self.attributes = values[[row[n] for n in self.names]]

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> Tensor:
        """Image ``index``: uint8 (3, size, size), the crop (resized when size < 128)."""
        path = self.paths[index]
        image = read_rgb(path, DATASET)
        if image.shape[:2] != ALIGNED_SIZE:
            raise DatasetCorruptError(DATASET, path, f"image of {image.shape[0]}x{image.shape[1]} (HxW), the "
                                      f"aligned release is {ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]}")
        crop = torch.from_numpy(np.ascontiguousarray(crop_face(image))).permute(2, 0, 1).contiguous()
        if self.size == CROP_SIZE:
            return crop
        small = resize_image(to_tensor(crop.permute(1, 2, 0)), self.size)
        return (small * 255.0).round_().clamp_(0, 255).to(torch.uint8)

    def __getitem__(self, index: int) -> Any:
        x = self.read(index)
        x = self.transform(x) if self.transform is not None else x
        if self.attributes is None:
            return x
        return x, torch.from_numpy((self.attributes[index] > 0).astype(np.float32))

    def tensors(self) -> Tensor:
        """The whole split as one uint8 tensor (N, 3, size, size) (move it to the GPU once)."""
        if not len(self):
            return torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return torch.stack([self.read(i) for i in range(len(self))])
