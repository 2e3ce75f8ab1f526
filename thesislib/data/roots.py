"""Where a dataset is looked for, and the message when it is not there: one rule for every loader.

The rule (:func:`dataset_dir`), the same for every loader's ``root`` argument and every chapter's
``data_root`` parameter:

* ``root`` non-empty: that directory **is** the dataset directory (the one named ``cifar10/``,
  ``coco/``, ``voc/``, ... in the layouts), used as given (``~`` expanded);
* ``root`` empty (``""``) or ``None``: ``<data root>/<dataset directory name>``, where the data
  root is ``data_root`` when non-empty, else ``$THESISLIB_DATA`` (default ``~/thesislib-data``).

So ``root=""`` and ``root=None`` mean the same thing everywhere, and a chapter's ``data_root``
(the directory that holds all datasets) never has to be joined with a dataset name by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from thesislib.paths import ENV_DATA
from thesislib.paths import data_root as default_data_root

# Dataset key -> its directory under the data root (the first component of its layout).
DATASET_DIRS: dict[str, str] = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "coco": "coco",
    "imagenet": "imagenet",
    "voc": "voc",
    "sbd": "sbd",
    "celeba": "celeba",
    "imagenet32": "imagenet32",
    "imagenet64": "imagenet64",
    "svhn": "svhn",
    "omniglot": "omniglot",
    "decathlon": "decathlon",
    "stl10": "stl10",
}


def _given(value: str | os.PathLike[str] | None) -> bool:
    return value is not None and str(value).strip() != ""


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None, *,
                data_root: str | os.PathLike[str] | None = None) -> Path:
    """The directory of dataset ``name`` (a key of :data:`DATASET_DIRS`) by the module's rule.

    ``root`` non-empty -> ``Path(root)``; else ``(data_root or $THESISLIB_DATA) / DATASET_DIRS[name]``.
    ValueError for an unknown ``name``.
    """
    if name not in DATASET_DIRS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_DIRS)}")
    if _given(root):
        return Path(str(root).strip()).expanduser()
    base = Path(str(data_root).strip()).expanduser() if _given(data_root) else default_data_root()
    return base / DATASET_DIRS[name]


def suggest_root(name: str, looked_in: Path, inner: str) -> Path | None:
    """A likely intended dataset directory when ``looked_in`` is not it, else None.

    ``inner`` is the release folder the dataset directory must contain (e.g. ``VOCdevkit/VOC2012``).
    Two common slips are recognised: passing the data root (``looked_in/<name dir>/<inner>``
    exists) and passing a folder inside the dataset directory (``looked_in`` ends with a leading
    part of ``inner``, e.g. ``.../voc/VOCdevkit``).
    """
    candidate = looked_in / DATASET_DIRS.get(name, name)
    if (candidate / inner).exists():
        return candidate
    parts = Path(inner).parts
    for k in range(len(parts), 0, -1):
        if len(looked_in.parts) > k and looked_in.parts[-k:] == parts[:k] and looked_in.parents[k - 1].is_dir():
            return looked_in.parents[k - 1]
    return None


def not_found_message(dataset: str, looked_in: str | os.PathLike[str], layout: str, *,
                      missing: str | Sequence[str] | None = None, download: str | None = None,
                      suggestion: str | os.PathLike[str] | None = None, hint: str | None = None) -> str:
    """The text of every :class:`~thesislib.data.errors.DatasetNotFoundError`.

    Lines: what is missing and the directory looked in; the environment variable and its current
    value; the rule for ``root``; the expected layout (one path per line, under the data root);
    where to download it; a ``did you mean root=...`` line when ``suggestion`` is given; ``hint``.
    ``missing`` may be a list; more than five entries are counted, not listed.
    """
    if missing is not None and not isinstance(missing, str):
        items = list(missing)
        missing = ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
    what = f" (missing: {missing})" if missing else ""
    env = os.environ.get(ENV_DATA, "").strip()
    now = f"{ENV_DATA}={env}" if env else f"{ENV_DATA} is not set, so the default {default_data_root()} is used"
    lines = [
        f"{dataset} was not found in {Path(looked_in)}{what}.",
        f"Datasets are looked up under the data root {ENV_DATA} (now: {now}); a chapter's data_root "
        "parameter replaces the data root, a loader's root=... names the dataset directory itself "
        "(the first component of each line below).",
        "Expected layout under the data root:",
        *("    " + line for line in layout.strip("\n").splitlines()),
    ]
    if download:
        lines.append(f"Download: {download}")
    if suggestion is not None:
        lines.append(f"Found the release under {Path(suggestion)}: did you mean root={Path(suggestion)}?")
    if hint:
        lines.append(hint)
    return "\n".join(lines)

# MNIST (IDX files) and DEC's Reuters-10K (Rebuffi ch. 7, LSD-C Tables 2-3).
DATASET_DIRS.update({"mnist": "mnist", "reuters10k": "reuters10k"})

# Scene datasets of Rebuffi ch. 5 Table 2 (thesislib.data.scene_datasets).
DATASET_DIRS.update({"mit67": "mit67", "places205": "places205"})
