"""The PASCAL VOC transfer evaluations of a self-supervised conv backbone, shared by the chapters that report them
(Jenni ch. 3 Table 3.3, ch. 4 Table 4.4): VOC2007 classification mAP, VOC2007 detection mAP and VOC2012
segmentation mIoU, each fine-tuning a fresh copy of the backbone under Krähenbühl et al.'s framework.

* :class:`VocTransferParams`: the protocol's parameters as frozen dataclass fields; a chapter's params class
  inherits them (``class ChapterParams(VocTransferParams)``) and declares its own ``transfer`` field (the tasks
  it offers) and ``data_root``.
* :func:`check_voc_data`: open every data set the requested tasks read, before any pre-training.
* :func:`voc07_classification` (:func:`thesislib.eval.finetune_multilabel`), :func:`voc07_detection`
  (:func:`thesislib.eval.finetune_detection`, torchvision's Faster R-CNN), :func:`voc12_segmentation`
  (:func:`thesislib.eval.finetune_segmentation`, an FCN-32s-style head): one task each.
* :func:`run_voc_transfer`: the requested tasks in order, ``{"voc07_cls_map": %, "voc07_det_map": %,
  "voc12_seg_miou": %}`` (requested keys only).

The backbone is built by a callable per task (images (B, 3, H, W) -> conv map (B, C5, H5, W5)), so each task
fine-tunes its own copy and the trained network is left untouched. BN layers in the backbone are folded into
the preceding conv weights by the rescaling (``transfer_rescale``; :mod:`thesislib.nn.rescaling`) before the
data-dependent rescaling, as Jenni ch. 4 states for Table 4.4. A :class:`thesislib.eval.ConvFeatures`
backbone keeps the whole network, whose layers after the transferred one get no gradient: the fine-tunes here
run in one process; a DDP fine-tune of such a wrapper needs ``ddp_find_unused_parameters`` (or a copy of the
conv layers alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError
from thesislib.data.roots import dataset_dir
from thesislib.data.voc import SegInputTransform, VOCSegmentation
from thesislib.data.voc07 import VOC07DetectionInput, VOC07Input, VOC2007Classification, VOC2007Detection
from thesislib.eval.detection import DetectionConfig, finetune_detection, transfer_faster_rcnn
from thesislib.eval.segmentation_transfer import ImageMaskItems, SegmentationTransferConfig, finetune_segmentation
from thesislib.eval.transfer import TransferConfig, TransferNet, finetune_multilabel
from thesislib.nn.fcn import BackboneFCN
from thesislib.params import RunParams, param

__all__ = ["VOC_TASKS", "VocTransferParams", "check_voc_data", "run_voc_transfer", "voc07_classification",
           "voc07_detection", "voc12_segmentation"]

VOC_TASKS = ("voc07_cls", "voc07_det", "voc12_seg")
"""The VOC transfer tasks: VOC07 classification mAP, VOC07 detection mAP, VOC12 segmentation mIoU."""

Backbone = Callable[[], nn.Module]
"""Builds a fresh backbone: images (B, 3, H, W) -> conv map (B, C5, H5, W5)."""


@dataclass(frozen=True)
class VocTransferParams(RunParams):
    """The VOC transfer protocol's parameters (defaults: Jenni ch. 3-4's full-scale settings; Table 3.3 /
    Table 4.4). A chapter inherits them and declares ``transfer`` (its task names) and ``data_root``."""

    transfer_rescale: bool = param(True, help="Krähenbühl et al.'s data-dependent rescaling before fine-tuning "
                                   "(BN folded, new layers initialised from data, layers rescaled)")
    transfer_workers: int = param(4, help="data loader workers of the transfer fine-tuning", min=0)
    voc_resize: int = param(256, help="VOC images are resized to this square side before the random crops", min=8)
    voc_crop: int = param(227, help="side of the VOC07 classification crops (train: random, test: 10 random)", min=8)
    voc_test_crops: int = param(10, help="random crops averaged per VOC07 test image", min=1)
    voc_cls_iterations: int = param(80000, help="SGD steps of the VOC07 classification fine-tuning", min=1)
    voc_cls_batch_size: int = param(10, help="batch of the VOC07 classification fine-tuning", min=1)
    voc_cls_lr: float = param(1e-3, help="learning rate (cosine-decayed) of the VOC07 classification fine-tuning",
                              min=0.0)
    voc_det_iterations: int = param(150000, help="SGD steps of the VOC07 detection fine-tuning", min=1)
    voc_det_batch_size: int = param(2, help="images per step of the VOC07 detection fine-tuning", min=1)
    voc_det_lr: float = param(1e-3, help="learning rate (step-decayed x0.1 at 2/3) of the detection fine-tuning",
                              min=0.0)
    voc_det_scales: tuple[int, ...] = param((480, 576, 688, 864, 1200),
                                            help="shorter image sides of multi-scale detection training "
                                                 "(testing: voc_det_test_scale)")
    voc_det_test_scale: int = param(600, help="shorter image side at detection test time", min=32)
    voc_seg_iterations: int = param(100000, help="SGD steps of the VOC12 segmentation fine-tuning (thesis 100k)",
                                    min=1)
    voc_seg_batch_size: int = param(1, help="images per step of the segmentation fine-tuning (FCN: 1)", min=1)
    voc_seg_lr: float = param(1e-4, help="fixed learning rate of the segmentation fine-tuning (thesis 1e-4)",
                              min=0.0)
    voc_seg_train_split: Literal["train", "trainaug"] = param(
        "train", help="VOC12 segmentation training split: train (1,464, the FCN transfer protocol's) | trainaug "
                      "(10,582 with SBD)")
    voc_seg_size: int = param(320, help="side of the square segmentation training / test inputs", min=32)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not self.voc_det_scales or min(self.voc_det_scales) < 32:
            raise ConfigError(f"{name}: voc_det_scales {self.voc_det_scales} must name sides >= 32")
        if self.voc_crop > self.voc_resize:
            raise ConfigError(f"{name}: voc_crop {self.voc_crop} exceeds voc_resize {self.voc_resize}")


def _voc_root(params: VocTransferParams) -> Any:
    return dataset_dir("voc", data_root=getattr(params, "data_root", ""))


def _voc07_cls_sets(params: VocTransferParams) -> tuple[Dataset, Dataset]:
    """VOC2007 classification ``trainval`` and ``test`` (images resized to ``voc_resize``)."""
    root = _voc_root(params)
    item = VOC07Input(params.voc_resize, normalization="symmetric")
    return (VOC2007Classification("trainval", root=root, transform=item),
            VOC2007Classification("test", root=root, transform=item))


def _voc07_det_sets(params: VocTransferParams) -> tuple[Dataset, Dataset]:
    """VOC2007 detection ``trainval`` (flips, difficult boxes dropped) and ``test``."""
    root = _voc_root(params)
    return (VOC2007Detection("trainval", root=root, transform=VOC07DetectionInput(flip=True, keep_difficult=False)),
            VOC2007Detection("test", root=root, transform=VOC07DetectionInput()))


def _voc12_seg_sets(params: VocTransferParams) -> tuple[Dataset, Dataset]:
    """VOC2012 segmentation ``voc_seg_train_split`` (SBD for ``trainaug``, flips) and ``val`` (original size)."""
    root = _voc_root(params)
    size = (params.voc_seg_size, params.voc_seg_size)
    train = ImageMaskItems(VOCSegmentation(params.voc_seg_train_split, voc_root=root,
                                           sbd_root=dataset_dir("sbd", data_root=getattr(params, "data_root", "")),
                                           transform=SegInputTransform(size, "symmetric")), flip=True)
    val = ImageMaskItems(VOCSegmentation("val", voc_root=root,
                                         transform=SegInputTransform(size, "symmetric", resize_mask=False)))
    return train, val


VOC_OPENERS: dict[str, Callable[[VocTransferParams], tuple[Dataset, Dataset]]] = {
    "voc07_cls": _voc07_cls_sets, "voc07_det": _voc07_det_sets, "voc12_seg": _voc12_seg_sets}


def check_voc_data(params: VocTransferParams, tasks: Sequence[str]) -> None:
    """Open every data set the VOC ``tasks`` read (VOC2007 cls / det, VOC2012 + SBD seg) so that a missing or
    corrupt one raises before the pre-training, not after it. Raises the loaders' errors (naming
    ``$THESISLIB_DATA/<subdir>`` and the expected layout) or ``ValueError`` naming an unknown task."""
    for task in tasks:
        if task not in VOC_OPENERS:
            raise ValueError(f"unknown VOC transfer task {task!r}; known: {', '.join(VOC_TASKS)}")
        VOC_OPENERS[task](params)


def voc07_classification(params: VocTransferParams, backbone: Backbone, hidden: int, device: torch.device,
                         seed: int) -> dict[str, float]:
    """VOC07 ``trainval`` -> ``test`` classification mAP (%) of ``backbone()`` under the Krähenbühl framework
    (images resized to ``voc_resize``, random ``voc_crop`` crops, ``voc_test_crops`` random test crops, new
    fc6-8 with fc6 / fc7 ``hidden`` wide; :func:`thesislib.eval.finetune_multilabel`)."""
    train, test = _voc07_cls_sets(params)
    net = TransferNet(backbone(), 20, params.voc_crop, fc_dims=(hidden, hidden))
    cfg = TransferConfig(iterations=params.voc_cls_iterations, batch_size=params.voc_cls_batch_size,
                         lr=params.voc_cls_lr, crop=params.voc_crop, n_test_crops=params.voc_test_crops, seed=seed,
                         rescale=params.transfer_rescale, num_workers=params.transfer_workers)
    return {"voc07_cls_map": 100.0 * finetune_multilabel(net, train, test, device, cfg, run=params)["map"]}


def voc07_detection(params: VocTransferParams, backbone: Backbone, hidden: int, device: torch.device,
                    seed: int) -> dict[str, float]:
    """VOC07 ``trainval`` -> ``test`` detection mAP (%, 11-point) of ``backbone()`` in torchvision's Faster
    R-CNN (not the theses' Fast R-CNN; :mod:`thesislib.eval.detection`), fc6 / fc7 ``hidden`` wide."""
    train, test = _voc07_det_sets(params)
    cfg = DetectionConfig(scales=tuple(params.voc_det_scales), test_scale=params.voc_det_test_scale,
                          iterations=params.voc_det_iterations, batch_size=params.voc_det_batch_size,
                          lr=params.voc_det_lr, rescale=params.transfer_rescale, seed=seed,
                          num_workers=params.transfer_workers, representation=hidden)
    model = transfer_faster_rcnn(backbone(), cfg)
    return {"voc07_det_map": 100.0 * finetune_detection(model, train, test, device, cfg, run=params)["map"]}


def voc12_segmentation(params: VocTransferParams, backbone: Backbone, hidden: int, device: torch.device,
                       seed: int) -> dict[str, float]:
    """VOC12 ``voc_seg_train_split`` -> ``val`` mIoU (%) of ``backbone()`` under an FCN-32s-style head
    (:class:`thesislib.nn.fcn.BackboneFCN`, fc6 / fc7 ``hidden`` wide; :mod:`thesislib.eval.segmentation_transfer`)."""
    train, val = _voc12_seg_sets(params)
    cfg = SegmentationTransferConfig(iterations=params.voc_seg_iterations, batch_size=params.voc_seg_batch_size,
                                     lr=params.voc_seg_lr, size=params.voc_seg_size, rescale=params.transfer_rescale,
                                     seed=seed, num_workers=params.transfer_workers)
    net = BackboneFCN(backbone(), 21, hidden=(hidden, hidden))
    return {"voc12_seg_miou": 100.0 * finetune_segmentation(net, train, val, device, cfg, run=params)["miou"]}


VOC_RUNNERS = {"voc07_cls": voc07_classification, "voc07_det": voc07_detection, "voc12_seg": voc12_segmentation}


def run_voc_transfer(params: VocTransferParams, tasks: Sequence[str], backbone: Backbone, hidden: int,
                     device: torch.device, seed: int) -> dict[str, float]:
    """Every VOC task in ``tasks`` (others skipped: the caller runs its own protocols), each on a fresh
    ``backbone()``: ``{"voc07_cls_map": %, "voc07_det_map": %, "voc12_seg_miou": %}`` (requested keys only)."""
    out: dict[str, float] = {}
    for task in tasks:
        if task in VOC_RUNNERS:
            out.update(VOC_RUNNERS[task](params, backbone, hidden, device, seed))
    return out
