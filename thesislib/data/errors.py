"""The error every dataset loader raises when its files are not where it expects them."""

from __future__ import annotations

from pathlib import Path

from thesislib.paths import ENV_DATA


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing or incomplete on disk.

    The message names the dataset, the directory that was searched, the environment
    variable that sets the data root, and the layout the loader expects, e.g.::

        CIFAR-10 was not found at /home/me/thesislib-data/cifar10 (missing: data_batch_1).
        Set THESISLIB_DATA to the directory that holds it (now: /home/me/thesislib-data),
        or pass root=..., with this layout:
            cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    """

    def __init__(self, dataset: str, root: str | Path, layout: str, missing: str | None = None,
                 hint: str | None = None) -> None:
        from thesislib.paths import data_root

        self.dataset = dataset
        self.root = Path(root)
        self.layout = layout
        self.missing = missing
        what = f" (missing: {missing})" if missing else ""
        lines = [
            f"{dataset} was not found at {self.root}{what}.",
            f"Set {ENV_DATA} to the directory that holds it (now: {data_root()}), or pass root=..., "
            "with this layout:",
            *("    " + line for line in layout.strip("\n").splitlines()),
        ]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))
