"""Tiny CelebA and Downsampled ImageNet datasets in their real on-disk formats (for tests).

* :func:`write_celeba_fixture`: ``<root>/celeba/img_align_celeba/NNNNNN.jpg`` (178x218 RGB JPEGs)
  and ``<root>/celeba/list_eval_partition.txt``. Each picture is a flat margin colour
  (:data:`CELEBA_MARGIN_RGB`) with a face-like pattern inside the thesis's crop box, so a test
  can tell the crop from the margins.
* :func:`write_downsampled_imagenet_fixture`: ``<root>/imagenet{S}/Imagenet{S}_train_npz/
  train_data_batch_<k>.npz`` and ``Imagenet{S}_val_npz/val_data.npz`` (keys ``data``, ``labels``
  1-based, ``mean``, as the release), or the PNG release's ``train_SxS/`` / ``valid_SxS/`` folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from thesislib.data.celeba import ALIGNED_SIZE, CROP_BOX, IMAGE_DIR, PARTITION_FILE

CELEBA_MARGIN_RGB = (20, 200, 40)


def celeba_fixture_image(index: int) -> np.ndarray:
    """The uint8 (218, 178, 3) picture of fixture image ``index`` (1-based), before JPEG coding."""
    rng = np.random.default_rng(1000 + index)
    h, w = ALIGNED_SIZE
    img = np.empty((h, w, 3), dtype=np.float64)
    img[:] = CELEBA_MARGIN_RGB
    r0, r1, c0, c1 = CROP_BOX
    yy, xx = np.mgrid[r0:r1, c0:c1]
    cy, cx = (r0 + r1) / 2 + rng.uniform(-5, 5), (c0 + c1) / 2 + rng.uniform(-5, 5)
    face = ((yy - cy) / 50) ** 2 + ((xx - cx) / 40) ** 2 < 1
    inner = np.empty((r1 - r0, c1 - c0, 3))
    inner[:] = rng.uniform(150, 230, 3) * np.array([0.95, 0.25, 0.95])  # magenta-ish background
    inner[face] = rng.uniform(160, 240) * np.array([1.0, 0.8, 0.65])   # skin tone
    img[r0:r1, c0:c1] = inner + rng.normal(0, 4, inner.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_celeba_fixture(root: str | Path, n_images: int = 20, partition: tuple[int, int, int] | None = None,
                         seed: int = 0) -> Path:
    """Write ``n_images`` aligned CelebA JPEGs (``000001.jpg`` ...) and the partition file.

    ``partition`` = (n_train, n_valid, n_test), default 60/20/20 % (the rest to train); the
    lines are written in file-name order, as in the release, with the partition labels in the
    release's contiguous blocks. Returns ``<root>/celeba``, the loader's ``root``.
    """
    if n_images < 3:
        raise ValueError("n_images must be >= 3 (one per official split)")
    if partition is None:
        n_valid = n_test = max(1, n_images // 5)
        partition = (n_images - n_valid - n_test, n_valid, n_test)
    if sum(partition) != n_images or min(partition) < 0:
        raise ValueError(f"partition {partition} must be non-negative and sum to n_images={n_images}")
    del seed  # pictures are a function of the index alone
    base = Path(root) / "celeba"
    folder = base / IMAGE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.repeat([0, 1, 2], partition)
    lines = []
    for i in range(1, n_images + 1):
        name = f"{i:06d}.jpg"
        Image.fromarray(celeba_fixture_image(i)).save(folder / name, quality=95)
        lines.append(f"{name} {labels[i - 1]}")
    (base / PARTITION_FILE).write_text("\n".join(lines) + "\n")
    return base


def downsampled_fixture_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, 3, S, S) images, int64 labels 1..1000) of a fixture batch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 1001, size=n)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    colour = rng.uniform(30, 225, size=(n, 3, 1, 1))
    wave = np.sin(3 * (xx + yy) + labels[:, None, None, None] % 7)
    img = colour * (0.6 + 0.4 * wave) + rng.normal(0, 8, (n, 3, size, size))
    return np.clip(np.round(img), 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_downsampled_imagenet_fixture(root: str | Path, size: int = 32, n_train: int = 10, n_val: int = 4,
                                       n_batches: int = 3, fmt: str = "npz", seed: int = 0) -> Path:
    """Write a tiny Downsampled ImageNet ``size`` release (``fmt`` ``"npz"`` or ``"png"``).

    npz: ``n_train`` images over ``n_batches`` files ``train_data_batch_1..n_batches.npz``
    (numbered in batch order, with the release's ``mean`` key) and ``val_data.npz``; for 64 the
    train folder is ``Imagenet64_train_part1_npz`` as in the release. png: ``train_SxS/`` and
    ``valid_SxS/`` with ``00000001.png`` ... Returns ``<root>/imagenet{size}``.
    """
    if fmt not in ("npz", "png"):
        raise ValueError(f"fmt must be 'npz' or 'png', got {fmt!r}")
    base = Path(root) / f"imagenet{size}"
    x_tr, y_tr = downsampled_fixture_images(n_train, size, seed)
    x_va, y_va = downsampled_fixture_images(n_val, size, seed + 1)
    if fmt == "npz":
        train = base / (f"Imagenet{size}_train_npz" if size == 32 else f"Imagenet{size}_train_part1_npz")
        val = base / f"Imagenet{size}_val_npz"
        train.mkdir(parents=True, exist_ok=True)
        val.mkdir(parents=True, exist_ok=True)
        rows = x_tr.reshape(n_train, -1)
        mean = rows.mean(0) if n_train else np.zeros(3 * size * size)
        for k, part in enumerate(np.array_split(np.arange(n_train), n_batches), start=1):
            np.savez(train / f"train_data_batch_{k}.npz", data=rows[part], labels=y_tr[part].tolist(), mean=mean)
        np.savez(val / "val_data.npz", data=x_va.reshape(n_val, -1), labels=y_va.tolist())
    else:
        for split, x in ((f"train_{size}x{size}", x_tr), (f"valid_{size}x{size}", x_va)):
            folder = base / split
            folder.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(x, start=1):
                Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{i:08d}.png")
    return base
