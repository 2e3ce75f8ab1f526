"""MNIST from its official IDX files (Rebuffi ch. 7, LSD-C Table 2), gzipped or not.

On-disk layout under ``$THESISLIB_DATA`` (the four files of http://yann.lecun.com/exdb/mnist/, as
distributed; torchvision's ``MNIST/raw/`` folder is accepted too)::

    mnist/train-images-idx3-ubyte[.gz]   mnist/train-labels-idx1-ubyte[.gz]     (60,000)
    mnist/t10k-images-idx3-ubyte[.gz]    mnist/t10k-labels-idx1-ubyte[.gz]      (10,000)

IDX format: a big-endian header, magic ``0x00000803`` (uint8, 3 dimensions) then N, rows, cols for
images, magic ``0x00000801`` then N for labels, followed by the raw uint8 values. :func:`load_mnist`
returns images uint8 (N, 1, 28, 28) and labels int64 (N,); a truncated or wrong-magic file raises
:class:`~thesislib.data.integrity.DatasetCorruptError` naming it.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir

SPLITS = {"train": "train", "test": "t10k"}
LAYOUT = ("mnist/train-images-idx3-ubyte[.gz]  mnist/train-labels-idx1-ubyte[.gz]\n"
          "mnist/t10k-images-idx3-ubyte[.gz]   mnist/t10k-labels-idx1-ubyte[.gz]")
DOWNLOAD = "http://yann.lecun.com/exdb/mnist/ (the four .gz files), into mnist/ (gzipped or unpacked)"
_MAGIC = {1: 0x00000801, 3: 0x00000803}


def _find(base: Path, name: str) -> Path | None:
    for folder in (base, base / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file with ``ndim`` dimensions (1: labels, 3: images), gz or raw."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetCorruptError("MNIST", path, f"unreadable ({type(err).__name__}: {err})") from err
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DatasetCorruptError("MNIST", path, f"{len(raw)} bytes, shorter than the {head}-byte IDX header")
    magic, *dims = struct.unpack(f">I{ndim}I", raw[:head])
    if magic != _MAGIC[ndim]:
        raise DatasetCorruptError("MNIST", path, f"IDX magic {magic:#010x}, expected {_MAGIC[ndim]:#010x} "
                                  f"(uint8, {ndim} dimensions)")
    size = int(np.prod(dims))
    if len(raw) - head != size:
        raise DatasetCorruptError("MNIST", path, f"{len(raw) - head} data bytes, the header announces {dims} = {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def mnist_files(split: str = "train", root: str | Path | None = None) -> tuple[Path, Path]:
    """The (images, labels) IDX files of ``split``; missing ones raise DatasetNotFoundError naming the layout."""
    if split not in SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; choose one of {', '.join(SPLITS)}")
    base = dataset_dir("mnist", root)
    names = (f"{SPLITS[split]}-images-idx3-ubyte", f"{SPLITS[split]}-labels-idx1-ubyte")
    paths = [_find(base, n) for n in names]
    missing = [n + "[.gz]" for n, p in zip(names, paths, strict=True) if p is None]
    if missing:
        raise DatasetNotFoundError("MNIST", base, LAYOUT, missing=missing, download=DOWNLOAD)
    return paths[0], paths[1]


def load_mnist(split: str = "train", root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """A whole split (``train`` 60,000 or ``test`` 10,000): images uint8 (N, 1, 28, 28), labels int64 (N,)."""
    paths = mnist_files(split, root)
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    if len(images) != len(labels):
        raise DatasetCorruptError("MNIST", paths[1],
                                  f"{len(labels)} labels for {len(images)} images in {paths[0].name}")
    if len(labels) and labels.max() > 9:
        raise DatasetCorruptError("MNIST", paths[1], f"labels outside 0..9 (max {labels.max()})")
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array (1 or 3 dimensions) as an IDX file (gzipped when ``path`` ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(f">I{array.ndim}I", _MAGIC[array.ndim], *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_mnist_fixture(root: str | Path, n_train: int = 30, n_test: int = 10, gz: bool = True, seed: int = 0) -> Path:
    """Tiny MNIST IDX files in the real format under ``<root>/mnist/`` (each class a bar at its own
    row, plus noise). Returns the dataset directory."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "mnist"
    base.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 + 2 * c: 4 + 2 * c, 4:24] = 255
        write_idx(base / f"{split}-images-idx3-ubyte{ext}", x)
        write_idx(base / f"{split}-labels-idx1-ubyte{ext}", y)
    return base
