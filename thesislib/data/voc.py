"""PASCAL VOC 2012 segmentation and the SBD augmented set, read from their real on-disk formats.

SEC (thesis chapter 2) and micro-annotation (chapter 3) train on *trainaug* and report mIoU on
*val* (study note 001, section 1.3). Layouts, under ``$THESISLIB_DATA``::

    voc/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    voc/VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette PNG, 0..20, 255 = void
    voc/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    sbd/benchmark_RELEASE/dataset/img/<id>.jpg
    sbd/benchmark_RELEASE/dataset/cls/<id>.mat              struct GTcls, field Segmentation
    sbd/benchmark_RELEASE/dataset/{train,val}.txt

=========  ==========================================================================  ======
split      ids                                                                         images
=========  ==========================================================================  ======
train      VOC ``train.txt``                                                             1464
val        VOC ``val.txt``                                                               1449
trainval   VOC ``trainval.txt``                                                          2913
trainaug   (SBD train ∪ SBD val ∪ VOC train) minus VOC val                              10582
=========  ==========================================================================  ======

A *trainaug* mask comes from the VOC PNG where one exists and from the SBD ``.mat`` otherwise;
its image from VOC ``JPEGImages`` where present, else from SBD ``img/``. Items are dicts:
``image`` uint8 numpy (H, W, 3) RGB, ``mask`` int64 numpy (H, W) with 255 = ignore, ``labels``
float32 numpy (20,), the multi-hot *foreground* classes present in the mask (index k is VOC
class k + 1; background and 255 are excluded), and ``id``. A ``transform`` receives that dict;
:class:`SegInputTransform` is SEC's input pipeline (resize to 321x321, normalise, with the shared
:mod:`thesislib.data.transforms`) and returns tensors. Image-level labels of a split are computed
once from the masks and cached (see :func:`split_labels`).

``voc_root`` and ``sbd_root`` follow the rule of :mod:`thesislib.data.roots`: non-empty, each is
the dataset directory itself (the ``voc/`` holding ``VOCdevkit/``, the ``sbd/`` holding
``benchmark_RELEASE/``); empty or None, ``$THESISLIB_DATA/voc`` and ``$THESISLIB_DATA/sbd``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imageio import read_rgb
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir, suggest_root
from thesislib.data.transforms import NORMALIZATIONS, as_size, normalize, resize_image, resize_mask, to_tensor
from thesislib.paths import cache_root

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
VOC_IGNORE = 255
VOC_SPLITS: tuple[str, ...] = ("train", "val", "trainval", "trainaug")
VOC_LAYOUT = """voc/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
voc/VOCdevkit/VOC2012/SegmentationClass/<id>.png   (palette PNG: 0..20, 255 = void)
voc/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt"""
SBD_LAYOUT = """sbd/benchmark_RELEASE/dataset/img/<id>.jpg
sbd/benchmark_RELEASE/dataset/cls/<id>.mat   (MATLAB struct GTcls, field Segmentation: uint8 0..20)
sbd/benchmark_RELEASE/dataset/{train,val}.txt"""
_LAYOUT = ("PASCAL VOC 2012 (every split):\n" + VOC_LAYOUT
           + "\nSBD, Hariharan et al. 2011 (split 'trainaug' only):\n" + SBD_LAYOUT)
_DOWNLOAD = ("PASCAL VOC 2012: VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/, "
             "unpacked into voc/; SBD: benchmark.tgz from "
             "http://home.bharathh.info/pubs/codes/SBD/download.html, unpacked into sbd/")
_VOC_INNER = "VOCdevkit/VOC2012"
_SBD_INNER = "benchmark_RELEASE/dataset"
_CACHE_VERSION = 1


def voc_palette() -> np.ndarray:
    """The VOC colour map, uint8 (256, 3): entry i spreads the bits of i over R, G, B.

    Bit 3j (3j+1, 3j+2) of the index sets bit 7-j of red (green, blue), so 0 is black,
    1 (aeroplane) is (128, 0, 0) and 255 (void) is (224, 224, 192).
    """
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for j in range(8):
        for channel in range(3):
            palette[:, channel] |= ((index >> (3 * j + channel)) & 1) << (7 - j)
    return palette.astype(np.uint8)


VOC_PALETTE: np.ndarray = voc_palette()
VOC_PALETTE.setflags(write=False)


def colorize(mask: Any) -> np.ndarray:
    """Class-index mask (..., H, W) (numpy or tensor, values 0..255) -> uint8 RGB (..., H, W, 3)."""
    mask = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"mask values must lie in 0..255, got {mask.min()}..{mask.max()}")
    return VOC_PALETTE[mask.astype(np.int64)]


# --------------------------------------------------------------------------------------------
# Locations and id lists
# --------------------------------------------------------------------------------------------

def voc_dir(voc_root: str | Path | None = None) -> Path:
    """The ``VOC2012`` directory: ``<voc dataset directory>/VOCdevkit/VOC2012`` (module docstring)."""
    return dataset_dir("voc", voc_root) / _VOC_INNER


def sbd_dir(sbd_root: str | Path | None = None) -> Path:
    """SBD's ``benchmark_RELEASE/dataset`` directory under the ``sbd`` dataset directory."""
    return dataset_dir("sbd", sbd_root) / _SBD_INNER


