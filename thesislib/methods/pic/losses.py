"""PIC's objective (thesis Eqs. 5.1-5.3) in bits per chroma dimension.

Eq. 5.1 factorises p(X^ab | X^L) over the chroma pixels in raster order, Eq. 5.2 makes each factor
a two-channel discretized mixture of logistics whose parameters f^θ computes from the earlier
pixels and g^w(X^L), Eq. 5.3 minimises the summed negative log-likelihood. Normalised, as the
released code does, by the number of modelled dimensions 2·(H/s)·(W/s) and by ln 2:

    bpd(X) = -Σ_i log p(X^ab_i | X^ab_<i, X^L) / (2 (H/s)(W/s) ln 2)                       (5.3')

The g^w-only baseline uses the same DMOL per pixel with no dependence on the other pixels' ab.
"""

from __future__ import annotations

import math

from torch import Tensor

from thesislib.nn.pixelcnn import dmol_log_prob

__all__ = ["chroma_bits_per_dim", "chroma_nll_nats"]


def chroma_nll_nats(ab: Tensor, out: Tensor, n_mix: int) -> Tensor:
    """-log p(ab | ·) summed over the pixels of each image, in nats: ab (B, 2, h, w) on the bin
    centres in [-1, 1], out (B, 6 n_mix, h, w) the DMOL parameters -> (B,) (Eqs. 5.1, 5.2)."""
    return -dmol_log_prob(ab, out, 2, n_mix).flatten(1).sum(1)


def chroma_bits_per_dim(ab: Tensor, out: Tensor, n_mix: int) -> Tensor:
    """Eq. 5.3' per image: :func:`chroma_nll_nats` / (2 h w ln 2) -> (B,)."""
    dims = 2 * ab.shape[-2] * ab.shape[-1]
    return chroma_nll_nats(ab, out, n_mix) / (dims * math.log(2.0))
