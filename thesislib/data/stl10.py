"""STL-10 from its official binary release: the labelled splits, the unlabelled split and the ten folds.

On-disk layout (``stl10_binary.tar.gz`` unpacked), under ``$THESISLIB_DATA``::

    stl10/stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin,
                        class_names.txt, fold_indices.txt}

The release's formats (Coates, Lee and Ng, AISTATS 2011):

* ``*_X.bin``: uint8, 96x96 RGB images one after the other, each stored channel by channel and,
  within a channel, **column-major** (the MATLAB order): byte ``(c*96 + x)*96 + y`` of an image is
  the pixel at row ``y``, column ``x`` of channel ``c``. 5,000 train, 8,000 test and 100,000
  unlabelled images (27,648 bytes each).
* ``*_y.bin``: one uint8 label per image, **1..10** (this module returns 0..9).
* ``fold_indices.txt``: ten lines, each the 0-based indices into ``train`` of one predefined
  training fold (1,000 each in the release). The STL-10 protocol trains on each fold and tests on
  the whole test split, and reports the mean and standard deviation over the ten.
* ``class_names.txt``: the ten names, one a line.

``root`` follows :mod:`thesislib.data.roots` (non-empty: the ``stl10`` directory itself). A missing
file raises :class:`~thesislib.data.errors.DatasetNotFoundError` naming the layout; a file of the
wrong size, labels outside 1..10 or fold indices outside the train split raise
:class:`~thesislib.data.integrity.DatasetCorruptError` naming that file. The unlabelled split
(2.8 GB) is memory-mapped, never read whole: :class:`STL10` reads one image per item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError, check_md5
from thesislib.data.roots import dataset_dir, suggest_root

STL10_CLASSES: tuple[str, ...] = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                                  "truck")
STL10_SIZE = 96
STL10_FOLDS = 10
STL10_FOLDER = "stl10_binary"
Split = Literal["train", "test", "unlabeled"]
SPLITS: tuple[str, ...] = ("train", "test", "unlabeled")

_IMAGE_BYTES = 3 * STL10_SIZE * STL10_SIZE
_LAYOUT = ("stl10/stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin, "
           "class_names.txt, fold_indices.txt}")
_DOWNLOAD = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz, unpacked into stl10/"
# The release's per-file MD5s (as torchvision lists them), checked only on request.
OFFICIAL_MD5: dict[str, str] = {
    "train_X.bin": "918c2871b30a85fa023e0c44e0bee87f",
    "train_y.bin": "5a34089d4802c674881badbb80307741",
    "unlabeled_X.bin": "5242ba1fed5e4be9e1e742405eb56ca4",
    "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82",
    "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e",
}


def _split_files(split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"unknown STL-10 split {split!r}; use one of {', '.join(SPLITS)}")
    return (f"{split}_X.bin",) if split == "unlabeled" else (f"{split}_X.bin", f"{split}_y.bin")


def check_stl10_layout(root: str | Path | None = None, splits: Sequence[str] = ("train", "test"),
                       folds: bool = False) -> Path:
    """Check the files of ``splits`` (and ``fold_indices.txt`` if ``folds``) are present; return
    the ``stl10`` directory. Raises :class:`DatasetNotFoundError` naming the missing files."""
    base = dataset_dir("stl10", root)
    folder = base / STL10_FOLDER
    needed = [f for s in splits for f in _split_files(s)] + (["fold_indices.txt"] if folds else [])
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        what = STL10_FOLDER + "/" if not folder.is_dir() else ", ".join(missing)
        raise DatasetNotFoundError("STL-10", base, _LAYOUT, missing=what, download=_DOWNLOAD,
                                   suggestion=suggest_root("stl10", base, STL10_FOLDER),
                                   hint="These are the files of the official binary release "
                                        "(torchvision.datasets.STL10(root, download=True) makes the same layout).")
    return base


def verify_stl10(root: str | Path | None = None, splits: Sequence[str] = SPLITS) -> None:
    """Compare the files of ``splits`` with the release's MD5s; DatasetCorruptError on a mismatch."""
    folder = check_stl10_layout(root, splits) / STL10_FOLDER
    check_md5("STL-10", {folder / f: OFFICIAL_MD5[f] for s in splits for f in _split_files(s)})


def _image_memmap(path: Path) -> np.memmap:
    size = path.stat().st_size
    if size == 0 or size % _IMAGE_BYTES:
        raise DatasetCorruptError("STL-10", path, f"{size} bytes is not a whole number of 96x96x3 images "
                                                  f"({_IMAGE_BYTES} bytes each)")
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(size // _IMAGE_BYTES, 3, STL10_SIZE, STL10_SIZE))


def _read_labels(path: Path, count: int) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) != count:
        raise DatasetCorruptError("STL-10", path, f"{len(raw)} labels for {count} images")
    if raw.size and (raw.min() < 1 or raw.max() > len(STL10_CLASSES)):
        raise DatasetCorruptError("STL-10", path, f"labels outside 1..{len(STL10_CLASSES)}")
    return raw.astype(np.int64) - 1


