"""Datasets: bundled real data, procedural generators and loaders for datasets on disk.

Where datasets are found (one rule, :func:`thesislib.data.roots.dataset_dir`, used by every loader):

* every loader takes ``root`` (VOC: ``voc_root`` and ``sbd_root``). Non-empty, it **is** the
  dataset's own directory (``.../cifar10``, ``.../coco``, ``.../imagenet``, ``.../voc``,
  ``.../sbd``: the first component of the loader's layout); empty (``""``) or ``None``, it is
  ``$THESISLIB_DATA/<that directory>`` (``THESISLIB_DATA`` defaults to ``~/thesislib-data``);
* a chapter's ``data_root`` parameter names the directory holding all datasets: it replaces
  ``$THESISLIB_DATA`` and never names a single dataset (``dataset_dir(name, data_root=...)``);
* a missing dataset raises :class:`DatasetNotFoundError`, whose message
  (:func:`thesislib.data.roots.not_found_message`) names the directory looked in,
  ``THESISLIB_DATA`` and its current value, the expected layout and where to download the data;
  a file that is there but unreadable raises :class:`DatasetCorruptError` naming that one file.

Pixel statistics, to-tensor, resize and normalisation live in :mod:`thesislib.data.transforms`.
"""

from thesislib.data.cifar import (
                                  check_cifar_layout,
                                  cifar_class_names,
                                  cifar_dataset,
                                  load_cifar_tensors,
                                  random_crop_flip,
                                  verify_cifar,
)
from thesislib.data.coco import CocoMultiLabel
from thesislib.data.digits import DIGIT_CLASSES, DigitsSplit, load_digits_split
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture, write_coco_fixture
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.photos import load_photo, photo_names, random_crop, random_crops, textures
from thesislib.data.roots import dataset_dir, not_found_message
from thesislib.data.transforms import (
                                       CAFFE,
                                       CAFFE_BGR_MEAN,
                                       CIFAR10_MEAN,
                                       CIFAR10_STD,
                                       CIFAR100_MEAN,
                                       CIFAR100_STD,
                                       IMAGENET,
                                       IMAGENET_MEAN,
                                       IMAGENET_STD,
                                       NORMALIZATIONS,
                                       Normalization,
                                       denormalize,
                                       normalize,
                                       resize_image,
                                       resize_mask,
                                       to_tensor,
)

__all__ = [
    "CAFFE", "CAFFE_BGR_MEAN", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "IMAGENET",
    "IMAGENET_MEAN", "IMAGENET_STD", "NORMALIZATIONS", "Normalization",
    "CocoMultiLabel", "DIGIT_CLASSES", "DatasetCorruptError", "DatasetNotFoundError",
    "DigitsSplit", "check_cifar_layout", "cifar_class_names", "cifar_dataset", "dataset_dir", "denormalize",
    "load_cifar_tensors", "load_digits_split", "load_photo", "normalize", "not_found_message", "photo_names",
    "random_crop", "random_crop_flip", "random_crops", "resize_image", "resize_mask", "textures", "to_tensor",
    "verify_cifar", "write_cifar_fixture", "write_coco_fixture",
]

# Segmentation: PASCAL VOC 2012 + SBD, their fixtures, procedural scenes.
from thesislib.data.scenes import (  # noqa: E402
                                  SceneClass,
                                  SceneConfig,
                                  Scenes,
                                  distractor_scenes,
                                  generate_scenes,
                                  scene_config,
                                  sec_scenes,
)
from thesislib.data.seg_fixtures import write_sbd_fixture, write_voc_fixture  # noqa: E402
from thesislib.data.voc import VOC_CLASSES, VOC_PALETTE, SegInputTransform, VOCSegmentation, colorize  # noqa: E402

__all__ += [
    "SceneClass", "SceneConfig", "Scenes", "SegInputTransform", "VOCSegmentation", "VOC_CLASSES",
    "VOC_PALETTE", "colorize", "distractor_scenes", "generate_scenes", "scene_config", "sec_scenes",
    "write_sbd_fixture", "write_voc_fixture",
]

# PixelCNN chapters (Grayscale / Pyramid PixelCNN, PIC): CelebA, downsampled ImageNet, colour, smoke data.
from thesislib.data.celeba import CelebA, crop_face  # noqa: E402
from thesislib.data.color import (  # noqa: E402
                                  ab_to_bins,
                                  ab_to_unit,
                                  bins_to_ab,
                                  bins_to_unit,
                                  gray4,
                                  image_pyramid,
                                  lab_to_rgb,
                                  perceptual_saturation,
                                  pyramid_down,
                                  quantize_ab,
                                  rgb_to_lab,
                                  unit_to_ab,
)
from thesislib.data.imagenet_downsampled import ImageNet128, load_downsampled_imagenet  # noqa: E402
from thesislib.data.pixelcnn_fixtures import write_celeba_fixture, write_downsampled_imagenet_fixture  # noqa: E402
from thesislib.data.pixelcnn_smoke import (  # noqa: E402
                                          AmbiguityImages,
                                          SmokeImages,
                                          ambiguity_images,
                                          colored_digits,
                                          photo_crops,
                                          smoke_faces,
)

