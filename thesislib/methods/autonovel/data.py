"""AutoNovel's data: a labelled set of the first C^l classes and an unlabelled set of the C^u others.

* ``digits``: the scikit-learn digits, split per class into train / test (``test_fraction``), labelled
  0-4 and unlabelled 5-9 (study note §4.6(a); the CIFAR-10 / SVHN 5 / 5 split);
* ``cifar10`` / ``svhn``: labelled = classes 0-4, unlabelled = 5-9; ``cifar100``: 80 / 20
  (:mod:`thesislib.data.cifar`, :mod:`thesislib.data.svhn`; a missing dataset names its layout);
* ``omniglot``: labelled = the 964 characters of the 30 background alphabets, unlabelled = the characters
  of one evaluation alphabet (``params.alphabet``; none when empty), 32x32 (:mod:`thesislib.data.omniglot`);
  the test split is the alphabet's images again (OmniGlot is scored as a clustering only).

:class:`Episodes` draws the metric-learning episodes of the labelled classes.

Training items are ``(image, target, class)``: ``target`` is the class for labelled images and -1 for
unlabelled ones (the training step reads only ``target``); ``class`` is kept for scoring. The
clustering is scored on the unlabelled *training* images, without augmentation (thesis §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.config import ConfigError
from thesislib.data.cifar import load_cifar_tensors, random_crop, random_crop_flip
from thesislib.data.digits import load_digits_split
from thesislib.data.omniglot import load_omniglot
from thesislib.data.roots import dataset_dir
from thesislib.data.svhn import load_svhn_tensors
from thesislib.data.transforms import normalize
from thesislib.methods.autonovel.config import AutoNovelParams


@dataclass(frozen=True)
class NovelData:
    """Train and test images (N, C, H, W) with classes; ``n_labelled`` = C^l."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_labelled: int

    def targets(self) -> Tensor:
        """The training targets: the class for labelled images, -1 for unlabelled ones."""
        return torch.where(self.y_train < self.n_labelled, self.y_train, torch.full_like(self.y_train, -1))

    @property
    def train_set(self) -> TensorDataset:
        """Every training image: (x, target, class)."""
        return TensorDataset(self.x_train, self.targets(), self.y_train)

    @property
    def labelled_set(self) -> TensorDataset:
        keep = self.y_train < self.n_labelled
        return TensorDataset(self.x_train[keep], self.y_train[keep])

    def unlabelled(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """The images of the new classes and their classes shifted to 0..C^u-1."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        keep = y >= self.n_labelled
        return x[keep], y[keep] - self.n_labelled


OMNIGLOT_SIZE, OMNIGLOT_MEAN, OMNIGLOT_STD = 32, 0.086, 0.235


def with_alphabet(background: NovelData, params: AutoNovelParams) -> NovelData:
    """OmniGlot: the background-only data (labelled) with the evaluation alphabet ``params.alphabet`` added
    as the unlabelled set (classes C^l, C^l + 1, ...); the background is read once for all 20 alphabets."""
    bg = background.labelled_set.tensors
    if not params.alphabet:
        return NovelData(bg[0], bg[1], bg[0][:0], bg[1][:0], background.n_labelled)
    root = dataset_dir("omniglot", data_root=params.data_root)
    ev = load_omniglot("evaluation", root, alphabets=[params.alphabet], size=OMNIGLOT_SIZE)
    return NovelData(torch.cat([bg[0], ev.images]), torch.cat([bg[1], ev.labels + background.n_labelled]),
                     ev.images, ev.labels + background.n_labelled, background.n_labelled)


def load_data(params: AutoNovelParams) -> NovelData:
    if params.data == "omniglot":
        root = dataset_dir("omniglot", data_root=params.data_root)
        bg = load_omniglot("background", root, size=OMNIGLOT_SIZE)
        if params.n_labelled_classes != len(bg.characters):
            raise ConfigError(f"AutoNovelParams: n_labelled_classes {params.n_labelled_classes} does not match the "
                              f"{len(bg.characters)} background characters found in {root}")
        return with_alphabet(NovelData(bg.images, bg.labels, bg.images[:0], bg.labels[:0], len(bg.characters)),
                             params)
    if params.data == "digits":
        s = load_digits_split(params.test_fraction, seed=0)
        return NovelData(s.x_train, s.y_train, s.x_test, s.y_test, params.n_labelled_classes)
    if params.data == "svhn":
        root = dataset_dir("svhn", data_root=params.data_root)
        (xa, ya), (xb, yb) = load_svhn_tensors("train", root), load_svhn_tensors("test", root)
    else:
        root = dataset_dir(params.data, data_root=params.data_root)
        (xa, ya), (xb, yb) = load_cifar_tensors(params.data, True, root), load_cifar_tensors(params.data, False, root)
    return NovelData(xa, ya, xb, yb, params.n_labelled_classes)


def model_input(x: Tensor, params: AutoNovelParams) -> Tensor:
    """Network input without augmentation: digits as they are; CIFAR with its channel statistics;
    SVHN scaled to [-1, 1]."""
    if params.data == "digits":
        return x.float()
    if params.data == "omniglot":
        return (x.float() - OMNIGLOT_MEAN) / OMNIGLOT_STD
    if params.data == "svhn":
        return x.float() / 127.5 - 1.0
    return normalize(x, params.data)


def augment(x: Tensor, params: AutoNovelParams) -> Tensor:
    """One random view: digits + N(0, noise_std²) noise; CIFAR pad-4 crop + flip; SVHN pad-4 crop."""
    if params.data == "digits":
        x = x.float()
        return x + params.noise_std * torch.randn_like(x) if params.noise_std > 0 else x
    if params.data in ("svhn", "omniglot"):
        return model_input(random_crop(x, 4 if params.data == "svhn" else 2), params)
    return model_input(random_crop_flip(x, 4), params)


class Episodes(torch.utils.data.Dataset):
    """``n_episodes`` metric-learning episodes of the labelled images ``x`` (N, ...) with classes ``y`` (N,):
    each item draws ``n_way`` classes and ``n_shot`` images of each (without replacement), rows grouped by
    class. Item: (images (n_way·n_shot, ...), classes (n_way·n_shot,)). Classes with fewer than ``n_shot``
    images are never drawn.

    The draws come from torch's global RNG, so every epoch sees new episodes (as DTC's
    ``RandSubClassSampler``); under the engine, :class:`~thesislib.engine.SeededDataset` seeds that RNG per
    (epoch seed, index), so a rerun or a resume sees the same episodes."""

    def __init__(self, x: Tensor, y: Tensor, n_way: int, n_shot: int, n_episodes: int) -> None:
        ids, counts = torch.unique(y, return_counts=True)
        self.classes = ids[counts >= n_shot]
        if len(self.classes) < n_way:
            raise ValueError(f"Episodes: {len(self.classes)} classes have >= {n_shot} images; need {n_way}")
        self.x, self.y, self.n_way, self.n_shot, self.n_episodes = x, y, n_way, n_shot, n_episodes
        self.rows = {int(c): torch.nonzero(y == c).flatten() for c in self.classes}

    def __len__(self) -> int:
        return self.n_episodes

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        chosen = self.classes[torch.randperm(len(self.classes))[: self.n_way]]
        idx = torch.cat([self.rows[int(c)][torch.randperm(len(self.rows[int(c)]))[: self.n_shot]] for c in chosen])
        return self.x[idx], self.y[idx]