def _stored_to_chw(stored: np.ndarray) -> np.ndarray:
    """(..., 3, 96[x], 96[y]) as stored (column-major) -> (..., 3, 96[y], 96[x])."""
    return np.ascontiguousarray(np.swapaxes(stored, -1, -2))


def stl10_fold_indices(root: str | Path | None = None, n_train: int | None = None) -> list[np.ndarray]:
    """The ten predefined training folds: int64 arrays of 0-based indices into ``train``.

    ``n_train`` (default: the train split's size on disk) bounds the indices; an index outside it,
    a line that is not integers, or a count other than ten raises DatasetCorruptError."""
    base = check_stl10_layout(root, ("train",), folds=True)
    path = base / STL10_FOLDER / "fold_indices.txt"
    if n_train is None:
        n_train = len(_image_memmap(base / STL10_FOLDER / "train_X.bin"))
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != STL10_FOLDS:
        raise DatasetCorruptError("STL-10", path, f"{len(lines)} folds, expected {STL10_FOLDS}")
    folds = []
    for k, line in enumerate(lines):
        try:
            idx = np.array([int(v) for v in line.split()], dtype=np.int64)
        except ValueError as err:
            raise DatasetCorruptError("STL-10", path, f"fold {k}: {err}") from err
        if idx.size == 0 or idx.min() < 0 or idx.max() >= n_train:
            raise DatasetCorruptError("STL-10", path, f"fold {k} has indices outside 0..{n_train - 1}")
        folds.append(idx)
    return folds


def load_stl10(split: Split, root: str | Path | None = None, fold: int | None = None,
               verify_checksums: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled split (or one training fold) in memory: images uint8 (N, 3, 96, 96) RGB, rows
    top to bottom; labels int64 (N,) in 0..9 (the unlabelled split: all -1).

    ``fold`` (0..9, train only) keeps that predefined fold's 1,000 images. The unlabelled split is
    100,000 images (2.8 GB): use :class:`STL10` to read it item by item instead.
    """
    if fold is not None and split != "train":
        raise ValueError("fold selects one of the predefined *training* folds; use split='train'")
    if fold is not None and not 0 <= fold < STL10_FOLDS:
        raise ValueError(f"fold must be in 0..{STL10_FOLDS - 1}, got {fold}")
    base = check_stl10_layout(root, (split,), folds=fold is not None)
    if verify_checksums:
        verify_stl10(base, (split,))
    images = _image_memmap(base / STL10_FOLDER / f"{split}_X.bin")
    labels = (np.full(len(images), -1, dtype=np.int64) if split == "unlabeled"
              else _read_labels(base / STL10_FOLDER / f"{split}_y.bin", len(images)))
    if fold is not None:
        keep = stl10_fold_indices(base, len(images))[fold]
        images, labels = images[keep], labels[keep]
    return torch.from_numpy(_stored_to_chw(images)), torch.from_numpy(labels)


class STL10(Dataset):
    """STL-10 split(s) read item by item from memory-mapped files (``"unlabeled"`` included).

    ``splits``: one or more of ``train``, ``test``, ``unlabeled``, concatenated in that order
    (``("train", "unlabeled")`` is the 105,000-image self-supervised set); ``fold`` (0..9) keeps
    one predefined training fold of ``train``. Items: ``(image, label)`` with ``image`` uint8
    (3, 96, 96) RGB, passed through ``transform`` if given, and ``label`` an int in 0..9 (-1 for
    unlabelled images).
    """

    def __init__(self, splits: Split | Sequence[Split] = "train", root: str | Path | None = None,
                 fold: int | None = None, transform: Callable[[torch.Tensor], Any] | None = None) -> None:
        names = (splits,) if isinstance(splits, str) else tuple(splits)
        if fold is not None and "train" not in names:
            raise ValueError("fold selects one of the predefined training folds: include 'train' in splits")
        base = check_stl10_layout(root, names, folds=fold is not None)
        self.transform = transform
        self._parts: list[tuple[np.memmap, np.ndarray, np.ndarray]] = []
        for name in names:
            images = _image_memmap(base / STL10_FOLDER / f"{name}_X.bin")
            labels = (np.full(len(images), -1, dtype=np.int64) if name == "unlabeled"
                      else _read_labels(base / STL10_FOLDER / f"{name}_y.bin", len(images)))
            index = (stl10_fold_indices(base, len(images))[fold] if name == "train" and fold is not None
                     else np.arange(len(images)))
            self._parts.append((images, labels, index))
        self._offsets = np.cumsum([0] + [len(p[2]) for p in self._parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def labels(self) -> np.ndarray:
        """int64 (N,): every item's label (-1 for unlabelled), without reading an image."""
        return np.concatenate([labels[index] for _, labels, index in self._parts])

    def __getitem__(self, i: int) -> tuple[Any, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        i = i % len(self)
        part = int(np.searchsorted(self._offsets, i, side="right")) - 1
        images, labels, index = self._parts[part]
        j = int(index[i - self._offsets[part]])
        image = torch.from_numpy(_stored_to_chw(images[j]))
        return (self.transform(image) if self.transform else image), int(labels[j])
