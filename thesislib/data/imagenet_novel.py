"""The ImageNet novel-class split of DTC / AutoNovel (Rebuffi ch. 6 Table 3): the 882 labelled classes
and three 30-class unlabelled subsets (A, B, C) drawn from the other 118 (Vinyals et al.'s split).

The class lists are the files the AutoNovel / DTC releases download with
``scripts/download_imagenet_splits.sh`` (from ``robots.ox.ac.uk/~vgg/research/DTC/data/datasets/
ImageNet/imagenet_rand118/``): one wnid per line. They are read from the data root, beside the
CLS-LOC images of :mod:`thesislib.data.imagenet`::

    imagenet/imagenet_rand118/imagenet_118.txt      the 118 held-out wnids
    imagenet/imagenet_rand118/imagenet_30_{A,B,C}.txt   30 of them each (the unlabelled sets)
    imagenet/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG

As the released loaders: labelled classes = every train folder not in ``imagenet_118.txt`` (882),
unlabelled = the 30 of the subset file; each list is **sorted** and indexed in that order (the
released code indexes the 882 in ``set`` order, which is not reproducible; decision here). The
clustering is scored on the unlabelled classes' *train* images.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.imagenet import _images_in
from thesislib.data.imagenet_fixtures import fixture_wnids, write_imagenet_fixture
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir
from thesislib.data.transforms import resize_image, to_tensor

SUBSETS = ("A", "B", "C")
SPLIT_DIR = "imagenet_rand118"
LAYOUT = ("imagenet/imagenet_rand118/imagenet_118.txt        (one wnid per line)\n"
          "imagenet/imagenet_rand118/imagenet_30_{A,B,C}.txt  (one wnid per line, a subset of the 118)\n"
          "imagenet/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG")
DOWNLOAD = ("the split files: http://www.robots.ox.ac.uk/~vgg/research/DTC/data/datasets/ImageNet/imagenet_rand118/"
            "{imagenet_118.txt, imagenet_30_A.txt, imagenet_30_B.txt, imagenet_30_C.txt} (AutoNovel / DTC "
            "scripts/download_imagenet_splits.sh), into imagenet/imagenet_rand118/; the images: the CLS-LOC "
            "release (thesislib.data.imagenet)")
_WNID = re.compile(r"^n\d{8}$")


def read_wnid_list(path: Path) -> list[str]:
    """A split file: one wnid per line (blank lines ignored) -> the sorted wnids; a line that is not a
    wnid or a repeated wnid raises DatasetCorruptError naming the file."""
    wnids = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if not _WNID.match(line.strip()):
            raise DatasetCorruptError("ImageNet split", path, f"line {number} is not a wnid: {line[:40]!r}")
        wnids.append(line.strip())
    if len(set(wnids)) != len(wnids):
        raise DatasetCorruptError("ImageNet split", path, "a wnid is listed twice")
    return sorted(wnids)


@dataclass(frozen=True)
class NovelImageNetSplit:
    """``labelled`` (sorted wnids, C^l = 882 on the real data), ``unlabelled`` (sorted, C^u = 30),
    ``train_dir`` (the CLS-LOC train folder)."""

    labelled: list[str]
    unlabelled: list[str]
    train_dir: Path

    def samples(self, part: str) -> list[tuple[Path, int]]:
        """``(image path, class index)`` of every train image of ``part`` (``labelled`` | ``unlabelled``),
        classes indexed in the sorted order of the part's wnids."""
        wnids = {"labelled": self.labelled, "unlabelled": self.unlabelled}[part]
        return [(self.train_dir / w / name, k) for k, w in enumerate(wnids) for name in _images_in(self.train_dir / w)]


def novel_imagenet_split(subset: str = "A", root: str | Path | None = None) -> NovelImageNetSplit:
    """The labelled / unlabelled classes of subset ``A``, ``B`` or ``C`` (module docstring); ``subset`` ``""``:
    the labelled classes only (``unlabelled`` empty; only ``imagenet_118.txt`` is read)."""
    if subset not in SUBSETS and subset != "":
        raise ValueError(f"unknown ImageNet subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    base = dataset_dir("imagenet", root)
    files = [base / SPLIT_DIR / "imagenet_118.txt"] + ([base / SPLIT_DIR / f"imagenet_30_{subset}.txt"] if subset
                                                        else [])
    train_dir = base / "ILSVRC" / "Data" / "CLS-LOC" / "train"
    missing = [str(p.relative_to(base)) for p in (*files, train_dir) if not p.exists()]
    if missing:
        raise DatasetNotFoundError("ImageNet novel-class split", base, LAYOUT, missing=missing, download=DOWNLOAD)
    held_out, unlabelled = read_wnid_list(files[0]), (read_wnid_list(files[1]) if subset else [])
    outside = sorted(set(unlabelled) - set(held_out))
    if outside:
        raise DatasetCorruptError("ImageNet split", files[-1], f"{len(outside)} wnids not in imagenet_118.txt "
                                  f"(e.g. {outside[0]})")
    folders = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    absent = [w for w in held_out if w not in set(folders)]
    if absent:
        raise DatasetNotFoundError("ImageNet novel-class split", base, LAYOUT,
                                   missing=[f"ILSVRC/Data/CLS-LOC/train/{w}/" for w in absent], download=DOWNLOAD)
    labelled = [w for w in folders if w not in set(held_out)]
    return NovelImageNetSplit(labelled, unlabelled, train_dir)


class ImageFiles(torch.utils.data.Dataset):
    """``(path, class)`` samples -> ``(image, class)``: uint8 RGB read and resized to ``size`` x ``size``
    (float in [0, 1], (3, S, S); ``size`` None: kept at its own size, (3, H, W)) then ``transform`` if given.
    A file PIL cannot read raises DatasetCorruptError naming it (:func:`~thesislib.data.imageio.read_rgb`)."""

    def __init__(self, samples: list[tuple[Path, int]], size: int | None = 224,
                 transform: Callable[[Tensor], Tensor] | None = None) -> None:
        self.samples, self.size, self.transform = samples, None if size is None else int(size), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.samples[i]
        image = to_tensor(read_rgb(path, "ImageNet"))
        image = image if self.size is None else resize_image(image, self.size)
        return (self.transform(image) if self.transform is not None else image), label


def write_novel_split_fixture(root: str | Path, n_classes: int = 8, n_held_out: int = 4, n_subset: int = 2,
                              n_train: int = 3) -> Path:
    """A CLS-LOC fixture (:func:`thesislib.data.imagenet_fixtures.write_imagenet_fixture`) with the split
    files in the released format: the last ``n_held_out`` classes held out and subsets A/B/C of
    ``n_subset`` of them (A the first, B the last, C every other). Returns the imagenet/ directory."""
    base = write_imagenet_fixture(root, n_classes=n_classes, n_train=n_train, n_val=1, train_box_every=0)
    wnids = fixture_wnids(n_classes)
    held = wnids[-n_held_out:]
    (base / SPLIT_DIR).mkdir(exist_ok=True)
    (base / SPLIT_DIR / "imagenet_118.txt").write_text("".join(f"{w}\n" for w in reversed(held)))
    for name, chosen in (("A", held[:n_subset]), ("B", held[-n_subset:]), ("C", held[::2][:n_subset])):
        (base / SPLIT_DIR / f"imagenet_30_{name}.txt").write_text("".join(f"{w}\n" for w in chosen))
    return base
