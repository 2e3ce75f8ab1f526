"""scikit-learn's bundled handwritten digits as ready tensors (no download, real data).

1,797 grey images of 8x8 pixels with integer intensities 0..16, ten classes (digits 0-9),
about 180 images per class. :func:`load_digits_split` gives a stratified, seeded train/test
split scaled to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
_MAX_INTENSITY = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A train/test split of the digits.

    ``x_*`` are float32 tensors in [0, 1], shape (N, 1, 8, 8), or (N, 64) for the flat view;
    ``y_*`` are int64 labels (N,); ``index_*`` are the rows of ``sklearn.datasets.load_digits``
    each sample came from (int64, (N,)).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    index_train: torch.Tensor
    index_test: torch.Tensor
    class_names: tuple[str, ...] = DIGIT_CLASSES

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train_dataset(self) -> torch.utils.data.TensorDataset:
        return torch.utils.data.TensorDataset(self.x_train, self.y_train)

    def test_dataset(self) -> torch.utils.data.TensorDataset:
        return torch.utils.data.TensorDataset(self.x_test, self.y_test)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: images float32 (1797, 8, 8) in [0, 1] and labels int64 (1797,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / _MAX_INTENSITY).astype(np.float32)
    return images, bunch.target.astype(np.int64)


def load_digits_split(test_fraction: float = 0.3, seed: int = 0, flat: bool = False) -> DigitsSplit:
    """Stratified train/test split of the digits (``test_fraction=0.3`` gives 1,257 / 540).

    The split is ``sklearn.model_selection.train_test_split(stratify=labels,
    random_state=seed)``, so the same seed always gives the same split. Images are scaled
    from 0..16 to [0, 1]; ``flat=True`` returns (N, 64) rows instead of (N, 1, 8, 8).
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    images, labels = load_digits_arrays()
    index = np.arange(len(labels))
    idx_train, idx_test = train_test_split(index, test_size=test_fraction, random_state=seed,
                                           stratify=labels)
    shape = (-1, 64) if flat else (-1, 1, 8, 8)

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(images[idx].reshape(shape)))
        return x, torch.from_numpy(labels[idx]), torch.from_numpy(idx.astype(np.int64))

    x_tr, y_tr, i_tr = tensors(idx_train)
    x_te, y_te, i_te = tensors(idx_test)
    return DigitsSplit(x_tr, y_tr, x_te, y_te, i_tr, i_te)