def _not_found(name: str, folder: Path, missing: Sequence[str]) -> DatasetNotFoundError:
    """Not-found error for files ``missing`` (relative to ``folder``, a VOC2012 or SBD dataset folder)."""
    key, inner = ("sbd", _SBD_INNER) if folder.parts[-2:] == tuple(_SBD_INNER.split("/")) else ("voc", _VOC_INNER)
    base = folder.parents[1]
    return DatasetNotFoundError(name, folder, _LAYOUT, missing=list(missing), download=_DOWNLOAD,
                                suggestion=suggest_root(key, base, inner))


def _read_list(path: Path, name: str, root: Path) -> list[str]:
    if not path.is_file():
        raise _not_found(name, root, [str(path.relative_to(root))])
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if len(set(ids)) != len(ids):
        raise DatasetCorruptError(name, path, "the list names an image more than once")
    return ids


def split_ids(split: str, voc_root: str | Path | None = None,
              sbd_root: str | Path | None = None) -> list[str]:
    """The image ids of ``split`` (see the module table), in file order (``trainaug``: sorted)."""
    if split not in VOC_SPLITS:
        raise ValueError(f"split must be one of {VOC_SPLITS}, got {split!r}")
    voc = voc_dir(voc_root)
    lists = voc / "ImageSets" / "Segmentation"
    if split != "trainaug":
        return _read_list(lists / f"{split}.txt", "PASCAL VOC 2012", voc)
    sbd = sbd_dir(sbd_root)
    sbd_ids = (_read_list(sbd / "train.txt", "SBD", sbd) + _read_list(sbd / "val.txt", "SBD", sbd))
    voc_train = _read_list(lists / "train.txt", "PASCAL VOC 2012", voc)
    voc_val = set(_read_list(lists / "val.txt", "PASCAL VOC 2012", voc))
    return sorted(set(sbd_ids).union(voc_train) - voc_val)


def _listing(folder: Path, suffix: str) -> set[str]:
    """Stems of the files in ``folder`` ending with ``suffix`` (one directory read)."""
    try:
        return {name[: -len(suffix)] for name in os.listdir(folder) if name.endswith(suffix)}
    except FileNotFoundError:
        return set()


# --------------------------------------------------------------------------------------------
# File readers
# --------------------------------------------------------------------------------------------

def _check_mask(mask: np.ndarray, path: Path, dataset: str) -> np.ndarray:
    if mask.ndim != 2 or mask.dtype.kind not in "ui":
        raise DatasetCorruptError(dataset, path, f"expected a 2-D integer class map, got "
                                  f"{mask.dtype} {mask.shape}")
    bad = (mask > 20) & (mask != VOC_IGNORE)
    if bad.any():
        raise DatasetCorruptError(dataset, path, f"class values outside 0..20 and 255: "
                                  f"{sorted(np.unique(mask[bad]).tolist())[:5]}")
    return mask.astype(np.int64)


def read_voc_mask(path: Path) -> np.ndarray:
    """A VOC ``SegmentationClass`` PNG as int64 (H, W) class indices (255 = void).

    The PNG is palette-indexed (mode ``P``); the indices are the classes, so it must not be
    converted to RGB. Greyscale (mode ``L``) index maps, as in the common "SegmentationClassAug"
    repackaging, are accepted too.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise DatasetCorruptError("PASCAL VOC 2012", path, f"expected a palette (P) PNG "
                                          f"of class indices, got mode {img.mode}")
            mask = np.asarray(img)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DatasetCorruptError("PASCAL VOC 2012", path, f"unreadable PNG: {err}") from err
    return _check_mask(mask, path, "PASCAL VOC 2012")


def read_sbd_mask(path: Path) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/<id>.mat`` file as int64 (H, W), values 0..20."""
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["GTcls"])
        seg = np.asarray(mat["GTcls"]["Segmentation"][0, 0])
    except Exception as err:  # noqa: BLE001 (any failure to parse is a corrupt file)
        raise DatasetCorruptError("SBD", path, f"cannot read GTcls.Segmentation: "
                                  f"{type(err).__name__}: {err}") from err
    return _check_mask(seg, path, "SBD")


