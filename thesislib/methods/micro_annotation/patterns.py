"""Step (i) of section 3.3: the pattern set A^y of every class, extracted through a CAM classifier.

For an image X and a region u of the CAM grid U (the cells of the last feature map), the
pattern phi_u(X) in R^K is the vector of non-negative (post-ReLU) activations of a fixed layer at
u, L2-normalised. The pattern set of class y is

    A^y = {phi_u(X) : u in D^y(X), X in the training images labelled y},
    D^y(X) = {u : S^y_u(X) > 0.2 max_u S^y_u(X)}      (S^y = the CAM of class y),

i.e. the regions that the weakly supervised localizer assigns to y. The thesis quantifies over
"all training images"; the regions "with predicted label y" of an image are only meaningful when
y is one of its labels, so only images labelled y contribute (study note 2.2, step 1).

Two layers can serve as phi (``layer``): ``"features"``, the maps that feed the global average
pooling (the CAM's own features), or ``"trunk"``, the backbone output before the CAM head's
extra convolution (conv5_3 for :func:`~thesislib.nn.cam_vgg16`, the layer the thesis uses on
ILSVRC). Both have the CAM's resolution, so the regions of patterns and of scores coincide.
A region whose feature vector is all zero has no direction and is left out of A^y.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.methods.micro_annotation.regions import ThresholdRule, threshold_regions

PatternLayer = Literal["features", "trunk"]


@dataclass(frozen=True)
class Patterns:
    """The pattern set of one class.

    ``vectors`` (N, K) float32, unit-norm, non-negative; ``image`` (N,) int64, the index of the
    source image in the order the images were fed; ``cell`` (N,) int64, the region's flat index
    row * w + column in the (h, w) ``grid``.
    """

    vectors: np.ndarray
    image: np.ndarray
    cell: np.ndarray
    grid: tuple[int, int]

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def forward_maps(model: nn.Module, images: Tensor, layer: PatternLayer = "features") -> tuple[Tensor, Tensor, Tensor]:
    """One pass of a :class:`~thesislib.nn.CAMClassifier`: logits (B, C), CAMs (B, C, h, w) and
    the raw pattern layer (B, K, h, w) (``"features"``: the GAP input; ``"trunk"``: the backbone
    output)."""
    trunk = model.trunk_features(images)
    feats = model.extra(trunk) if getattr(model, "extra", None) is not None else trunk
    cams = model.cams_from_features(feats)
    logits = model.logits_from_features(feats)
    if layer == "features":
        raw = feats
    elif layer == "trunk":
        raw = trunk
    else:
        raise ValueError(f"layer must be 'features' or 'trunk', got {layer!r}")
    if raw.shape[-2:] != cams.shape[-2:]:
        raise ValueError(f"the pattern layer has resolution {tuple(raw.shape[-2:])} but the CAMs "
                         f"{tuple(cams.shape[-2:])}: patterns and scores must share the regions U")
    return logits, cams, raw


def normalize_patterns(features: Tensor) -> Tensor:
    """phi_u = f_u / ||f_u||_2 over the channel axis of (B, K, h, w); zero vectors stay zero.
    Raises if the features are negative anywhere (patterns must come from a post-ReLU layer)."""
    if bool((features < 0).any()):
        raise ValueError("pattern features must be non-negative (take them after a ReLU)")
    return F.normalize(features.float(), p=2.0, dim=1, eps=1e-12)


def _as_multi_hot(labels: Tensor, num_classes: int) -> Tensor:
    if labels.ndim == 1:
        return F.one_hot(labels.long(), num_classes).bool()
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        return labels > 0.5
    raise ValueError(f"labels must be (B,) class indices or (B, {num_classes}) multi-hot, got {tuple(labels.shape)}")


@torch.no_grad()
def extract_patterns(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device, *,
                     tau: float = 0.2, rule: ThresholdRule = "max", layer: PatternLayer = "features",
                     classes: Iterable[int] | None = None) -> dict[int, Patterns]:
    """A^y for every class y (or those in ``classes``) over ``batches`` of (images (B, 3, H, W),
    labels (B,) or (B, C) multi-hot) -> {y: :class:`Patterns`}.

    The model runs in eval mode without gradients (its mode is restored); D^y is computed from
    the CAMs with :func:`~thesislib.methods.micro_annotation.regions.threshold_regions`. Image
    indices count across batches in order. A class without any pattern is absent from the result.
    """
    was_training = model.training
    model.eval()
    wanted = None if classes is None else torch.tensor(sorted(set(classes)), dtype=torch.long)
    parts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    offset = 0
    grid: tuple[int, int] | None = None
    try:
        for images, labels in batches:
            images = images.to(device, non_blocking=True)
            _, cams, raw = forward_maps(model, images, layer)
            num_classes, (h, w) = cams.shape[1], cams.shape[-2:]
            grid = (int(h), int(w))
            present = _as_multi_hot(labels.to(device), num_classes)
            if wanted is not None:
                keep = torch.zeros(num_classes, dtype=torch.bool, device=device)
                keep[wanted.to(device)] = True
                present = present & keep
            phi = normalize_patterns(raw)
            nonzero = phi.abs().sum(dim=1) > 0                                    # (B, h, w)
            regions = threshold_regions(cams.float(), tau, rule) & present[:, :, None, None] & nonzero[:, None]
            b, c, i, j = regions.nonzero(as_tuple=True)
            vectors = phi.permute(0, 2, 3, 1)[b, i, j]
            parts.append((c.cpu(), (b + offset).cpu(), (i * w + j).cpu(), vectors.cpu()))
            offset += images.shape[0]
    finally:
        model.train(was_training)
    if not parts or grid is None:
        return {}
    cls = torch.cat([p[0] for p in parts]).numpy()
    image = torch.cat([p[1] for p in parts]).numpy().astype(np.int64)
    cell = torch.cat([p[2] for p in parts]).numpy().astype(np.int64)
    vectors = torch.cat([p[3] for p in parts]).numpy().astype(np.float32)
    order = np.argsort(cls, kind="stable")
    cls, image, cell, vectors = cls[order], image[order], cell[order], vectors[order]
    bounds = np.flatnonzero(np.diff(cls)) + 1
    out: dict[int, Patterns] = {}
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(cls)]])):
        out[int(cls[lo])] = Patterns(vectors[lo:hi], image[lo:hi], cell[lo:hi], grid)
    return out


def region_fraction(masks: Tensor, grid: tuple[int, int]) -> Tensor:
    """Fraction of each region's pixels that are True in ``masks`` (B, H, W) -> (B, h, w)
    (adaptive average pooling: exact when H and W are multiples of h and w)."""
    return F.adaptive_avg_pool2d(masks[:, None].float(), grid)[:, 0]


def region_centres_in_boxes(boxes: list[np.ndarray], image_size: tuple[int, int],
                            grid: tuple[int, int]) -> np.ndarray:
    """For images of size (H, W) cut into a (h, w) grid: (B, h, w) bool, True where the region's
    centre lies inside one of the image's boxes ``boxes[i]`` (n_i, 4) (pixel-edge coordinates)."""
    (height, width), (h, w) = image_size, grid
    cy = (np.arange(h) + 0.5) * height / h
    cx = (np.arange(w) + 0.5) * width / w
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for n, bxs in enumerate(boxes):
        for x0, y0, x1, y1 in np.asarray(bxs, dtype=np.float64).reshape(-1, 4):
            out[n] |= ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    return out


