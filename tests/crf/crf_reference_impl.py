"""An independent float64 dense-CRF mean-field, written as plainly as possible (numpy).

Explicit N x N Gaussian kernels from explicit feature vectors, the textbook parallel update
(Krähenbühl & Koltun 2011, Eq. 5 with Potts compatibility written as an attractive +w term),
and the normalisations of the C++ library. Used only by the tests.
"""

from __future__ import annotations

import numpy as np


def features(image: np.ndarray, theta_xy: float, theta_rgb: float | None) -> np.ndarray:
    """(N, d) features: [x/theta_xy, y/theta_xy(, r/theta_rgb, g/.., b/..)], pixel order y*W+x."""
    height, width = image.shape[:2]
    rows = []
    for y in range(height):
        for x in range(width):
            f = [x / theta_xy, y / theta_xy]
            if theta_rgb is not None:
                f += [float(c) / theta_rgb for c in image[y, x]]
            rows.append(f)
    return np.array(rows, dtype=np.float64)


def message_matrix(feats: np.ndarray, normalization: str, include_self: bool) -> np.ndarray:
    diff = feats[:, None, :] - feats[None, :, :]
    kernel = np.exp(-0.5 * (diff**2).sum(axis=2))
    if not include_self:
        np.fill_diagonal(kernel, 0.0)
    s = kernel.sum(axis=1)
    if normalization == "symmetric":
        return kernel / np.sqrt(s)[:, None] / np.sqrt(s)[None, :]
    if normalization == "after":
        return kernel / s[:, None]
    if normalization == "before":
        return kernel / s[None, :]
    return kernel


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mean_field(unary: np.ndarray, image: np.ndarray, w1: float, theta_alpha: float,
               theta_beta: float, w2: float, theta_gamma: float, iterations: int,
               normalization: str = "symmetric", include_self: bool = True) -> np.ndarray:
    """unary (L, H, W) energies, image (H, W, 3) -> Q (L, H, W) float64."""
    n_labels = unary.shape[0]
    u = unary.reshape(n_labels, -1).T.astype(np.float64)  # (N, L)
    a_bil = message_matrix(features(image, theta_alpha, theta_beta), normalization, include_self)
    a_gau = message_matrix(features(image, theta_gamma, None), normalization, include_self)
    q = softmax(-u)
    for _ in range(iterations):
        q = softmax(-u + w2 * (a_gau @ q) + w1 * (a_bil @ q))
    return q.T.reshape(unary.shape)
