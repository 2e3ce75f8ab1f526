"""CIFAR-10 and CIFAR-100 from their official python pickle batches, plus fast GPU-side augmentation.

On-disk layout (the official "python version" archives, unpacked), under ``$THESISLIB_DATA``::

    cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar100/cifar-100-python/{train, test, meta}

``root`` arguments name the per-dataset directory (``$THESISLIB_DATA/cifar10``), i.e. what
torchvision calls ``root``. The layout is checked before torchvision is called, so a missing
dataset is a :class:`~thesislib.data.errors.DatasetNotFoundError` that says where to put it.

Two ways in:

* :func:`cifar_dataset`: the torchvision dataset (PIL images, per-item transforms);
* :func:`load_cifar_tensors`: the whole split as one uint8 tensor (N, 3, 32, 32), to be moved to
  the GPU once and augmented there in batches with :func:`random_crop_flip` and
  :func:`normalize`, so data loading never limits training.
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
from thesislib.data.names import CIFAR10_CLASSES, CIFAR100_CLASSES
from thesislib.paths import data_root

# Per-channel mean and standard deviation of the training images, pixel values in [0, 1].
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)
CIFAR_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}


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

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files + (self.meta_file,)


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "CIFAR-10", "cifar10", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names", CIFAR10_CLASSES,
        "cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}"),
    "cifar100": CifarSpec(
        "CIFAR-100", "cifar100", "cifar-100-python", ("train",), ("test",), "meta",
        "fine_labels", "fine_label_names", CIFAR100_CLASSES,
        "cifar100/cifar-100-python/{train, test, meta}"),
}


def _spec(name: str) -> CifarSpec:
    try:
        return CIFAR_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown CIFAR dataset {name!r}; use 'cifar10' or 'cifar100'") from None


def cifar_root(name: str, root: str | Path | None = None) -> Path:
    """The dataset directory: ``root`` if given, else ``$THESISLIB_DATA/<name>``."""
    return Path(root).expanduser() if root is not None else data_root() / _spec(name).subdir


def cifar_class_names(name: str) -> tuple[str, ...]:
    """The class names in label order (CIFAR-100: the 100 fine labels)."""
    return _spec(name).class_names


def check_cifar_layout(name: str, root: str | Path | None = None) -> Path:
    """Check every file of the release is present; return the dataset directory.

    Raises :class:`DatasetNotFoundError` naming ``THESISLIB_DATA``, the missing files and
    the expected layout.
    """
    spec = _spec(name)
    base = cifar_root(name, root)
    folder = base / spec.folder
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        hint = ("These are the files of the official python-version archive, unpacked "
                f"(torchvision.datasets.{'CIFAR10' if name == 'cifar10' else 'CIFAR100'}"
                "(root, download=True) makes the same layout on a machine with internet).")
        if (base / spec.subdir / spec.folder).is_dir():
            hint += f" Found {base / spec.subdir / spec.folder}: did you mean root={base / spec.subdir}?"
        what = spec.folder + "/" if not folder.is_dir() else ", ".join(missing)
        raise DatasetNotFoundError(spec.title, base, spec.layout, missing=what, hint=hint)
    return base


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
    try:
        dataset = cls(str(base), train=train, transform=transform,
                      target_transform=target_transform, download=False)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetCorruptError(spec.title, files + [base / spec.folder / spec.meta_file],
                                  f"{type(err).__name__}: {err}") from err
    if dataset.data.shape[1:] != (32, 32, 3) or len(dataset.targets) != len(dataset.data):
        raise DatasetCorruptError(spec.title, files, f"{len(dataset.data)} images of shape "
                                  f"{dataset.data.shape[1:]} with {len(dataset.targets)} labels")
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
    num_classes = len(_spec(name).class_names)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DatasetCorruptError(_spec(name).title, [cifar_root(name, root)],
                                  f"labels outside 0..{num_classes - 1}")
    return images, labels


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int = 4) -> torch.Tensor:
    """Zero-pad, crop and mirror a batch with given offsets (the deterministic core).

    ``x`` (N, C, H, W) of any dtype; ``top``, ``left`` int64 (N,) in [0, 2*padding]: corner of
    the H x W crop in the padded image; ``flip`` bool (N,): mirror the crop left-right.
    Output (N, C, H, W): ``out[n, :, i, j] = padded[n, :, top[n] + i, left[n] + j']`` with
    ``j' = W - 1 - j`` where flipped. One gather, no loop over images.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
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


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of (N, C, H, W) or (C, H, W) images.

    Integer images (uint8, 0..255) are first scaled to float32 in [0, 1]; float images are
    taken to be in [0, 1] already and keep their dtype (bf16 works). ``mean``/``std`` are
    per-channel in [0, 1] units, e.g. ``CIFAR10_MEAN``, ``CIFAR10_STD`` or ``*CIFAR_STATS[name]``.
    """
    if not torch.is_floating_point(x):
        x = x.to(torch.float32).div_(255.0)
    shape = (-1, 1, 1)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s
