"""Weak localization: SEC's seeds from a classifier (thesis section 2.3.1, Fig. 2.2).

* Foreground (Zhou et al.'s class activation maps): for every *present* class c, the locations
  where ``CAM_c > tau * max CAM_c`` (tau = 0.2 in the released localization notebook);
  :func:`foreground_cues`.
* Background (Simonyan et al.'s gradient saliency): the 10% of locations with the lowest
  saliency ``max_channel |dS/dA|``, S the summed class scores and A the input or a hidden layer
  (the released notebook: conv4_1, the sum over *all* class scores, then a 3x3 median filter);
  :func:`saliency_map`, :func:`background_cues`.
* :func:`combine_cues` resolves conflicts and returns a cue *label map* (B, h, w): 0 = background,
  c = foreground class c, :data:`~thesislib.methods.sec.losses.NO_CUE` (255) = unseeded.
  A location claimed by two or more classes (two foreground classes, or a foreground class and
  the background) is dropped. The thesis and the released code do not say what they do; the
  shipped cue file has no location with two labels, and dropping keeps only unambiguous seeds
  without favouring either source.
* :func:`cue_statistics`: coverage and precision against ground-truth masks.

Everything is at the mask resolution (41 x 41 for DeepLab at 321 x 321, 16 x 16 for the smoke
FCN at 32 x 32) and vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.data.transforms import resize_mask
from thesislib.methods.sec.losses import NO_CUE
from thesislib.nn.cam import class_sum, input_gradient_saliency


def foreground_cues(cams: Tensor, labels: Tensor, tau: float = 0.2) -> Tensor:
    """(B, C', h, w) class activation maps, (B, C') present classes -> bool (B, C', h, w):
    ``cam_c > tau * max_u cam_c`` for present classes with a positive maximum."""
    if cams.ndim != 4 or labels.shape != cams.shape[:2]:
        raise ValueError(f"expected cams (B, C, h, w) and labels (B, C), got {tuple(cams.shape)}, "
                         f"{tuple(labels.shape)}")
    peak = cams.flatten(2).amax(dim=-1)  # (B, C')
    keep = (labels > 0.5) & (peak > 0)
    return (cams > tau * peak[..., None, None]) & keep[..., None, None]


def background_cues(saliency: Tensor, fraction: float = 0.1) -> Tensor:
    """(B, h, w) saliency -> bool (B, h, w): the ``int(fraction * n)`` least salient locations
    (strictly below the next value in sorted order, as the released notebook; ties at the
    threshold give fewer)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    flat = saliency.flatten(1)
    k = int(fraction * flat.shape[1])
    threshold = flat.kthvalue(k + 1, dim=1).values
    return (flat < threshold[:, None]).view_as(saliency)


def median_filter3(x: Tensor) -> Tensor:
    """3x3 median filter of (B, h, w) maps; borders repeat the edge (scipy's ``reflect`` mode
    for a 3x3 window)."""
    padded = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")
    patches = F.unfold(padded, kernel_size=3)  # (B, 9, h*w)
    return patches.median(dim=1).values.view_as(x)


def saliency_map(model: nn.Module, images: Tensor, labels: Tensor | None = None, *,
                 layer: str | nn.Module | None = None, classes: Literal["all", "present"] = "all",
                 size: Sequence[int] | None = None, median: bool = True) -> Tensor:
    """Gradient saliency ``max_channel |dS/dA|`` (Simonyan et al. 2014), (B, h, w), through the
    shared :func:`~thesislib.nn.cam.input_gradient_saliency`.

    Args:
        model: a classifier, images (B, 3, H, W) -> class scores (B, C').
        images: network inputs; labels: (B, C') present classes (needed for ``"present"``).
        layer: ``None`` / ``"input"`` for the gradient w.r.t. the input, or a module (or its
            name in ``model.named_modules()``) whose output is A (SEC: conv4_1).
        classes: S sums ``"all"`` class scores (released notebook) or the ``"present"`` ones.
        size: output (h, w); the map is area-averaged to it when it differs.
        median: apply a 3x3 median filter after resizing (released notebook).

    The model runs in eval mode (restored afterwards); parameter gradients are untouched.
    """
    if classes == "present":
        if labels is None:
            raise ValueError("classes='present' needs labels")
        scores_fn = class_sum(labels)
    elif classes == "all":
        def scores_fn(logits: Tensor) -> Tensor:
            return logits.sum(dim=1)
    else:
        raise ValueError(f"classes must be 'all' or 'present', got {classes!r}")
    sal = input_gradient_saliency(model, images, scores_fn, layer=layer).float()
    if size is not None and tuple(sal.shape[-2:]) != tuple(size):
        sal = F.adaptive_avg_pool2d(sal[:, None], tuple(size))[:, 0]
    return median_filter3(sal) if median else sal


def combine_cues(fg: Tensor, bg: Tensor) -> Tensor:
    """Foreground cues bool (B, C', h, w) + background cues bool (B, h, w) -> uint8 cue label map
    (B, h, w): 0 = background, c = class c (1-based), 255 = unseeded or claimed more than once."""
    claims = fg.sum(dim=1) + bg.to(torch.int64)
    label = torch.where(bg, torch.zeros_like(claims), fg.to(torch.int64).argmax(dim=1) + 1)
    return torch.where(claims == 1, label, torch.full_like(label, NO_CUE)).to(torch.uint8)


def replace_foreground(cues: Tensor, foreground: Tensor) -> Tensor:
    """Swap the foreground part of cue label maps for another source's, keeping the background.

    ``cues`` uint8 (B, h, w) (:func:`combine_cues`: 0 = background, c = class c, 255 = none);
    ``foreground`` integer (B, h, w): 0 = no foreground cue, c = class c (e.g. the micro-annotated
    cues of thesis section 3.4). The result keeps ``cues``' background locations, drops its
    foreground ones, and seeds class c where ``foreground`` says c; a location that both keep as
    background and ``foreground`` claims is dropped (255), as :func:`combine_cues` drops conflicts.
    """
    if cues.shape != foreground.shape:
        raise ValueError(f"cue maps {tuple(cues.shape)} and foreground maps {tuple(foreground.shape)} differ")
    fg = foreground.to(torch.int64)
    background = cues == 0
    out = torch.full_like(fg, NO_CUE)
    out = torch.where(background & (fg == 0), torch.zeros_like(fg), out)
    out = torch.where(~background & (fg > 0), fg, out)
    return out.to(torch.uint8)


def conflicts(fg: Tensor, bg: Tensor) -> Tensor:
    """Number of locations per image claimed more than once, (B,) int64."""
    return ((fg.sum(dim=1) + bg.to(torch.int64)) > 1).flatten(1).sum(dim=1)


def downsample_masks(masks: Tensor, size: Sequence[int]) -> Tensor:
    """Ground-truth masks (B, H, W) -> (B, h, w) by nearest neighbour (255 kept)."""
    return resize_mask(masks, tuple(size))


def cue_statistics(cues: Tensor, masks: Tensor | None = None, ignore_index: int = 255) -> dict[str, float]:
    """Coverage and precision of cue label maps (B, h, w) (:func:`combine_cues`).

    ``coverage`` / ``fg_coverage`` / ``bg_coverage``: fraction of all locations seeded (with any
    label / a foreground class / background). With ground-truth ``masks`` at the same resolution
    (:func:`downsample_masks`): ``precision`` (seeded locations whose true label is the cue's),
    ``fg_precision``, ``bg_precision``, and ``fg_recall``: the fraction of true foreground
    locations that carry a correct foreground cue. Locations whose truth is ``ignore_index`` are
    left out of the precisions. Percentages are not used: values are fractions in [0, 1].
    """
    cues = cues.long()
    seeded = cues != NO_CUE
    fg = seeded & (cues > 0)
    bg = cues == 0
    total = cues.numel()
    out = {"coverage": seeded.sum().item() / total, "fg_coverage": fg.sum().item() / total,
           "bg_coverage": bg.sum().item() / total}
    if masks is not None:
        masks = masks.long().to(cues.device)
        if masks.shape != cues.shape:
            raise ValueError(f"masks {tuple(masks.shape)} must match cues {tuple(cues.shape)}")
        valid = masks != ignore_index
        correct = (cues == masks) & valid

        def ratio(num: Tensor, den: Tensor) -> float:
            d = den.sum().item()
            return num.sum().item() / d if d else float("nan")

        out["precision"] = ratio(correct & seeded, seeded & valid)
        out["fg_precision"] = ratio(correct & fg, fg & valid)
        out["bg_precision"] = ratio(correct & bg, bg & valid)
        out["fg_recall"] = ratio(correct & fg, (masks > 0) & valid)
    return out