def present_classes(mask: np.ndarray) -> np.ndarray:
    """uint8 (20,): 1 where foreground class k + 1 has a pixel in ``mask`` (0 and 255 ignored)."""
    counts = np.bincount(np.asarray(mask, dtype=np.int64).ravel(), minlength=256)
    return (counts[1:21] > 0).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Image-level labels, cached
# --------------------------------------------------------------------------------------------

class LabelCacheCorruptError(DatasetCorruptError):
    """A cached label file exists but cannot be used; the message says to delete it."""

    def __init__(self, path: Path, reason: str) -> None:
        self.dataset = "PASCAL VOC label cache"
        self.path = Path(path)
        self.reason = reason
        RuntimeError.__init__(self, f"{self.dataset}: corrupt cache file ({reason}):\n    {path}\n"
                              "Delete this file; the labels are recomputed from the masks on the "
                              "next run.")


def labels_cache_path(split: str, key: str) -> Path:
    """``<cache_root>/voc/labels_<split>_<key>.npz``."""
    return cache_root() / "voc" / f"labels_{split}_{key}.npz"


def _cache_key(ids: Sequence[str], mask_paths: Sequence[Path]) -> str:
    digest = hashlib.sha1()
    for image_id, path in zip(ids, mask_paths):
        digest.update(f"{image_id}\t{path}\n".encode())
    return digest.hexdigest()[:16]


def _load_cache(path: Path, ids: Sequence[str]) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"])
            cached_ids = data["ids"]
            labels = np.array(data["labels"])
    except Exception as err:  # noqa: BLE001 (zip, key and dtype errors all mean "corrupt")
        raise LabelCacheCorruptError(path, f"{type(err).__name__}: {err}") from err
    if version != _CACHE_VERSION:
        raise LabelCacheCorruptError(path, f"cache version {version}, expected {_CACHE_VERSION}")
    if cached_ids.shape != (len(ids),) or cached_ids.tolist() != list(ids):
        raise LabelCacheCorruptError(path, "its image ids differ from the split's")
    if labels.shape != (len(ids), 20) or not np.isin(labels, (0, 1)).all():
        raise LabelCacheCorruptError(path, f"labels of shape {labels.shape} are not 0/1 (N, 20)")
    return labels.astype(np.uint8)


def split_labels(ids: Sequence[str], mask_paths: Sequence[Path], split: str,
                 use_cache: bool = True) -> np.ndarray:
    """Image-level labels uint8 (N, 20) of a split, from its masks; cached as an ``.npz``.

    The cache file is keyed by the split and a hash of the (id, mask path) list, so a changed
    list or a dataset moved elsewhere gets a new file. A cache file that cannot be read or does
    not match raises :class:`LabelCacheCorruptError` (a :class:`DatasetCorruptError`) naming it;
    it is never silently overwritten.
    """
    path = labels_cache_path(split, _cache_key(ids, mask_paths))
    if use_cache and path.exists():
        return _load_cache(path, ids)
    labels = np.zeros((len(ids), 20), dtype=np.uint8)
    for i, mask_path in enumerate(mask_paths):
        mask = read_sbd_mask(mask_path) if mask_path.suffix == ".mat" else read_voc_mask(mask_path)
        labels[i] = present_classes(mask)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, version=np.int64(_CACHE_VERSION), ids=np.asarray(list(ids), dtype=str),
                 labels=labels)
        os.replace(tmp, path)
    return labels


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

