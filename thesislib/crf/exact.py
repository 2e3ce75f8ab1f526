"""Exact all-pairs dense-CRF kernels: explicit N x N matrices, batched, differentiable.

For features ``f`` (B, N, d) the Gaussian kernel matrix is ``K_ij = exp(-|f_i - f_j|^2 / 2)``
(Krähenbühl & Koltun 2011, Eq. 3, with the thetas folded into the features). The squared
distance is accumulated one feature dimension at a time from direct differences, not from
``|f_i|^2 + |f_j|^2 - 2 f_i.f_j`` (whose cancellation costs ~1e-4 relative accuracy for colour
features of size ~20).

The spatial-only (Gaussian) kernel is separable, ``K = K_y (x) K_x`` with 1-D Gaussians on the
row and column indices, so it is built from two small matrices with ``torch.kron``.

Normalisation (``densecrf/src/pairwise.cpp``, ``DenseKernel::initLattice`` and ``filter``), with
``s = K 1`` the row sums:

* ``symmetric``: ``A = diag(s^-1/2) K diag(s^-1/2)`` (the library default, ICML 2013),
* ``after``:     ``A = diag(1/s) K`` (the NIPS 2011 code's normalisation),
* ``before``:    ``A = K diag(1/s)``,
* ``none``:      ``A = K``.

``include_self=False`` zeroes the diagonal before the row sums are taken (the paper's sum over
j != i); the C++ library always includes it.

Memory: every matrix is B x N x N float32, about 3 of them at the peak of construction; the
caller checks the budget (see ``thesislib.crf.dense``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from thesislib.crf.features import as_float32_theta

__all__ = ["gaussian_matrix", "separable_gaussian_matrix", "normalize_kernel"]

_EPS = 1e-20  # added to the row sums before inversion, as in the C++ code


def gaussian_matrix(features: Tensor) -> Tensor:
    """(B, N, N) ``exp(-|f_i - f_j|^2 / 2)`` for features (B, N, d)."""
    if features.ndim != 3:
        raise ValueError(f"features must have shape (B, N, d), got {tuple(features.shape)}")
    sq = None
    for k in range(features.shape[2]):
        col = features[:, :, k]
        diff = (col[:, :, None] - col[:, None, :]).square()
        sq = diff if sq is None else sq + diff
    return torch.exp(-0.5 * sq)


def separable_gaussian_matrix(height: int, width: int, theta_px: float, device: torch.device,
                              dtype: torch.dtype = torch.float32) -> Tensor:
    """(H*W, H*W) spatial Gaussian ``exp(-((x_i-x_j)^2 + (y_i-y_j)^2) / (2 theta^2))``.

    Built as ``kron(K_y, K_x)``, flat index ``y * W + x``; theta rounded to float32 for float32.
    """
    t = as_float32_theta(theta_px) if dtype == torch.float32 else float(theta_px)

    def one_d(n: int) -> Tensor:
        idx = torch.arange(n, dtype=torch.float64, device=device) / t
        return torch.exp(-0.5 * (idx[:, None] - idx[None, :]).square())

    return torch.kron(one_d(height), one_d(width)).to(dtype)


def normalize_kernel(kernel: Tensor, normalization: str, include_self: bool = True) -> Tensor:
    """Message matrix ``A`` (same shape as ``kernel``, (..., N, N)) for one pairwise term.

    The mean-field message of this term to pixel i for label l is ``sum_j A_ij Q_j(l)``.
    """
    if not include_self:
        eye = torch.eye(kernel.shape[-1], dtype=torch.bool, device=kernel.device)
        kernel = kernel.masked_fill(eye, 0.0)
    if normalization == "none":
        return kernel
    rowsum = kernel.sum(dim=-1) + _EPS
    if normalization == "symmetric":
        n = rowsum.rsqrt()
        return n[..., :, None] * kernel * n[..., None, :]
    if normalization == "after":
        return kernel / rowsum[..., :, None]
    if normalization == "before":
        return kernel / rowsum[..., None, :]
    raise ValueError(f"unknown normalization {normalization!r}; use symmetric, after, before or none")
