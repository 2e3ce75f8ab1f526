"""The chapter's domains: the smoke mini-decathlon or the Visual Decathlon on disk.

:func:`load_domains` returns one :class:`Domain` per name (the source first, then the targets),
each a training and a test dataset of ``(image (3, S, S) float32, label)`` and its class count.

* ``data="mini"``: :func:`thesislib.data.mini_decathlon.mini_domain` (glyphs source, or photos;
  few-shot digits, faces, shapes, textures), drawn with the replicate's seed, so every replicate sees a new
  few-shot training set (the same one for every method of that replicate: the comparisons pair).
* ``data="decathlon"``: :class:`thesislib.data.decathlon.DecathlonDomain` ``train`` for training
  and ``val`` for testing (the ``test`` split's labels are hidden by the challenge server), with
  the released augmentation (:class:`~thesislib.data.decathlon.DecathlonTransform`: random 64 crop
  and flip; centre crops at test time) and the release's per-domain mean/std
  (``decathlon_mean_std.pickle``; ImageNet's when the file is absent). ``source="imagenet"`` reads
  the ILSVRC CLS-LOC folders instead (:class:`thesislib.data.imagenet.ImageNetLocalization`,
  ``$THESISLIB_DATA/imagenet``), each image resized to the 72-px shorter side on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from thesislib.data.decathlon import DecathlonDomain, DecathlonTransform, read_mean_std
from thesislib.data.imagenet import ImageNetLocalization
from thesislib.data.mini_decathlon import mini_domain
from thesislib.data.roots import dataset_dir
from thesislib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from thesislib.methods.residual_adapters.config import ResidualAdaptersParams


@dataclass(frozen=True)
class Domain:
    """One domain: ``train`` and ``test`` datasets of (image (3, S, S), label), ``num_classes``."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int


def _decathlon(params: ResidualAdaptersParams, name: str) -> Domain:
    root = dataset_dir("decathlon", "", data_root=params.data_root)
    train = DecathlonDomain(name, "train", root)
    stats = read_mean_std(train.root, name) or (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD))
    train.transform = DecathlonTransform(name, True, *stats, crop=params.image_size, flip=params.flip)
    test = DecathlonDomain(name, "val", root, transform=DecathlonTransform(name, False, *stats,
                                                                          crop=params.image_size))
    return Domain(name, train, test, train.num_classes)


class ImageNetItems:
    """An :class:`~thesislib.data.imagenet.ImageNetLocalization` item dict -> (image, label) through
    the decathlon's transform (which first resizes to the 72-px shorter side)."""

    def __init__(self, transform: DecathlonTransform) -> None:
        self.transform = transform

    def __call__(self, item: dict) -> tuple:
        return self.transform(item["image"]), item["label"]


def _imagenet_folders(params: ResidualAdaptersParams) -> Domain:
    """ILSVRC CLS-LOC folders (:mod:`thesislib.data.imagenet`, train and val) at the decathlon's
    resolution, ImageNet statistics: the source for a pre-training from a local ImageNet copy."""
    root = dataset_dir("imagenet", "", data_root=params.data_root)
    stats = (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD))
    train = ImageNetLocalization("train", root, transform=ImageNetItems(
        DecathlonTransform("imagenet12", True, *stats, crop=params.image_size, flip=params.flip)))
    test = ImageNetLocalization("val", root, transform=ImageNetItems(
        DecathlonTransform("imagenet12", False, *stats, crop=params.image_size)))
    return Domain("imagenet", train, test, len(train.wnids))


def load_domain(params: ResidualAdaptersParams, name: str, seed: int | None = None) -> Domain:
    """The domain ``name`` (mini: drawn with ``seed``, default ``params.seed``)."""
    if params.data == "decathlon" and name == "imagenet":
        return _imagenet_folders(params)
    if params.data == "decathlon":
        return _decathlon(params, name)
    d = mini_domain(name, seed=params.seed if seed is None else seed, size=params.image_size, shots=params.shots,
                    n_source=params.n_source, n_test=params.n_test)
    return Domain(name, *d.datasets(), d.num_classes)


def load_domains(params: ResidualAdaptersParams, seed: int | None = None) -> dict[str, Domain]:
    """Source then targets. A missing Visual Decathlon stops here, naming its layout."""
    return {name: load_domain(params, name, seed) for name in (params.source, *params.targets)}
