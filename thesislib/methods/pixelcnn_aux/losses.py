"""The objective of every part: the negative log-likelihood of Eq. 4.4, one term per part.

For the RGB parts the per-pixel likelihood is the discretized mixture of logistics with the
channel-autoregressive coupling (PixelCNN++), for the 4-bit grayscale part a 16-way softmax
(cross-entropy, thesis §4.3.3). The thesis trains the two terms of Eq. 4.4 separately (they
share no parameters), so each part minimises its own term; the training loss is that term in
bits per dimension of the part's own image.
"""

from __future__ import annotations

import math

from torch import Tensor

from thesislib.nn.pixelcnn import categorical_log_prob, dmol_log_prob

__all__ = ["image_log_prob", "part_loss"]


def image_log_prob(out: Tensor, x: Tensor, kind: str, n_mix: int) -> Tensor:
    """log p(x) in nats per image: out (B, P, H, W) the raw map, x (B, C, H, W) in [-1, 1] -> (B,).

    ``kind`` ``"dmol"`` (RGB, 256 bins) or ``"categorical"`` (the 4-bit X̂, bins = out.shape[1])."""
    if kind == "dmol":
        per_pixel = dmol_log_prob(x, out, 3, n_mix)
    elif kind == "categorical":
        per_pixel = categorical_log_prob(x, out)
    else:
        raise ValueError(f"kind must be 'dmol' or 'categorical', got {kind!r}")
    return per_pixel.flatten(1).sum(1)


def part_loss(log_prob: Tensor, dims: int) -> Tensor:
    """Mean negative log-likelihood in bits per dimension: -mean(log p) / (dims ln 2)."""
    if dims <= 0:
        raise ValueError(f"dims must be positive, got {dims}")
    return -log_prob.mean() / (dims * math.log(2.0))