class VOCSegmentation(torch.utils.data.Dataset):
    """PASCAL VOC 2012 semantic segmentation (+ SBD for ``trainaug``), a map-style dataset.

    ``dataset[i]`` is ``{"image": uint8 numpy (H, W, 3) RGB, "mask": int64 numpy (H, W) (0..20,
    255 = ignore), "labels": float32 numpy (20,), "id": str}``, or ``transform`` of that dict
    (e.g. :class:`SegInputTransform`, which returns tensors). Attributes: ``ids`` (N,),
    ``image_paths``, ``mask_paths`` (PNG or ``.mat`` per image), ``labels`` uint8 (N, 20).

    Args:
        split: ``"train"``, ``"val"``, ``"trainval"`` or ``"trainaug"``.
        voc_root, sbd_root: see :func:`voc_dir` and :func:`sbd_dir`; SBD is read only for
            ``trainaug``.
        transform: callable applied to the item dict.
        use_cache: read/write the image-level label cache (:func:`split_labels`).
    """

    num_classes = len(VOC_CLASSES)
    class_names = VOC_CLASSES
    ignore_index = VOC_IGNORE

    def __init__(self, split: str, voc_root: str | Path | None = None, sbd_root: str | Path | None = None,
                 transform: Callable[[dict[str, Any]], Any] | None = None, use_cache: bool = True) -> None:
        self.split = split
        self.transform = transform
        self.voc_dir = voc_dir(voc_root)
        self.sbd_dir = sbd_dir(sbd_root) if split == "trainaug" else None
        missing = [str(p) for p in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")
                   if not (self.voc_dir / p).is_dir()]
        if missing:
            raise _not_found("PASCAL VOC 2012", self.voc_dir, missing)
        if self.sbd_dir is not None:
            missing = [p for p in ("img", "cls") if not (self.sbd_dir / p).is_dir()]
            if missing:
                raise _not_found("SBD (needed for split 'trainaug')", self.sbd_dir, missing)
        self.ids = split_ids(split, voc_root, sbd_root)
        self.image_paths, self.mask_paths = self._locate()
        self.labels = split_labels(self.ids, self.mask_paths, split, use_cache=use_cache)

    def _locate(self) -> tuple[list[Path], list[Path]]:
        voc, sbd = self.voc_dir, self.sbd_dir
        voc_jpg = _listing(voc / "JPEGImages", ".jpg")
        voc_png = _listing(voc / "SegmentationClass", ".png")
        sbd_jpg = _listing(sbd / "img", ".jpg") if sbd is not None else set()
        sbd_mat = _listing(sbd / "cls", ".mat") if sbd is not None else set()
        images, masks, lost = [], [], []
        for image_id in self.ids:
            if image_id in voc_jpg:
                images.append(voc / "JPEGImages" / f"{image_id}.jpg")
            elif image_id in sbd_jpg:
                images.append(sbd / "img" / f"{image_id}.jpg")
            else:
                lost.append(f"JPEGImages/{image_id}.jpg")
            if image_id in voc_png:
                masks.append(voc / "SegmentationClass" / f"{image_id}.png")
            elif image_id in sbd_mat:
                masks.append(sbd / "cls" / f"{image_id}.mat")
            else:
                lost.append(f"SegmentationClass/{image_id}.png" + (f" or cls/{image_id}.mat" if sbd else ""))
        if lost:
            raise _not_found("PASCAL VOC 2012" + (" + SBD" if sbd else ""), voc, lost)
        return images, masks

    def __len__(self) -> int:
        return len(self.ids)

    def mask_source(self, index: int) -> str:
        """``"voc"`` (PNG) or ``"sbd"`` (``.mat``): where the mask of item ``index`` comes from."""
        return "sbd" if self.mask_paths[index].suffix == ".mat" else "voc"

    def read_image(self, index: int) -> np.ndarray:
        """The RGB image (H, W, 3) uint8 of item ``index`` alone (no mask read: for training on
        image-level labels, which come from :attr:`labels`)."""
        image_path = self.image_paths[index]
        return read_rgb(image_path, "SBD" if self.sbd_dir and image_path.is_relative_to(self.sbd_dir)
                        else "PASCAL VOC 2012")

    def read(self, index: int) -> dict[str, Any]:
        """Item ``index`` before the transform."""
        image_path, mask_path = self.image_paths[index], self.mask_paths[index]
        image = self.read_image(index)
        mask = read_sbd_mask(mask_path) if mask_path.suffix == ".mat" else read_voc_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise DatasetCorruptError("SBD" if mask_path.suffix == ".mat" else "PASCAL VOC 2012", mask_path,
                                      f"mask of size {mask.shape}, but its image {image_path} is "
                                      f"{image.shape[:2]}")
        return {"image": image, "mask": mask, "labels": self.labels[index].astype(np.float32),
                "id": self.ids[index]}

    def __getitem__(self, index: int) -> Any:
        sample = self.read(index)
        return self.transform(sample) if self.transform is not None else sample


# --------------------------------------------------------------------------------------------
# SEC's input pipeline: resize (no crop) and normalise
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegInputTransform:
    """Item transform of SEC's input (train.prototxt): resize to ``size`` (default 321x321, no
    crop, no mirroring), normalise; the mask is resized with nearest neighbour when
    ``resize_mask`` (else kept at full resolution, as for evaluation).

    Returns ``{"image": float32 (3, h, w), "mask": int64 (h, w) or (H, W), "labels": float32
    (20,), "id": str, "orig_size": int64 (2,) = (H, W)}``.
    """

    size: tuple[int, int] = (321, 321)
    normalization: str = "imagenet"
    resize_mask: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", as_size(self.size))
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {tuple(NORMALIZATIONS)}, got {self.normalization!r}")

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        image = to_tensor(sample["image"])
        mask = torch.as_tensor(np.asarray(sample["mask"]), dtype=torch.int64)
        out = dict(sample)
        out["orig_size"] = torch.tensor(image.shape[1:], dtype=torch.int64)
        out["image"] = normalize(resize_image(image, self.size), self.normalization)
        out["mask"] = resize_mask(mask, self.size) if self.resize_mask else mask
        out["labels"] = torch.as_tensor(np.asarray(sample["labels"]), dtype=torch.float32)
        return out
