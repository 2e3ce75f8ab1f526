"""The three terms of SEC's loss (Kolesnikov thesis, chapter 2, Eqs. 2.2-2.5).

Notation: a segmentation network gives class scores (logits) of shape (B, K, h, w) for K labels,
label 0 = background (``c_bg``) and labels 1..K-1 the foreground classes C'; ``f = softmax`` over
K is the probability map f_{u,c}, n = h * w locations. An image's weak annotation is the set T of
present foreground classes, a multi-hot ``labels`` tensor (B, K-1). Cues (the seeds S_c) are a
one-hot tensor (B, K, h, w), or a label map (B, h, w) with :data:`NO_CUE` where nothing is seeded.

* :func:`sec_probabilities` — softmax, optionally floored at ``1e-4`` and renormalised (the
  released code's ``SoftmaxLayer``, ``min_prob``); every loss below reads these probabilities.
* :func:`seeding_loss` — Eq. 2.2.
* :func:`gwrp` — global weighted rank pooling, Eq. 2.3; d = 0 is GMP (0^0 = 1), d = 1 is GAP.
* :func:`expansion_loss` — Eq. 2.4 with the decays d+, d-, d_bg; :func:`decay_for_mass` solves
  the thesis's rule of thumb ("the top p of the scores carry half of the aggregated score") for
  any mask size, :func:`expansion_decays` gives (d+, d_bg) for a mask of n locations.
* :func:`constrain_targets` / :func:`constrain_loss` — Eq. 2.5: the dense-CRF output Q and the
  mean KL(Q || f).

The module :mod:`thesislib.methods.sec.objective` combines them into :class:`SECLoss`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.crf import DenseCRFParams, dense_crf

NO_CUE = 255
"""Value of a cue label map where no class is seeded."""

_LOG_EPS = 1e-12  # guards log(0) when the probability floor is switched off


# ---------------------------------------------------------------------------------------------
# probabilities and cues
# ---------------------------------------------------------------------------------------------

def sec_probabilities(logits: Tensor, floor: float = 1e-4) -> Tensor:
    """f = softmax over the label axis of (B, K, h, w) logits, in float32 (float64 stays float64).

    With ``floor > 0`` the released code's variant: ``(softmax + floor) / sum`` (every
    probability at least ``floor / (1 + K floor)``), so that ``log f`` and ``log(1 - G)`` stay
    finite. ``floor = 0`` gives the plain softmax of the thesis.
    """
    if floor < 0:
        raise ValueError(f"floor must be >= 0, got {floor}")
    probs = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=1)
    if floor > 0:
        probs = probs + floor
        probs = probs / probs.sum(dim=1, keepdim=True)
    return probs


def cue_onehot(cues: Tensor, num_labels: int) -> Tensor:
    """(B, h, w) integer cue label map (:data:`NO_CUE` = unseeded) -> bool (B, K, h, w) sets S_c.

    A one-hot (B, K, h, w) input is returned as bool unchanged.
    """
    if cues.ndim == 4:
        if cues.shape[1] != num_labels:
            raise ValueError(f"one-hot cues have {cues.shape[1]} channels, expected {num_labels}")
        return cues.bool()
    if cues.ndim != 3 or cues.is_floating_point():
        raise ValueError(f"cues must be an integer (B, h, w) label map or (B, K, h, w) one-hot, got "
                         f"{cues.dtype} {tuple(cues.shape)}")
    cues = cues.long()
    seeded = cues != NO_CUE
    onehot = F.one_hot(torch.where(seeded, cues, 0).clamp(0, num_labels - 1), num_labels)
    return (onehot.permute(0, 3, 1, 2) & seeded[:, None]).bool()


# ---------------------------------------------------------------------------------------------
# Eq. 2.2: seeding loss
# ---------------------------------------------------------------------------------------------

def seeding_loss(probs: Tensor, cues: Tensor, *, include_background: bool = True,
                 normalization: Literal["image", "batch"] = "image") -> Tensor:
    """Seeding loss, Eq. 2.2: ``-1/sum_c |S_c| * sum_c sum_{u in S_c} log f_{u,c}``.

    Args:
        probs: (B, K, h, w) probabilities f (label 0 = background).
        cues: one-hot (B, K, h, w) seed sets S_c, or a (B, h, w) cue label map.
        include_background: sum over the background channel too. Eq. 2.2 writes the sum over
            c in T (foreground only), but the thesis seeds the background from saliency and the
            released code sums over all 21 cue channels; True (default) follows the code. The
            foreground channels hold cues of present classes only, so restricting them to T
            changes nothing.
        normalization: ``"image"`` (default, the released code): each image's sum is divided by
            its own number of seeds and the result averaged over the batch; an image without
            seeds contributes 0 (the code would divide by zero). ``"batch"``: one division by the
            number of seeds in the whole batch (images weighted by their seed counts).

    Returns:
        0-dim loss.
    """
    mask = cue_onehot(cues, probs.shape[1])
    if not include_background:
        mask = mask.clone()
        mask[:, 0] = False
    log_f = torch.log(probs.clamp_min(_LOG_EPS))
    picked = torch.where(mask, log_f, torch.zeros_like(log_f)).sum(dim=(1, 2, 3))  # (B,)
    counts = mask.sum(dim=(1, 2, 3)).to(probs.dtype)
    if normalization == "image":
        return -(picked / counts.clamp_min(1.0)).mean()
    if normalization == "batch":
        return -picked.sum() / counts.sum().clamp_min(1.0)
    raise ValueError(f"normalization must be 'image' or 'batch', got {normalization!r}")


# ---------------------------------------------------------------------------------------------
# Eq. 2.3: global weighted rank pooling
# ---------------------------------------------------------------------------------------------

def gwrp(scores: Tensor, decay: float | Tensor) -> Tensor:
    """Global weighted rank pooling, Eq. 2.3: ``G_c = sum_j d^(j-1) f_{i_j,c} / sum_j d^(j-1)``
    with i_1, i_2, ... the locations sorted by decreasing score.

    Args:
        scores: (B, C, h, w) or (B, C, n) score maps.
        decay: d in [0, 1], a float (checked) or a tensor broadcastable to (B, C) (one decay per
            image and class; not checked, to avoid a device sync). d = 0 gives global max pooling
            (0^0 = 1: only the top location has weight), d = 1 global average pooling.

    Returns:
        (B, C) pooled scores. Vectorised: one sort along the locations, no loop.
    """
    flat = scores.flatten(2)
    n = flat.shape[-1]
    if not isinstance(decay, Tensor) and decay in (0.0, 1.0):  # the two limits need no sort
        return flat.amax(dim=-1) if decay == 0.0 else flat.mean(dim=-1)
    ranked = flat.sort(dim=-1, descending=True).values
    j = torch.arange(n, dtype=torch.float64, device=flat.device)
    if isinstance(decay, Tensor):  # no range check here: it would synchronise with the device
        weights = torch.pow(decay.to(device=flat.device, dtype=torch.float64)[..., None], j)
    else:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"GWRP decays must lie in [0, 1], got {decay}")
        weights = torch.pow(float(decay), j)  # torch.pow(0, 0) == 1
    weights = (weights / weights.sum(dim=-1, keepdim=True)).to(flat.dtype)
    return (ranked * weights).sum(dim=-1)


def decay_for_mass(n: int, top_fraction: float, mass: float = 0.5) -> float:
    """The decay d for which the top ``top_fraction`` of n ranked scores carries ``mass`` of the
    GWRP weight: solves ``(1 - d^(p n)) / (1 - d^n) = mass`` (thesis section 2.4.1, "decay
    parameters"; p n need not be an integer).

    The left side rises from p (d -> 1) to 1 (d -> 0), so a solution exists iff
    ``top_fraction < mass < 1``. For 41 x 41 masks: p = 0.1 gives 0.99589 (the thesis's
    d+ = 0.996), p = 0.3 gives 0.99893 (d_bg = 0.999).
    """
    if n < 2:
        raise ValueError(f"need at least 2 locations, got n = {n}")
    if not 0.0 < top_fraction < mass < 1.0:
        raise ValueError(f"need 0 < top_fraction < mass < 1, got top_fraction={top_fraction}, mass={mass}")
    pn = top_fraction * n

    def excess(t: float) -> float:  # t = -log d > 0; increasing in t
        return -math.expm1(-pn * t) / -math.expm1(-n * t) - mass

    lo, hi = 1e-12, 1.0
    while excess(hi) < 0:
        hi *= 2.0
    for _ in range(200):  # bisection in float64: converges to the last bit
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
    return math.exp(-0.5 * (lo + hi))


def expansion_decays(n: int, fg_fraction: float = 0.1, bg_fraction: float = 0.3) -> tuple[float, float]:
    """(d+, d_bg) for masks of n locations by the thesis's rules of thumb (top 10% / 30% of the
    scores carry half the aggregated score); (0.99589, 0.99893) for n = 41 * 41."""
    return decay_for_mass(n, fg_fraction), decay_for_mass(n, bg_fraction)


# ---------------------------------------------------------------------------------------------
# Eq. 2.4: expansion loss
# ---------------------------------------------------------------------------------------------

def expansion_loss(probs: Tensor, labels: Tensor, d_plus: float, d_minus: float = 0.0,
                   d_bg: float = 0.999) -> Tensor:
    """Expansion loss, Eq. 2.4, averaged over the batch:

    ``-1/|T| sum_{c in T} log G_c(f; d+) - 1/|C' \\ T| sum_{c not in T} log(1 - G_c(f; d-))
    - log G_bg(f; d_bg)``.

    Args:
        probs: (B, K, h, w) probabilities, channel 0 = background, 1..K-1 = C'.
        labels: (B, K-1) multi-hot present foreground classes T.
        d_plus, d_minus, d_bg: GWRP decays of present classes, absent classes and background
            (the pooling ablation of section 2.4.3 sets d+ = 0 for GMP, 1 for GAP).

    An image with no present (or no absent) class gets 0 for that term instead of 0/0. With the
    probability floor off, ``log`` is clamped at 1e-12.
    """
    if labels.shape != (probs.shape[0], probs.shape[1] - 1):
        raise ValueError(f"labels must be (B, K-1) = {(probs.shape[0], probs.shape[1] - 1)}, "
                         f"got {tuple(labels.shape)}")
    present = labels > 0.5
    fg = probs[:, 1:]
    g_plus = gwrp(fg, d_plus)
    g_minus = g_plus if d_minus == d_plus else gwrp(fg, d_minus)
    g_bg = gwrp(probs[:, :1], d_bg)[:, 0]
    zero = torch.zeros_like(g_plus)
    log_present = torch.where(present, torch.log(g_plus.clamp_min(_LOG_EPS)), zero)
    log_absent = torch.where(present, zero, torch.log((1.0 - g_minus).clamp_min(_LOG_EPS)))
    n_present = present.sum(dim=1).clamp_min(1).to(probs.dtype)
    n_absent = (~present).sum(dim=1).clamp_min(1).to(probs.dtype)
    per_image = (-log_present.sum(dim=1) / n_present - log_absent.sum(dim=1) / n_absent
                 - torch.log(g_bg.clamp_min(_LOG_EPS)))
    return per_image.mean()


# ---------------------------------------------------------------------------------------------
# Eq. 2.5: constrain-to-boundary loss
# ---------------------------------------------------------------------------------------------

def training_crf_scale(image_side: float, mask_side: float) -> float:
    """Divisor of the CRF's spatial thetas when the image is shrunk to the mask: the ratio of the
    image side to the mask side. SEC uses 12 at 41 x 41 (about a 500-pixel VOC image over 41);
    the 32-pixel scenes with 16 x 16 masks get 2."""
    if image_side <= 0 or mask_side <= 0:
        raise ValueError("sides must be positive")
    return float(image_side) / float(mask_side)


def downscale_image(rgb: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, 3, H, W) colours on the 0-255 scale -> (B, 3, h, w) at the mask resolution: bilinear,
    corners aligned, rounded to integers (the released CRF layer's ``zoom(..., order=1)`` and
    ``round``)."""
    small = F.interpolate(rgb.float(), size=tuple(size), mode="bilinear", align_corners=True)
    return small.round().clamp(0, 255)


