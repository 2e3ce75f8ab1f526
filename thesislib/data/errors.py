"""The error every dataset loader raises when its files are not where it expects them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from thesislib.data.roots import not_found_message


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing or incomplete on disk.

    The message (:func:`~thesislib.data.roots.not_found_message`) names the dataset, the directory
    that was searched, ``THESISLIB_DATA`` and its current value, the expected layout and where to
    download the data, e.g.::

        CIFAR-10 was not found in /home/me/thesislib-data/cifar10 (missing: cifar-10-batches-py/).
        Datasets are looked up under the data root THESISLIB_DATA (now: THESISLIB_DATA is not set,
        so the default /home/me/thesislib-data is used); ...
        Expected layout under the data root:
            cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
        Download: https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz ...

    Attributes: ``dataset``, ``root`` (the directory looked in), ``layout``, ``missing``.
    """

    def __init__(self, dataset: str, root: str | os.PathLike[str], layout: str,
                 missing: str | Sequence[str] | None = None, *, download: str | None = None,
                 suggestion: str | os.PathLike[str] | None = None, hint: str | None = None) -> None:
        self.dataset = dataset
        self.root = Path(root)
        self.layout = layout
        self.missing = missing
        super().__init__(not_found_message(dataset, self.root, layout, missing=missing, download=download,
                                           suggestion=suggestion, hint=hint))
