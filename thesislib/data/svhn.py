"""SVHN (format 2, cropped 32x32 digits) from the official ``.mat`` files (Rebuffi ch. 5 and 6).

On-disk layout under ``$THESISLIB_DATA`` (the files of http://ufldl.stanford.edu/housenumbers/,
as torchvision's ``SVHN`` also reads them)::

    svhn/{train_32x32.mat, test_32x32.mat[, extra_32x32.mat]}

Each file is a MATLAB v5 file with ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1) in 1..10, where 10
stands for the digit 0; :func:`load_svhn_tensors` returns images (N, 3, 32, 32) uint8 RGB and labels
0..9 (label 10 mapped to 0, as torchvision does). 73,257 train / 26,032 test / 531,131 extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir

SPLITS = ("train", "test", "extra")
LAYOUT = "svhn/{train_32x32.mat, test_32x32.mat[, extra_32x32.mat]}"
DOWNLOAD = "http://ufldl.stanford.edu/housenumbers/ (format 2: train_32x32.mat, test_32x32.mat), into svhn/"


def svhn_file(split: str, root: str | Path | None = None) -> Path:
    """The ``.mat`` file of ``split``; a missing file raises DatasetNotFoundError naming the layout."""
    if split not in SPLITS:
        raise ValueError(f"unknown SVHN split {split!r}; choose one of {', '.join(SPLITS)}")
    base = dataset_dir("svhn", root)
    path = base / f"{split}_32x32.mat"
    if not path.is_file():
        raise DatasetNotFoundError("SVHN", base, LAYOUT, missing=path.name, download=DOWNLOAD)
    return path


def load_svhn_tensors(split: str = "train", root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split: images uint8 (N, 3, 32, 32) RGB, labels int64 (N,) in 0..9."""
    path = svhn_file(split, root)
    try:
        mat = scipy.io.loadmat(str(path))
        x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    except (ValueError, KeyError, OSError, TypeError, scipy.io.matlab.MatReadError) as err:
        raise DatasetCorruptError("SVHN", path, f"not a readable SVHN .mat file ({type(err).__name__}: {err})") from err
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y) or x.dtype != np.uint8:
        raise DatasetCorruptError("SVHN", path, f"X has shape {x.shape} ({x.dtype}), y {len(y)} labels; expected "
                                  "uint8 (32, 32, 3, N) and N labels")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DatasetCorruptError("SVHN", path, f"labels outside 1..10 (found {y.min()}..{y.max()})")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    labels = torch.from_numpy((y % 10).astype(np.int64))
    return images, labels


def write_svhn_fixture(root: str | Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    """Tiny SVHN ``.mat`` files in the real format under ``<root>/svhn/``; each class has its own
    grey level so a smoke run can separate them. Returns the dataset directory."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "svhn"
    base.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10) + 1                                   # 1..10, 10 = digit 0
        x = np.clip(rng.normal(25.0 * (y % 10), 5.0, (32, 32, 3, n)), 0, 255).astype(np.uint8)
        scipy.io.savemat(str(base / f"{split}_32x32.mat"), {"X": x, "y": y.reshape(-1, 1).astype(np.uint8)})
    return base
