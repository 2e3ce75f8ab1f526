"""SEC's localization networks and the cue computation (thesis section 2.3.1, Fig. 2.2).

Networks (image-level multi-label classifiers whose class activation maps have the mask's
resolution):

* :func:`sec_cam_vgg16` — the released foreground localization net
  (``weak-localization/foreground/deploy.prototxt``): VGG16 conv1_1 .. conv5_3 with 2x2/stride-2
  max pools after conv1, conv2 and conv3 only (pool4 and pool5 removed: stride 8), ``fc6_CAM``
  (3x3, 1024, ReLU, dropout) and ``fc7_CAM`` (3x3, 1024, *no* ReLU, dropout), global average
  pooling and a bias-free linear layer ``scores``. A 321 x 321 input gives 41 x 41 CAMs, the
  size of DeepLab-LargeFOV's output. The conv layers can start from a local torchvision VGG16
  file.
* :func:`thesislib.nn.cam.cam_smallnet` — the smoke-scale stand-in (stride 2: 16 x 16 CAMs for
  32 x 32 scenes, the size of the smoke FCN's output).

The released code localises the background with a *second* VGG16 classifier (gradient w.r.t. its
conv4_1). Here one network serves both purposes: background saliency is the gradient w.r.t.
the localizer's own conv4_1 (``saliency_layer="trunk.conv4_1"``), or w.r.t. the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from thesislib.methods.sec.cues import background_cues, combine_cues, conflicts, foreground_cues, saliency_map
from thesislib.nn.cam import CAMClassifier, cam_smallnet
from thesislib.nn.vgg import check_vgg16_file, he_init_, load_vgg16_weights, vgg16_layers


def sec_cam_vgg16(num_classes: int = 20, weights_path: str | Path | None = None, dropout: float = 0.5) -> CAMClassifier:
    """The released foreground localization net (module doc); CAMs (B, C, 41, 41) at 321 x 321.

    ``weights_path``: a local torchvision ``vgg16`` state dict for conv1_1 .. conv5_3 (fc6_CAM,
    fc7_CAM and the classifier start at random: N(0, 0.01^2) as Caffe's gaussian fillers).
    """
    if weights_path is not None:
        check_vgg16_file(weights_path)                            # fail before building
    layers = vgg16_layers(lambda block: nn.MaxPool2d(2, stride=2, ceil_mode=True) if block <= 3 else None)
    layers["fc6_CAM"] = nn.Conv2d(512, 1024, 3, padding=1)
    layers["relu6"] = nn.ReLU(inplace=True)
    layers["drop6"] = nn.Dropout(dropout)
    layers["fc7_CAM"] = nn.Conv2d(1024, 1024, 3, padding=1)
    layers["drop7"] = nn.Dropout(dropout)
    trunk = nn.Sequential(layers)
    he_init_(trunk)
    for name in ("fc6_CAM", "fc7_CAM"):
        nn.init.normal_(layers[name].weight, std=0.01)
    model = CAMClassifier(trunk, 1024, num_classes)
    model.fc = nn.Linear(1024, num_classes, bias=False)
    nn.init.normal_(model.fc.weight, std=0.01)
    if weights_path is not None:
        new = load_vgg16_weights(model, weights_path)
        expected = sorted(f"trunk.{n}.{k}" for n in ("fc6_CAM", "fc7_CAM") for k in ("weight", "bias")) + ["fc.weight"]
        if new != sorted(expected):
            raise RuntimeError(f"VGG16 weights do not match the localization net: left new {new}")
    return model


def build_localizer(kind: Literal["small", "vgg16"], num_classes: int, weights_path: str | None = None,
                    width: int = 16) -> CAMClassifier:
    """``"small"``: :func:`~thesislib.nn.cam.cam_smallnet` (smoke); ``"vgg16"``: :func:`sec_cam_vgg16`."""
    if kind == "small":
        return cam_smallnet(num_classes, width=width)
    if kind == "vgg16":
        return sec_cam_vgg16(num_classes, weights_path or None)
    raise ValueError(f"localizer must be 'small' or 'vgg16', got {kind!r}")


@dataclass(frozen=True)
class CueConfig:
    """Weak-localization thresholds: ``tau`` (foreground: CAM > tau * max), ``bg_fraction``
    (background: the least salient fraction), and the saliency variant (layer, classes summed,
    median filter)."""

    tau: float = 0.2
    bg_fraction: float = 0.1
    saliency_layer: str = "input"
    saliency_classes: Literal["all", "present"] = "all"
    saliency_median: bool = True


@dataclass(frozen=True, eq=False)
class CueMaps:
    """Cue label maps (N, h, w) uint8 for the training items in order (255 = no cue), plus the
    per-image number of conflicting locations that were dropped."""

    cues: Tensor
    conflicts: Tensor

    def __len__(self) -> int:
        return int(self.cues.shape[0])


@torch.no_grad()
def _cams(model: CAMClassifier, images: Tensor) -> Tensor:
    return model.cams(images).float()


def compute_cues(localizer: CAMClassifier, train_set: Dataset, mask_size: tuple[int, int], config: CueConfig,
                 device: torch.device, batch_size: int = 64,
                 on_batch: Callable[[int, dict[str, Tensor]], None] | None = None) -> CueMaps:
    """Seeds for every item of ``train_set`` (in order) at ``mask_size``.

    Foreground: CAMs resized to the mask (bilinear, when the localizer's resolution differs)
    thresholded at ``tau * max`` for the present classes; background: the ``bg_fraction`` least
    salient locations; conflicts dropped (:func:`~thesislib.methods.sec.cues.combine_cues`).
    ``on_batch(start, parts)`` receives the intermediate maps (``cams``, ``saliency``, ``fg``,
    ``bg``) of each batch, for figures.
    """
    localizer = localizer.to(device)
    was_training = localizer.training
    localizer.eval()
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=False)
    cue_parts, conflict_parts = [], []
    start = 0
    try:
        for batch in loader:
            images = batch["image"].to(device)
            labels = batch["labels"].to(device)
            cams = _cams(localizer, images)
            if tuple(cams.shape[-2:]) != tuple(mask_size):
                cams = F.interpolate(cams, size=tuple(mask_size), mode="bilinear", align_corners=True)
            sal = saliency_map(localizer, images, labels, layer=config.saliency_layer,
                               classes=config.saliency_classes, size=mask_size, median=config.saliency_median)
            fg = foreground_cues(cams, labels, config.tau)
            bg = background_cues(sal, config.bg_fraction)
            cue_parts.append(combine_cues(fg, bg).cpu())
            conflict_parts.append(conflicts(fg, bg).cpu())
            if on_batch is not None:
                on_batch(start, {"cams": cams, "saliency": sal, "fg": fg, "bg": bg})
            start += images.shape[0]
    finally:
        localizer.train(was_training)
    return CueMaps(torch.cat(cue_parts), torch.cat(conflict_parts))
