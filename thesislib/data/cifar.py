"""CIFAR-10 and CIFAR-100 from their official python pickle batches, plus fast GPU-side augmentation.

On-disk layout (the official "python version" archives, unpacked), under ``$THESISLIB_DATA``::

    cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar100/cifar-100-python/{train, test, meta}

``root`` follows the one rule of :mod:`thesislib.data.roots`: non-empty, it is the per-dataset
directory (``.../cifar10``, what torchvision calls ``root``); empty or None, it is
``$THESISLIB_DATA/cifar10``. The layout is checked before torchvision is called, so a missing
dataset is a :class:`~thesislib.data.errors.DatasetNotFoundError` that says where to put it, and
a file that cannot be read is a :class:`~thesislib.data.integrity.DatasetCorruptError` naming it.

Two ways in:

* :func:`cifar_dataset`: the torchvision dataset (PIL images, per-item transforms);
* :func:`load_cifar_tensors`: the whole split as one uint8 tensor (N, 3, 32, 32), to be moved to
  the GPU once and augmented there in batches with :func:`random_crop_flip` and
  :func:`thesislib.data.transforms.normalize` (``"cifar10"`` / ``"cifar100"`` statistics), so
  data loading never limits training.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError, check_md5
from thesislib.data.names import CIFAR10_CLASSES, CIFAR100_CLASSES, CIFAR100_COARSE_OF_FINE
from thesislib.data.roots import dataset_dir, suggest_root


@dataclass(frozen=True)
class CifarSpec:
    """Files and keys of one CIFAR release."""

    title: str
    subdir: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    class_names: tuple[str, ...]
    layout: str
    download: str

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files + (self.meta_file,)


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "CIFAR-10", "cifar10", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names", CIFAR10_CLASSES,
        "cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (the python version), unpacked "
        "into cifar10/"),
    "cifar100": CifarSpec(
        "CIFAR-100", "cifar100", "cifar-100-python", ("train",), ("test",), "meta",
        "fine_labels", "fine_label_names", CIFAR100_CLASSES,
        "cifar100/cifar-100-python/{train, test, meta}",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (the python version), unpacked "
        "into cifar100/"),
}


def _spec(name: str) -> CifarSpec:
    try:
        return CIFAR_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown CIFAR dataset {name!r}; use 'cifar10' or 'cifar100'") from None


def cifar_class_names(name: str) -> tuple[str, ...]:
    """The class names in label order (CIFAR-100: the 100 fine labels)."""
    return _spec(name).class_names


def check_cifar_layout(name: str, root: str | Path | None = None) -> Path:
    """Check every file of the release is present; return the dataset directory.

    Raises :class:`DatasetNotFoundError` naming ``THESISLIB_DATA``, the missing files and
    the expected layout.
    """
    spec = _spec(name)
    base = dataset_dir(name, root)
    folder = base / spec.folder
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        hint = ("These are the files of the official python-version archive, unpacked "
                f"(torchvision.datasets.{'CIFAR10' if name == 'cifar10' else 'CIFAR100'}"
                "(root, download=True) makes the same layout on a machine with internet).")
        what = spec.folder + "/" if not folder.is_dir() else ", ".join(missing)
        raise DatasetNotFoundError(spec.title, base, spec.layout, missing=what, download=spec.download,
                                   suggestion=suggest_root(name, base, spec.folder), hint=hint)
    return base


def _read_batch(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return pickle.load(fh, encoding="latin1")


def _first_bad_file(spec: CifarSpec, files: Sequence[Path], num_classes: int) -> tuple[Path, str] | None:
    """The first of ``files`` (batches; the meta file last) that does not read as a CIFAR batch,
    with the reason; None when all read. Only called once a split failed to load, to name the file."""
    for path in files:
        try:
            batch = _read_batch(path)
            if path.name == spec.meta_file:
                if len(batch[spec.names_key]) != num_classes:
                    return path, f"{len(batch[spec.names_key])} class names, expected {num_classes}"
                continue
            data, labels = np.asarray(batch["data"]), np.asarray(batch[spec.label_key])
        except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError,
                IndexError) as err:
            return path, f"{type(err).__name__}: {err}"
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            return path, f"data of shape {data.shape}, expected (N, 3072)"
        if len(labels) != len(data):
            return path, f"{len(data)} images with {len(labels)} labels"
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            return path, f"labels outside 0..{num_classes - 1}"
    return None


def verify_cifar(name: str, root: str | Path | None = None) -> None:
    """Compare every file with the official MD5 checksums; raise DatasetCorruptError on a mismatch."""
    from thesislib.data.cifar_torchvision import OFFICIAL_MD5

    spec = _spec(name)
    folder = check_cifar_layout(name, root) / spec.folder
    check_md5(spec.title, {folder / f: OFFICIAL_MD5[name][f] for f in spec.files})


def cifar_dataset(name: str, train: bool = True, root: str | Path | None = None,
                  transform: Callable[[Any], Any] | None = None,
                  target_transform: Callable[[int], Any] | None = None,
                  verify_checksums: bool = False) -> torch.utils.data.Dataset:
    """The torchvision ``CIFAR10``/``CIFAR100`` dataset for a split (``download=False``).

    Items are ``(PIL image 32x32 RGB, int label)`` before transforms. The layout is checked
    first (:func:`check_cifar_layout`); ``verify_checksums`` also checks the official MD5s
    (about a second for the full data; fixtures do not pass it). Files that exist but cannot
    be read raise :class:`DatasetCorruptError`.
    """
    from thesislib.data.cifar_torchvision import LocalCIFAR10, LocalCIFAR100

    spec = _spec(name)
    base = check_cifar_layout(name, root)
    if verify_checksums:
        verify_cifar(name, base)
    cls = LocalCIFAR10 if name == "cifar10" else LocalCIFAR100
    files = [base / spec.folder / f for f in (spec.train_files if train else spec.test_files)]
    files.append(base / spec.folder / spec.meta_file)
    num_classes = len(spec.class_names)
    try:
        dataset = cls(str(base), train=train, transform=transform,
                      target_transform=target_transform, download=False)
        targets = np.asarray(dataset.targets)
        readable = (dataset.data.shape[1:] == (32, 32, 3) and len(targets) == len(dataset.data)
                    and not (targets.size and (targets.min() < 0 or targets.max() >= num_classes)))
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as err:
        bad = _first_bad_file(spec, files, num_classes)
        path, reason = bad if bad is not None else (files[0], f"{type(err).__name__}: {err}")
        raise DatasetCorruptError(spec.title, path, reason) from err
    if not readable:
        bad = _first_bad_file(spec, files, num_classes)
        path, reason = bad if bad is not None else (files[0], "the split does not read as CIFAR batches")
        raise DatasetCorruptError(spec.title, path, reason)
    return dataset


def load_cifar_tensors(name: str, train: bool, root: str | Path | None = None,
                       verify_checksums: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as tensors: images uint8 (N, 3, 32, 32) RGB, labels int64 (N,).

    Read through :func:`cifar_dataset`, so the checks and the pixel layout are torchvision's.
    Move the result to the GPU once and augment there (:func:`random_crop_flip`).
    """
    dataset = cifar_dataset(name, train=train, root=root, verify_checksums=verify_checksums)
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    labels = torch.as_tensor(np.asarray(dataset.targets, dtype=np.int64))
    return images, labels


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int = 4, out_size: int | None = None) -> torch.Tensor:
    """Zero-pad, crop and mirror a batch with given offsets (the deterministic core).

    ``x`` (N, C, H, W) of any dtype; ``top``, ``left`` int64 (N,): corner of the crop in the padded image
    (in [0, 2*padding] for the default H x W crop); ``flip`` bool (N,): mirror the crop left-right;
    ``out_size``: an S x S crop instead of H x W (None). Output (N, C, H, W) (or (N, C, S, S)):
    ``out[n, :, i, j] = padded[n, :, top[n] + i, left[n] + j']`` with ``j' = W - 1 - j`` (S - 1 - j) where
    flipped. One gather, no loop over images.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if out_size is not None:
        h = w = out_size
    padded = F.pad(x, (padding, padding, padding, padding)) if padding > 0 else x
    dev = x.device
    top, left, flip = top.to(dev), left.to(dev), flip.to(dev)
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = top[:, None] + ar_h[None, :]                                       # (N, H)
    cols = left[:, None] + torch.where(flip[:, None], (w - 1) - ar_w, ar_w)   # (N, W)
    batch = torch.arange(n, device=dev)[:, None, None, None]
    chans = torch.arange(c, device=dev)[None, :, None, None]
    out = padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def random_crop_flip(x: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard CIFAR augmentation for a whole batch: pad-``padding`` random crop + random h-flip.

    ``x`` (N, C, H, W) on any device, any dtype (uint8 before :func:`normalize`, or float).
    Random draws, in this order, from ``generator`` (on its device; the global generator of
    ``x``'s device when ``None``): ``top = randint(0, 2p+1, (N,))``, ``left = randint(0, 2p+1,
    (N,))``, ``flip = rand(N) < 0.5``. A CUDA generator keeps everything on the GPU; a CPU
    generator costs a small host-to-device copy of 3N numbers. No host sync.
    """
    n = x.shape[0]
    device = generator.device if generator is not None else x.device
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return crop_flip(x, top, left, flip, padding)


def cifar100_superclasses(fine_labels: torch.Tensor) -> torch.Tensor:
    """CIFAR-100-20: the 20 superclass (coarse) labels (N,) of fine labels (N,) in 0..99, by the
    official grouping (:data:`thesislib.data.names.CIFAR100_COARSE_OF_FINE`, the ``coarse_labels``
    of the pickles), as the clustering literature's CIFAR-100-20 uses them."""
    if fine_labels.numel() and (int(fine_labels.min()) < 0 or int(fine_labels.max()) > 99):
        raise ValueError("cifar100_superclasses: fine labels must be in 0..99")
    table = torch.as_tensor(CIFAR100_COARSE_OF_FINE, dtype=torch.int64, device=fine_labels.device)
    return table[fine_labels.long()]


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad-``padding`` random crop without flip (digits: SVHN, MNIST), a batch (N, C, H, W) at once; draws
    ``top`` then ``left`` from the global generator of ``x``'s device (:func:`crop_flip`)."""
    n = x.shape[0]
    top = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    return crop_flip(x, top, left, torch.zeros(n, dtype=torch.bool, device=x.device), padding)
