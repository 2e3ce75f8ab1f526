"""Exact spatial Gaussian term of the dense CRF on a pixel grid, by separability.

The smoothness kernel ``k(i, j) = exp(-|p_i - p_j|^2 / (2 theta^2))`` on pixel positions factorises
over rows and columns, ``K = K_y (x) K_x`` with 1-D Gaussians ``K_y`` (H x H), ``K_x`` (W x W)
(Krähenbühl & Koltun 2011, Eq. 3, second term). Its row sums factorise too,
``K 1 = (K_y 1) (x) (K_x 1)``, so with the self term included every normalisation of
``thesislib.crf.exact.normalize_kernel`` is again a Kronecker product of two normalised 1-D
matrices ``M_y (x) M_x`` and the message ``A Q`` costs two small products instead of N^2.

Two evaluations of ``M_y (x) M_x``: matrix products, or, when the Gaussian is narrow
(``2R + 1 <= 9`` taps with ``R = ceil(6 theta)``, e.g. SEC's training theta = 3/12 px), a banded
sum over the diagonals |t| <= R only; the dropped entries are below ``exp(-18) = 1.5e-8`` of the
peak, under float32 resolution. Without the self term (``include_self=False``) the kernel is
``K - I``, whose row sums do not factorise; the message is then formed as
``post * (K (pre * Q) - pre * Q)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from thesislib.crf.features import as_float32_theta

__all__ = ["SeparableGaussian"]

_EPS = 1e-20
_MAX_BAND_TAPS = 9


def _one_d(n: int, theta: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(n, n) float64 1-D Gaussian; theta rounded to float32 when computing in float32."""
    t = as_float32_theta(theta) if dtype == torch.float32 else float(theta)
    idx = torch.arange(n, dtype=torch.float64, device=device) / t
    return torch.exp(-0.5 * (idx[:, None] - idx[None, :]).square())


def _factors(s: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """(left, right) diagonal factors of the normalisation for row sums ``s``."""
    ones = torch.ones_like(s)
    table = {"symmetric": (s.rsqrt(), s.rsqrt()), "after": (1.0 / s, ones),
             "before": (ones, 1.0 / s), "none": (ones, ones)}
    return table[mode]


class SeparableGaussian:
    """Message ``w * A Q`` of the normalised spatial Gaussian on an H x W grid.

    Args:
        height, width: grid size; pixel ``(y, x)`` has flat index ``y * W + x``.
        theta_px: spatial standard deviation in pixels (already divided by any SEC scale).
        normalization: "symmetric" | "after" | "before" | "none".
        include_self: keep the j = i term (the C++ library does).
        weight: the Potts weight w folded into the matrices.
    Call with Q of shape (B, H*W, C); returns (B, H*W, C).
    """

    def __init__(self, height: int, width: int, theta_px: float, normalization: str,
                 include_self: bool, weight: float, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        self.height, self.width = height, width
        ky, kx = _one_d(height, theta_px, device, dtype), _one_d(width, theta_px, device, dtype)
        radius = math.ceil(6.0 * theta_px)
        self.band = radius if self.is_banded(theta_px) else None
        self.include_self = include_self
        if include_self:
            (ly, ry), (lx, rx) = _factors(ky.sum(1), normalization), _factors(kx.sum(1), normalization)
            self.my = (ly[:, None] * ky * ry[None, :] * weight).to(dtype)
            self.mx = (lx[:, None] * kx * rx[None, :]).to(dtype)
        else:
            rowsum = (ky.sum(1)[:, None] * kx.sum(1)[None, :]).reshape(-1, 1) - 1.0 + _EPS
            pre, post = _factors(rowsum, normalization)[::-1]
            self.pre = pre.to(dtype)
            self.post = (post * weight).to(dtype)
            self.my, self.mx = ky.to(dtype), kx.to(dtype)
        if self.band is not None:
            r = self.band
            self.diag_y = [self.my.diagonal(t)[:, None, None] for t in range(-r, r + 1)]
            self.diag_x = [self.mx.diagonal(t)[:, None] for t in range(-r, r + 1)]

    @staticmethod
    def is_banded(theta_px: float) -> bool:
        """True when the Gaussian is applied as a band of at most 9 diagonals."""
        return 2 * math.ceil(6.0 * theta_px) + 1 <= _MAX_BAND_TAPS

    def _kron_apply(self, q: Tensor) -> Tensor:
        b, n, c = q.shape
        h, w = self.height, self.width
        if self.band is None:
            y = (self.my @ q.reshape(b, h, w * c)).reshape(b * h, w, c)
            # one (W, W) @ (W, B*H*C) product is faster than B*H small batched ones
            y = (self.mx @ y.transpose(0, 1).reshape(w, -1)).reshape(w, b * h, c)
            return y.transpose(0, 1).reshape(b, n, c)
        r = self.band
        x = q.reshape(b, h, w, c)
        y = x * self.diag_y[r]
        for t in range(1, min(r, h - 1) + 1):
            y[:, : h - t].addcmul_(x[:, t:], self.diag_y[r + t])
            y[:, t:].addcmul_(x[:, : h - t], self.diag_y[r - t])
        z = y * self.diag_x[r]
        for t in range(1, min(r, w - 1) + 1):
            z[:, :, : w - t].addcmul_(y[:, :, t:], self.diag_x[r + t])
            z[:, :, t:].addcmul_(y[:, :, : w - t], self.diag_x[r - t])
        return z.reshape(b, n, c)

    def __call__(self, q: Tensor) -> Tensor:
        if q.ndim != 3 or q.shape[1] != self.height * self.width:
            raise ValueError(f"q must have shape (B, {self.height * self.width}, C), got {tuple(q.shape)}")
        if self.include_self:
            return self._kron_apply(q)
        x = q * self.pre
        return (self._kron_apply(x) - x) * self.post
