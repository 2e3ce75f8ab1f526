"""Datasets: bundled real data, procedural generators and loaders for datasets on disk."""

from thesislib.data.cifar import (
                                  CIFAR10_MEAN,
                                  CIFAR10_STD,
                                  CIFAR100_MEAN,
                                  CIFAR100_STD,
                                  CIFAR_STATS,
                                  check_cifar_layout,
                                  cifar_class_names,
                                  cifar_dataset,
                                  load_cifar_tensors,
                                  normalize,
                                  random_crop_flip,
                                  verify_cifar,
)
from thesislib.data.coco import CocoMultiLabel
from thesislib.data.digits import DIGIT_CLASSES, DigitsSplit, load_digits_split
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture, write_coco_fixture
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.photos import load_photo, photo_names, random_crop, random_crops, textures

__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "CIFAR_STATS",
    "CocoMultiLabel", "DIGIT_CLASSES", "DatasetCorruptError", "DatasetNotFoundError",
    "DigitsSplit", "check_cifar_layout", "cifar_class_names", "cifar_dataset", "load_cifar_tensors",
    "load_digits_split", "load_photo", "normalize", "photo_names", "random_crop", "random_crop_flip",
    "random_crops", "textures", "verify_cifar", "write_cifar_fixture", "write_coco_fixture",
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
