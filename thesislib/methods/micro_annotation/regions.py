"""Score maps to predicted regions and boxes: the thresholding procedure D^y and GAP's box rule.

Thesis section 3.4 (after Zhou et al.'s GAP): the thresholding procedure keeps the regions whose
score exceeds 20% of the map's maximum,

    D^y(X) = {u : S^y_u(X) > tau * max_u S^y_u(X)},   tau = 0.2,

and the predicted box "covers the largest connected component of D^y(X)". Micro-annotation
(step iv) sets S^y_u = -inf on regions whose nearest cluster is a distractor, so every function
here treats -inf as "not a candidate": the maximum is taken over the finite scores and a -inf
region is never selected. Two details the text leaves open, fixed here:

* ``rule="max"`` is the thesis's formula; when every finite score is <= 0 it would select
  nothing, so the regions equal to the maximum are kept (a map always yields a region unless
  every score is -inf). ``rule="minmax"`` is Zhou et al.'s released code, which rescales the map
  to [0, 1] before thresholding: S > min + tau (max - min).
* Connected components use 8-connectivity (diagonal neighbours join), as contour tracing does in
  the GAP code. Boxes are in continuous pixel-edge coordinates ``(x0, y0, x1, y1)``: pixel
  column x spans [x, x + 1), so the box of pixels 3..5 is (3, ., 6, .). IoU in these
  coordinates equals the ILSVRC devkit's inclusive "+1" IoU for integer boxes and is unchanged
  when both boxes are rescaled to another image size.

Shapes: score maps (B, h, w) float (any device), region masks (B, h, w) bool, boxes (B, 4)
float64 numpy with NaN rows for an empty mask.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

ThresholdRule = Literal["max", "minmax"]
_EIGHT = np.ones((3, 3), dtype=bool)


def threshold_regions(scores: Tensor, tau: float = 0.2, rule: ThresholdRule = "max") -> Tensor:
    """D^y(X) for score maps (..., h, w) -> bool (..., h, w); -inf scores are never selected."""
    if rule not in ("max", "minmax"):
        raise ValueError(f"rule must be 'max' or 'minmax', got {rule!r}")
    finite = torch.isfinite(scores)
    low = torch.finfo(scores.dtype).min
    high = torch.finfo(scores.dtype).max
    top = scores.masked_fill(~finite, low).amax(dim=(-2, -1), keepdim=True)
    if rule == "max":
        level = tau * top
    else:
        bottom = scores.masked_fill(~finite, high).amin(dim=(-2, -1), keepdim=True)
        level = bottom + tau * (top - bottom)
    return ((scores > level) | (scores >= top)) & finite


def upsample_scores(scores: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize score maps (B, h, w) to ``size`` = (H, W); -inf regions stay -inf.

    ``"bilinear"`` (CAM's usual upsampling, ``align_corners=False``) interpolates the finite
    scores (suppressed regions filled with the map's smallest finite score first) and then sets
    to -inf every pixel whose nearest region was suppressed; ``"nearest"`` copies each region's
    score to its pixels, i.e. stays exactly at the region level of the thesis's formalism.
    """
    finite = torch.isfinite(scores)
    if mode == "nearest":
        return F.interpolate(scores[:, None], size=size, mode="nearest")[:, 0]
    if mode != "bilinear":
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    high = torch.finfo(scores.dtype).max
    floor = scores.masked_fill(~finite, high).amin(dim=(-2, -1), keepdim=True)
    floor = torch.where(torch.isfinite(floor) & (floor < high), floor, torch.zeros_like(floor))
    filled = torch.where(finite, scores, floor.expand_as(scores))
    up = F.interpolate(filled[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    keep = F.interpolate(finite[:, None].to(scores.dtype), size=size, mode="nearest")[:, 0] > 0.5
    return up.masked_fill(~keep, float("-inf"))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (H, W) (ties: the first in scan order)."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(sizes.argmax()) + 1


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Bounding box (x0, y0, x1, y1) in pixel-edge coordinates of all True pixels; NaN if none."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return np.full(4, np.nan)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def component_boxes(mask: np.ndarray) -> np.ndarray:
    """One box per 8-connected component of ``mask`` (H, W): (n, 4), e.g. GT boxes from a mask."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    slices = ndimage.find_objects(labels)
    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices if s is not None]
    return np.asarray(boxes, dtype=np.float64).reshape(count, 4)


def largest_component_boxes(regions: Tensor | np.ndarray) -> np.ndarray:
    """GAP's box rule for a batch: (B, H, W) bool -> (B, 4), the box of each largest component
    (NaN rows where the mask is empty)."""
    masks = regions.detach().cpu().numpy() if isinstance(regions, Tensor) else np.asarray(regions)
    if masks.ndim != 3:
        raise ValueError(f"expected (B, H, W) masks, got shape {masks.shape}")
    return np.stack([mask_box(largest_component(m)) for m in masks]) if len(masks) else np.zeros((0, 4))


def scale_boxes(boxes: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Rescale (..., 4) pixel-edge boxes from an (H, W) frame to another (H', W') frame."""
    (h0, w0), (h1, w1) = from_size, to_size
    factor = np.array([w1 / w0, h1 / h0, w1 / w0, h1 / h0])
    return np.asarray(boxes, dtype=np.float64) * factor


def localize(scores: Tensor, image_size: tuple[int, int], tau: float = 0.2, rule: ThresholdRule = "max",
             upsample: str = "bilinear") -> tuple[Tensor, np.ndarray]:
    """Score maps (B, h, w) -> (regions (B, H, W) bool at image resolution, boxes (B, 4)).

    The map is brought to the image size first (:func:`upsample_scores`), then thresholded
    (:func:`threshold_regions`) and boxed (:func:`largest_component_boxes`).
    """
    regions = threshold_regions(upsample_scores(scores, image_size, upsample), tau, rule)
    return regions, largest_component_boxes(regions)