ON_OBJECT_FRACTION = 0.5
"""A region is on the object when at least this fraction of its pixels is (the mask oracle)."""


def mask_evidence(patterns: Patterns, object_masks: Tensor) -> np.ndarray:
    """Oracle input from masks: 1.0 where the pattern's region has at least
    :data:`ON_OBJECT_FRACTION` of its pixels on the object, else 0.0, (N,). ``object_masks``
    (n_images, H, W) bool, the class's object in every image the patterns were taken from
    (indexed by ``patterns.image``)."""
    frac = region_fraction(object_masks, patterns.grid).flatten(1).numpy()
    return (frac[patterns.image, patterns.cell] >= ON_OBJECT_FRACTION).astype(np.float64)


def box_evidence(patterns: Patterns, boxes: list[np.ndarray], image_size: tuple[int, int]) -> np.ndarray | None:
    """Oracle input from boxes: 1.0 where the pattern's region has its centre inside a box of the
    class, 0.0 outside, NaN for images without boxes, (N,); None when no image has a box.
    ``boxes[i]`` (n_i, 4) in the frame of the (resized) image ``i`` of size ``image_size``."""
    known = np.array([len(b) > 0 for b in boxes])
    if not known.any():
        return None
    inside = region_centres_in_boxes(boxes, image_size, patterns.grid).reshape(len(boxes), -1)
    return np.where(known[patterns.image], inside[patterns.image, patterns.cell], np.nan)