def constrain_targets(logits: Tensor, probs: Tensor, image_small: Tensor, params: DenseCRFParams,
                      *, method: str = "permutohedral", unary: Literal["logits", "log_probs"] = "logits",
                      grad: Literal["stop", "unrolled"] = "stop", q_floor: float = 1e-4) -> Tensor:
    """The CRF output Q(X, f(X)) of Eq. 2.5, (B, K, h, w).

    Args:
        logits: (B, K, h, w) network scores; probs: f from :func:`sec_probabilities`.
        image_small: (B, 3, h, w) the image downscaled to the mask (0-255, :func:`downscale_image`).
        params: CRF kernels, e.g. ``DenseCRFParams.sec_train()`` (spatial thetas / 12).
        method: :func:`thesislib.crf.dense_crf` method; ``"permutohedral"`` reproduces the C++
            library the released code calls.
        unary: ``"logits"`` (released code: energy = -logits) or ``"log_probs"`` (the thesis: the
            logarithm of f, floor included). Without the floor both give the same Q (a per-pixel
            constant does not change the CRF).
        grad: ``"stop"`` (default, the released code's final commit: Q is a constant target) or
            ``"unrolled"``: back-propagate through the mean-field iterations (the thesis's [139]
            procedure). Every CRF path is differentiable w.r.t. the unary; ``"auto"`` then picks
            the exact all-pairs path, the true model, whose gradient is the exact gradient of
            the unrolled inference.
        q_floor: Q is floored at this value and renormalised (released code; 0 switches it off).
    """
    if unary == "logits":
        energy = -logits.to(probs.dtype)
    elif unary == "log_probs":
        energy = -torch.log(probs.clamp_min(_LOG_EPS))
    else:
        raise ValueError(f"unary must be 'logits' or 'log_probs', got {unary!r}")
    if grad == "stop":
        energy = energy.detach()
    elif grad != "unrolled":
        raise ValueError(f"grad must be 'stop' or 'unrolled', got {grad!r}")
    elif method == "auto":
        method = "exact"
    q = dense_crf(energy, image_small.to(energy.device), params, method=method)
    if q_floor > 0:
        q = q.clamp_min(q_floor)
        q = q / q.sum(dim=1, keepdim=True)
    return q


def constrain_loss(probs: Tensor, q: Tensor) -> Tensor:
    """Constrain-to-boundary loss, Eq. 2.5: ``1/n sum_u sum_c Q_uc log(Q_uc / f_uc)``, the KL
    divergence of f from Q at each location, averaged over locations and the batch.

    probs, q: (B, K, h, w). Zero exactly when f = Q. The CRF output Q is generally *not* f even
    when Q was computed from f: mean-field adds the pairwise messages to log f and so sharpens
    it, unless the message is the same for every label (a uniform f, or zero pairwise weights).
    """
    if probs.shape != q.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and Q {tuple(q.shape)} differ")
    kl = torch.xlogy(q, q) - q * torch.log(probs.clamp_min(_LOG_EPS))
    return kl.sum(dim=1).mean()
