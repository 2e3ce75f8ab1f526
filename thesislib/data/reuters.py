"""Reuters-10K as DEC prepared it (Xie et al. 2016; DEC / DEC-keras ``make_reuters_data``; Rebuffi ch. 7 Table 3).

On-disk layout under ``$THESISLIB_DATA``::

    reuters10k/reutersidf10k.npy

The file is what DEC's ``make_reuters_data`` writes with ``np.save``: a pickled dict with ``data``
float (10000, 2000), the tf-idf of the 2,000 most frequent word stems of 10,000 RCV1 news items, and
``label`` int (10000,) in 0..3 (the four root categories CCAT, GCAT, MCAT, ECAT). Reading it needs
``allow_pickle`` (the published format is a pickled dict): only read a file from a source you trust.
:func:`load_reuters10k` returns float32 (N, 2000) and int64 (N,).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir

FILE = "reutersidf10k.npy"
LAYOUT = "reuters10k/reutersidf10k.npy   (DEC's dict {'data': (10000, 2000) tf-idf, 'label': (10000,) in 0..3})"
DOWNLOAD = ("DEC's data preparation, https://github.com/piiswrong/dec (reuters: make_reuters_data from RCV1), "
            "or the reutersidf10k.npy that DEC-keras's make_reuters_data writes, into reuters10k/")
NUM_CLASSES = 4


def reuters10k_file(root: str | Path | None = None) -> Path:
    """``reutersidf10k.npy``; missing, it raises DatasetNotFoundError naming the layout."""
    base = dataset_dir("reuters10k", root)
    if not (base / FILE).is_file():
        raise DatasetNotFoundError("Reuters-10K", base, LAYOUT, missing=FILE, download=DOWNLOAD)
    return base / FILE


def load_reuters10k(root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """The tf-idf vectors float32 (N, D) and labels int64 (N,) in 0..3 (module docstring)."""
    path = reuters10k_file(root)
    try:
        obj = np.load(path, allow_pickle=True)
        record = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == () else obj
        data, label = np.asarray(record["data"]), np.asarray(record["label"]).reshape(-1)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, IndexError,
            TypeError) as err:
        raise DatasetCorruptError("Reuters-10K", path, "not DEC's dict with 'data' and 'label' "
                                  f"({type(err).__name__}: {err})") from err
    if data.ndim != 2 or len(data) != len(label):
        raise DatasetCorruptError("Reuters-10K", path, f"data {data.shape} and {len(label)} labels; expected (N, D) "
                                  "and N labels")
    if len(label) and (label.min() < 0 or label.max() >= NUM_CLASSES):
        raise DatasetCorruptError("Reuters-10K", path, f"labels outside 0..3 (found {label.min()}..{label.max()})")
    return torch.from_numpy(data.astype(np.float32)), torch.from_numpy(label.astype(np.int64))


def write_reuters10k_fixture(root: str | Path, n: int = 40, dim: int = 2000, seed: int = 0) -> Path:
    """A small ``reutersidf10k.npy`` in DEC's format under ``<root>/reuters10k/`` (each class uses its own
    block of terms). Returns the dataset directory."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "reuters10k"
    base.mkdir(parents=True, exist_ok=True)
    label = np.arange(n) % NUM_CLASSES
    data = rng.random((n, dim)).astype(np.float32) * 0.01
    block = dim // NUM_CLASSES
    for i, c in enumerate(label):
        width = min(block, 20)
        data[i, c * block: c * block + width] += 0.5 + rng.random(width).astype(np.float32)
    np.save(base / FILE, {"data": data, "label": label.astype(np.int32)})
    return base
