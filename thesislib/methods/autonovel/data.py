"""AutoNovel's data: a labelled set of the first C^l classes and an unlabelled set of the C^u others.

* ``digits``: the scikit-learn digits, split per class into train / test (``test_fraction``), labelled
  0-4 and unlabelled 5-9 (study note §4.6(a); the CIFAR-10 / SVHN 5 / 5 split);
* ``cifar10`` / ``svhn``: labelled = classes 0-4, unlabelled = 5-9; ``cifar100``: 80 / 20
  (:mod:`thesislib.data.cifar`, :mod:`thesislib.data.svhn`; a missing dataset names its layout);
* ``omniglot``: labelled = the 964 characters of the 30 background alphabets, unlabelled = the characters
  of one evaluation alphabet (``params.alphabet``; none when empty), 32x32 (:mod:`thesislib.data.omniglot`);
  the test split is the alphabet's images again (OmniGlot is scored as a clustering only);
* ``imagenet``: labelled = the 882 classes, unlabelled = one 30-class subset (``params.subset``) of the 118
  held out, streamed from disk (:class:`NovelImageNet`, :mod:`thesislib.data.imagenet_novel`); scored on the
  subset's train images.

:class:`Episodes` draws the metric-learning episodes of the labelled classes.

Training items are ``(image, target, class)``: ``target`` is the class for labelled images and -1 for
unlabelled ones (the training step reads only ``target``); ``class`` is kept for scoring. The
clustering is scored on the unlabelled *training* images, without augmentation (thesis §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from thesislib.config import ConfigError
from thesislib.data.cifar import load_cifar_tensors, random_crop, random_crop_flip
from thesislib.data.crops import AreaCropFlip, ResizeCenterCrop
from thesislib.data.digits import load_digits_split
from thesislib.data.imagenet_novel import ImageFiles, NovelImageNetSplit, novel_imagenet_split
from thesislib.data.omniglot import load_omniglot
from thesislib.data.roots import dataset_dir
from thesislib.data.svhn import load_svhn_tensors
from thesislib.data.transforms import IMAGENET, normalize
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


def load_data(params: AutoNovelParams) -> NovelData | NovelImageNet:
    if params.data == "imagenet":
        return load_imagenet(params)
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
    if params.data == "imagenet":          # the streamed items are normalised crops already (NovelImageNet)
        return x
    if params.data == "omniglot":
        return (x.float() - OMNIGLOT_MEAN) / OMNIGLOT_STD
    if params.data == "svhn":
        return x.float() / 127.5 - 1.0
    return normalize(x, params.data)


def augment(x: Tensor, params: AutoNovelParams) -> Tensor:
    """One random view: digits + N(0, noise_std²) noise; CIFAR pad-4 crop + flip; SVHN pad-4 crop."""
    if params.data == "imagenet":          # the workers drew the random resized crops (NovelImageNet)
        return x
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


# ImageNet (Table 3): appended block ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageNetView:
    """A decoded image (3, H, W) in [0, 1] -> ``views`` normalised ImageNet inputs: one (3, S, S), or
    ``views`` > 1 of them stacked (views, 3, S, S). Training (``train``): torchvision's RandomResizedCrop of
    area fraction ``scale`` (default (0.5, 1), the joint step's) + flip, drawn independently per view (the
    released ``TransformTwice``); evaluation: the shorter side resized to ``resize``, the central S x S crop (the
    released ``Resize(256), CenterCrop(224)``)."""

    size: int
    resize: int
    train: bool
    views: int = 1
    scale: tuple[float, float] = (0.5, 1.0)

    def __call__(self, image: Tensor) -> Tensor:
        crop = (AreaCropFlip(self.size, self.scale) if self.train
                else ResizeCenterCrop(self.resize, self.size))
        out = [normalize(crop(image), IMAGENET) for _ in range(self.views)]
        return out[0] if self.views == 1 else torch.stack(out)


@dataclass(frozen=True)
class NovelImageNet:
    """AutoNovel's ImageNet data, streamed from disk (nothing held in memory but the file list): the 882
    labelled classes' train images and, for ``split.unlabelled`` non-empty, one 30-class subset's train
    images (:mod:`thesislib.data.imagenet_novel`). The same interface as :class:`NovelData` where the steps
    read it:

    * ``labelled_set``: (one training view (3, S, S), class) for the supervised step, cropped at area fraction
      (``sup_scale``, 1) (``sup_crop_scale``; DTC's ImageNet classifier: torchvision's default 0.08);
    * ``joint_labelled_set`` / ``unlabelled_views()``: (two views (2, 3, S, S), class) for the joint step's
      two streams (the unlabelled classes are never read by the training step);
    * ``unlabelled("train")``: (the unlabelled images as an evaluation dataset of (centre crop, class), their
      classes (M,)): the clustering is scored on the subset's *train* images, as the thesis (§4.3) and the
      released ``auto_novel_imagenet.py`` (``ImageNetLoader30(subfolder='train')``); there is no test split."""

    split: NovelImageNetSplit
    n_labelled: int
    size: int = 224
    resize: int = 256
    sup_scale: float = 0.5

    @cached_property
    def _labelled_samples(self) -> list[tuple[Path, int]]:
        return self.split.samples("labelled")

    def _files(self, part: str, view: ImageNetView) -> ImageFiles:
        samples = self._labelled_samples if part == "labelled" else self.split.samples("unlabelled")
        return ImageFiles(samples, size=None, transform=view)

    @property
    def labelled_set(self) -> ImageFiles:
        return self._files("labelled", ImageNetView(self.size, self.resize, train=True, scale=(self.sup_scale, 1.0)))

    @property
    def joint_labelled_set(self) -> ImageFiles:
        return self._files("labelled", ImageNetView(self.size, self.resize, train=True, views=2))

    def unlabelled_views(self) -> ImageFiles:
        return self._files("unlabelled", ImageNetView(self.size, self.resize, train=True, views=2))

    @property
    def train_set(self) -> ImageFiles:
        raise ConfigError("AutoNovelParams: imagenet has no merged labelled + unlabelled shuffle; the joint step "
                          "reads two streams (unlabelled_batch_size > 0)")

    def unlabelled(self, split: str = "train") -> tuple[ImageFiles, Tensor]:
        if split != "train":
            raise ValueError(f"ImageNet novel classes are scored on their train images only, not {split!r}")
        files = self._files("unlabelled", ImageNetView(self.size, self.resize, train=False))
        return files, torch.tensor([c for _, c in files.samples], dtype=torch.long)

    def labelled_eval(self, classes: Tensor | None = None) -> tuple[ImageFiles, Tensor]:
        """The labelled classes' train images (those of ``classes`` only; None: all 882) as an evaluation dataset
        of (centre crop, class) and their classes (N,): the anchor + probe images of DTC's estimate of C^u (its
        ``ImageNetLoader82from882``: train images, resize 256, centre crop 224)."""
        keep = None if classes is None else {int(c) for c in classes}
        samples = [s for s in self._labelled_samples if keep is None or s[1] in keep]
        files = ImageFiles(samples, size=None, transform=ImageNetView(self.size, self.resize, train=False))
        return files, torch.tensor([c for _, c in samples], dtype=torch.long)


def load_imagenet(params: AutoNovelParams, subset: str | None = None, check_new: bool | None = None
                  ) -> NovelImageNet:
    """The 882 labelled classes and ``subset`` (default ``params.subset``; empty: no unlabelled class), checked
    against ``n_labelled_classes`` and (``check_new``) ``n_new_classes``; ``check_new`` None: unless ``num_novel``
    is estimate, whose ``n_new_classes`` is DTC's estimate once the split's step has run (a torchrun joint step
    loads the data with it; the per-split loop checks the true C^u first). A missing dataset or split file names
    ``$THESISLIB_DATA/imagenet`` and the layout (:func:`~thesislib.data.imagenet_novel.novel_imagenet_split`)."""
    chosen = params.subset if subset is None else subset
    split = novel_imagenet_split(chosen, dataset_dir("imagenet", data_root=params.data_root))
    if len(split.labelled) != params.n_labelled_classes:
        raise ConfigError(f"AutoNovelParams: n_labelled_classes {params.n_labelled_classes} does not match the "
                          f"{len(split.labelled)} labelled classes found in {split.train_dir}")
    check_new = params.num_novel != "estimate" if check_new is None else check_new
    if chosen and check_new and len(split.unlabelled) != params.n_new_classes:
        raise ConfigError(f"AutoNovelParams: n_new_classes {params.n_new_classes} does not match the "
                          f"{len(split.unlabelled)} classes of subset {chosen}")
    return NovelImageNet(split, params.n_labelled_classes, params.image_size, params.resize_size,
                         params.sup_crop_scale)


def replace_split(data: NovelImageNet, unlabelled: list[str]) -> NovelImageNet:
    """``data`` with another list of unlabelled wnids (``[]``: the labelled classes only)."""
    split = NovelImageNetSplit(data.split.labelled, unlabelled, data.split.train_dir)
    return NovelImageNet(split, data.n_labelled, data.size, data.resize, data.sup_scale)