__all__ += [
    "AmbiguityImages", "CelebA", "ImageNet128", "SmokeImages", "ab_to_bins", "ab_to_unit", "ambiguity_images",
    "bins_to_ab", "bins_to_unit", "colored_digits", "crop_face", "gray4", "image_pyramid", "lab_to_rgb",
    "load_downsampled_imagenet", "perceptual_saturation", "photo_crops", "pyramid_down", "quantize_ab",
    "rgb_to_lab", "smoke_faces", "unit_to_ab", "write_celeba_fixture", "write_downsampled_imagenet_fixture",
]

# PASCAL VOC 2007 classification (self-supervised transfer, Jenni ch. 3-4).
from thesislib.data.voc07 import VOC07_CLASSES, VOC07Input, VOC2007Classification, voc07_targets  # noqa: E402

__all__ += ["VOC07Input", "VOC07_CLASSES", "VOC2007Classification", "voc07_targets"]

# CIFAR-100-20 superclasses, SVHN (.mat) and OmniGlot (image folders) (Rebuffi chapters 5-7).
from thesislib.data.cifar import cifar100_superclasses  # noqa: E402
from thesislib.data.omniglot import Omniglot, load_omniglot, write_omniglot_fixture  # noqa: E402
from thesislib.data.svhn import load_svhn_tensors, write_svhn_fixture  # noqa: E402

__all__ += ["Omniglot", "cifar100_superclasses", "load_omniglot", "load_svhn_tensors", "write_omniglot_fixture",
            "write_svhn_fixture"]

# STL-10 (binary release: labelled splits, the unlabelled split, the ten training folds).
from thesislib.data.fixtures import write_stl10_fixture  # noqa: E402
from thesislib.data.stl10 import STL10, STL10_CLASSES, load_stl10, stl10_fold_indices  # noqa: E402

__all__ += ["STL10", "STL10_CLASSES", "load_stl10", "stl10_fold_indices", "write_stl10_fixture"]

# Polyharmonic-spline warps (the LCI warp transformation, Jenni ch. 4).
from thesislib.data.warp import random_warp, sparse_warp  # noqa: E402

__all__ += ["random_warp", "sparse_warp"]

# Several domains in one run: round-robin batches, domain-labelled images (Rebuffi ch. 3 §5).
from thesislib.data.round_robin import (  # noqa: E402
    DomainLabelled,
    RoundRobinDomains,
    center_crop,
    collate_domain_batch,
    round_robin_domain,
)

__all__ += ["DomainLabelled", "RoundRobinDomains", "center_crop", "collate_domain_batch", "round_robin_domain"]

# MNIST (IDX), Reuters-10K (DEC's .npy dict) and the ImageNet 882/118 novel-class split (Rebuffi ch. 6-7).
from thesislib.data.imagenet_novel import (  # noqa: E402
    NovelImageNetSplit,
    novel_imagenet_split,
    write_novel_split_fixture,
)
from thesislib.data.mnist import load_mnist, write_mnist_fixture  # noqa: E402
from thesislib.data.reuters import load_reuters10k, write_reuters10k_fixture  # noqa: E402

__all__ += ["NovelImageNetSplit", "load_mnist", "load_reuters10k", "novel_imagenet_split", "write_mnist_fixture",
            "write_novel_split_fixture", "write_reuters10k_fixture"]

# MIT Indoor-67 and Places205 (Places10) from their releases (Rebuffi ch. 5 Table 2).
from thesislib.data.scene_datasets import (  # noqa: E402
    PLACES10_DEFAULT,
    load_mit67,
    load_places,
    write_mit67_fixture,
    write_places205_fixture,
)

__all__ += ["PLACES10_DEFAULT", "load_mit67", "load_places", "write_mit67_fixture", "write_places205_fixture"]

# In-memory image tensors as a dataset (Jenni ch. 3-4 smoke data).
from thesislib.data.tensors import TensorImages  # noqa: E402

__all__ += ["TensorImages"]

# The thesis's grid warp of LCI's T_4 (control points on a lattice, Jenni §4.2).
from thesislib.data.warp import grid_warp  # noqa: E402

__all__ += ["grid_warp"]

# The grid warp's control points, read map and its Jacobian (the folding check of LCI's T_4).
from thesislib.data.warp import grid_control_points, jacobian_determinant, warp_coordinates  # noqa: E402

__all__ += ["grid_control_points", "jacobian_determinant", "warp_coordinates"]

# Crops, resizes and a label-dropping view of the self-supervised chapters (Jenni ch. 3-4), images in [-1, 1].
from thesislib.data.crops import (  # noqa: E402
    CenterResize,
    ImageNetCrop,
    ImagesOnly,
    LabelledResize,
    RandomCropFlip,
    RandomResizeCropFlip,
    to_unit_range,
)

__all__ += ["CenterResize", "ImageNetCrop", "ImagesOnly", "LabelledResize", "RandomCropFlip", "RandomResizeCropFlip",
            "to_unit_range"]
