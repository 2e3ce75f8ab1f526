"""Thin wrapper of pydensecrf (Krähenbühl's 2013 C++ dense CRF), the reference implementation.

pydensecrf is imported lazily: the module can be imported without it, and the functions raise
an ImportError saying how to install it (the maintained build is the ``pydensecrf2`` package,
which provides the ``pydensecrf`` module).

Conventions: ``unary`` is an *energy* (negative log-probability, e.g. ``-log p`` or ``-logits``),
shape (L, H, W); the CRF initialises ``Q0 = softmax(-unary)``. The kernels are added in the
order of SEC's C++ wrapper (``CRF/src/densecrf_wrapper.cpp``): Gaussian first, then bilateral,
both Potts (``PottsCompatibility(w)``) with the library's default DIAG_KERNEL and
NORMALIZE_SYMMETRIC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thesislib.crf.params import DenseCRFParams

_NORMALIZATION_NAMES = {
    "none": "NO_NORMALIZATION",
    "before": "NORMALIZE_BEFORE",
    "after": "NORMALIZE_AFTER",
    "symmetric": "NORMALIZE_SYMMETRIC",
}


def _import_pydensecrf() -> Any:
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pydensecrf is not installed. Install the maintained build with "
            "`pip install pydensecrf2` (it builds from source in a few minutes and provides the "
            "`pydensecrf` module); the original `pydensecrf` package no longer builds."
        ) from err
    return dcrf


def pydensecrf_available() -> bool:
    """True when the ``pydensecrf`` module can be imported."""
    try:
        _import_pydensecrf()
    except ImportError:
        return False
    return True


def pydensecrf_inference(unary: np.ndarray, image: np.ndarray, params: DenseCRFParams) -> np.ndarray:
    """Mean-field marginals of one image with pydensecrf.

    Args:
        unary: (L, H, W) unary energies = negative log-probabilities (any per-pixel additive
            constant is irrelevant, so ``-logits`` works too).
        image: (H, W, 3) uint8 RGB image (the colour kernel is isotropic, so BGR gives the same).
        params: kernel parameters; ``include_self=False`` is not expressible in pydensecrf.

    Returns:
        Q: (L, H, W) float32 marginals after ``params.iterations`` mean-field updates.
    """
    dcrf = _import_pydensecrf()
    unary = np.asarray(unary)
    image = np.asarray(image)
    if unary.ndim != 3:
        raise ValueError(f"unary must have shape (L, H, W), got {unary.shape}")
    n_labels, height, width = unary.shape
    if image.shape != (height, width, 3):
        raise ValueError(f"image must have shape (H, W, 3) = {(height, width, 3)}, got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (pydensecrf reads 0-255 bytes), got {image.dtype}")
    if not params.include_self:
        raise ValueError("pydensecrf always includes the j = i term; include_self=False has no reference")

    norm = getattr(dcrf, _NORMALIZATION_NAMES[params.normalization])
    crf = dcrf.DenseCRF2D(width, height, n_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(n_labels, -1), dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.theta_gamma_px, compat=float(params.gaussian_weight),
                            kernel=dcrf.DIAG_KERNEL, normalization=norm)
    crf.addPairwiseBilateral(sxy=params.theta_alpha_px, srgb=params.theta_beta,
                             rgbim=np.ascontiguousarray(image), compat=float(params.bilateral_weight),
                             kernel=dcrf.DIAG_KERNEL, normalization=norm)
    q = np.asarray(crf.inference(int(params.iterations)), dtype=np.float32)
    return q.reshape(n_labels, height, width)


def pydensecrf_batch(unary: np.ndarray, images: np.ndarray, params: DenseCRFParams) -> np.ndarray:
    """:func:`pydensecrf_inference` over a batch: (B, L, H, W) energies, (B, H, W, 3) uint8 images.

    Returns (B, L, H, W) float32.
    """
    unary = np.asarray(unary)
    images = np.asarray(images)
    if unary.ndim != 4 or images.ndim != 4 or unary.shape[0] != images.shape[0]:
        raise ValueError(f"expected unary (B, L, H, W) and images (B, H, W, 3) with the same B, "
                         f"got {unary.shape} and {images.shape}")
    return np.stack([pydensecrf_inference(u, im, params) for u, im in zip(unary, images)])
