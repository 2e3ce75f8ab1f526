"""A dataset of the rows of one tensor (unlabelled images for self-supervised training).

Used by the chapters that train on in-memory smoke images (Jenni ch. 3 and 4).
"""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["TensorImages"]


class TensorImages(Dataset):
    """Items ``x[i]`` of one tensor ``x`` (N, C, S, S): a dataset the engine batches into (B, C, S, S).

    ``deterministic``: an item does not depend on the random state (the engine may skip per-sample seeding)."""

    deterministic = True

    def __init__(self, x: Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.x[i]
