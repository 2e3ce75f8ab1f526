"""Bits per dimension, and the two-part bound of the auxiliary-variable PixelCNNs (thesis Eq. 4.5).

bits/dim = NLL in nats / (num_dims * ln 2). For X with auxiliary X̂ = ψ(X) (thesis §4.2),
-log p(X) <= -log p(X̂) - log p(X | X̂) (Eqs. 4.2, 4.5), and both parts are normalised by the same
dim X (e.g. 3 * 32 * 32 for CIFAR-10), so that they add up to the bound in bits/dim (the note's
0.459 + 2.52 = 2.98 split for the grayscale PixelCNN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def bits_per_dim(nll_nats_sum: float | torch.Tensor, num_dims: int) -> float:
    """``nll_nats_sum / (num_dims * ln 2)``: a summed NLL (nats) over ``num_dims`` dimensions in bits/dim."""
    if num_dims <= 0:
        raise ValueError(f"num_dims must be > 0, got {num_dims}")
    value = float(nll_nats_sum.sum()) if isinstance(nll_nats_sum, torch.Tensor) else float(nll_nats_sum)
    return value / (num_dims * math.log(2.0))


@dataclass(frozen=True)
class TwoPartBpd:
    """The bound -log p(X̂) - log p(X|X̂) in bits per dim X, and its split (thesis Eq. 4.5)."""

    auxiliary: float     # -log p(X̂) / (dim X ln 2)
    conditional: float   # -log p(X | X̂) / (dim X ln 2)

    @property
    def total(self) -> float:
        return self.auxiliary + self.conditional

    @property
    def auxiliary_share(self) -> float:
        """Fraction of the bound's bits spent on the auxiliary image X̂."""
        return self.auxiliary / self.total if self.total else float("nan")


def two_part_bits_per_dim(nll_aux_nats_sum: float | torch.Tensor, nll_cond_nats_sum: float | torch.Tensor,
                          num_dims: int) -> TwoPartBpd:
    """Both parts of the bound over the same images, each normalised by ``num_dims`` = N * dim X."""
    return TwoPartBpd(bits_per_dim(nll_aux_nats_sum, num_dims), bits_per_dim(nll_cond_nats_sum, num_dims))
