"""Kernel feature vectors of the dense CRF, bit-identical to the C++ library's.

``DenseCRF2D::addPairwiseGaussian`` / ``addPairwiseBilateral`` (``densecrf/src/densecrf.cpp``)
build, for the pixel in column ``x`` and row ``y`` (flat index ``y * W + x``), the float32 features

* Gaussian:  ``[x / sx, y / sy]``                                  (d = 2)
* bilateral: ``[x / sx, y / sy, I_0 / s0, I_1 / s1, I_2 / s2]``    (d = 5)

so that the kernel is ``exp(-|f_i - f_j|^2 / 2)``. Each value is one float32 division of an
exactly representable number by the float32 theta; we compute it in float64 and round once to
float32, which gives the correctly rounded float32 quotient, i.e. the C++ value bit for bit
(torch's own float32 division by a scalar may multiply by the reciprocal instead).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["gaussian_features", "bilateral_features", "as_float32_theta"]


def as_float32_theta(theta: float) -> float:
    """The theta the C++ code sees (a Python float rounded to float32, as Cython passes it)."""
    return float(np.float32(theta))


def _positions(height: int, width: int, theta: float, device: torch.device,
               round_theta: bool = True) -> Tensor:
    """(H*W, 2) float64 ``[x / theta, y / theta]`` (theta rounded to float32 first if asked)."""
    t = as_float32_theta(theta) if round_theta else float(theta)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64, device=device),
                            torch.arange(width, dtype=torch.float64, device=device), indexing="ij")
    return torch.stack([xs / t, ys / t], dim=-1).reshape(height * width, 2)


def gaussian_features(batch: int, height: int, width: int, theta_px: float,
                      device: torch.device) -> Tensor:
    """(B, H*W, 2) float32 position features of the Gaussian (smoothness) kernel."""
    pos = _positions(height, width, theta_px, device).to(torch.float32)
    return pos.unsqueeze(0).expand(batch, -1, -1)


def bilateral_features(image: Tensor, theta_alpha_px: float, theta_beta: float,
                       dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, H*W, 5) position + colour features of the bilateral (appearance) kernel.

    Args:
        image: (B, 3, H, W) colours on the 0-255 scale (uint8 or float; differentiable when float).
        dtype: float32 gives the C++ values bit for bit (thetas rounded to float32); float64
            keeps the exact thetas and quotients (the double-precision exact path).
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (B, 3, H, W), got {tuple(image.shape)}")
    batch, _, height, width = image.shape
    single = dtype == torch.float32
    pos = _positions(height, width, theta_alpha_px, image.device, round_theta=single)
    col = image.to(torch.float64) / (as_float32_theta(theta_beta) if single else float(theta_beta))
    col = col.permute(0, 2, 3, 1).reshape(batch, height * width, 3)
    feats = torch.cat([pos.unsqueeze(0).expand(batch, -1, -1), col], dim=-1)
    return feats.to(dtype)
