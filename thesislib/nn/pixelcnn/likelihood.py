"""Discretized mixture of logistics (DMOL) and the per-pixel categorical, with their samplers.

DMOL (Salimans et al. 2017, Eqs. 2-3; the note §3.2 [ext]): sub-pixels lie on ``bins`` equally
spaced values in [-1, 1] (bin centres ``-1 + 2k/(bins-1)``, half-width ``d = 1/(bins-1)``; 1/255 for
8 bits). For component k with mean μ and log-scale log s::

    P(x | k) = σ((x + d - μ)/s) - σ((x - d - μ)/s),   x = -1 uses σ((x + d - μ)/s),
                                                      x = +1 uses 1 - σ((x - d - μ)/s)

and ``C`` channels are coupled autoregressively and linearly inside each component (RGB as
PixelCNN++: μ_G = μ'_G + α x_R, μ_B = μ'_B + β x_R + γ x_G; the two Lab chroma channels of PIC:
μ_b = μ'_b + α x_a), coefficients tanh of the network output. p(x) = Σ_k π_k Π_c P(x_c | k, x_<c).

Layout of the raw map ``out`` (B, dmol_params_count(C, K), H, W), K = n_mix:
``[0:K]`` mixture logits; ``[K + c*K + k]`` mean of channel c, component k; then the log-scales in
the same order (clamped below at -7); then the C(C-1)/2 coupling coefficients, pair (c, c') with
c' < c in the order (1,0), (2,0), (2,1), each a block of K. Total K * (1 + 2C + C(C-1)/2): 100 for
RGB with 10 components, 60 for two chroma channels.

The 4-bit grayscale model p(X̂) (thesis §4.3.1) uses a ``bins``-way softmax per pixel instead:
:func:`categorical_log_prob`, :func:`categorical_sample`; values are again bin centres in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_SCALE_MIN = -7.0


def dmol_params_count(channels: int, n_mix: int) -> int:
    """Number of output channels of a C-channel, K-component DMOL: K * (1 + 2C + C(C-1)/2)."""
    _check_channels(channels)
    if n_mix < 1:
        raise ValueError(f"n_mix must be >= 1, got {n_mix}")
    return n_mix * (1 + 2 * channels + channels * (channels - 1) // 2)


def _check_channels(channels: int) -> None:
    if channels not in (1, 2, 3):
        raise ValueError(f"DMOL supports channels = 1, 2 or 3, got {channels}")


def bin_centres(bins: int, device: torch.device | None = None) -> Tensor:
    """The ``bins`` values in [-1, 1] a quantised sub-pixel can take: (bins,)."""
    return torch.linspace(-1.0, 1.0, bins, device=device)


def to_unit(index: Tensor, bins: int) -> Tensor:
    """Bin index in {0..bins-1} -> value in [-1, 1] (float)."""
    return index.float() * (2.0 / (bins - 1)) - 1.0


def to_index(x: Tensor, bins: int) -> Tensor:
    """Value in [-1, 1] -> nearest bin index in {0..bins-1} (long)."""
    return torch.round((x.clamp(-1, 1) + 1.0) * ((bins - 1) / 2.0)).long()


def split_dmol(out: Tensor, channels: int, n_mix: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split ``out`` (B, P, H, W) into logits (B, K, H, W), means and log-scales (B, C, K, H, W) and
    tanh coefficients (B, C(C-1)/2, K, H, W); see the module docstring for the layout."""
    need = dmol_params_count(channels, n_mix)
    if out.dim() != 4 or out.shape[1] != need:
        raise ValueError(f"DMOL with channels={channels}, n_mix={n_mix} needs out of shape (B, {need}, H, W), "
                         f"got {tuple(out.shape)}")
    b, _, hh, ww = out.shape
    k, c = n_mix, channels
    logits = out[:, :k]
    means = out[:, k: k + c * k].reshape(b, c, k, hh, ww)
    log_scales = out[:, k + c * k: k + 2 * c * k].reshape(b, c, k, hh, ww).clamp(min=LOG_SCALE_MIN)
    n_pairs = c * (c - 1) // 2
    coeffs = torch.tanh(out[:, k + 2 * c * k:].reshape(b, n_pairs, k, hh, ww))
    return logits, means, log_scales, coeffs


def _pair_index(c: int, c_prev: int) -> int:
    """Position of coefficient (c, c_prev), c_prev < c, in the order (1,0), (2,0), (2,1)."""
    return c * (c - 1) // 2 + c_prev


def coupled_means(means: Tensor, coeffs: Tensor, x: Tensor) -> Tensor:
    """μ_c + Σ_{c' < c} coeff_(c,c') x_c' per component: means (B, C, K, H, W), x (B, C, H, W) -> same."""
    channels = means.shape[1]
    rows = [means[:, 0]]
    for c in range(1, channels):
        m = means[:, c]
        for cp in range(c):
            m = m + coeffs[:, _pair_index(c, cp)] * x[:, cp: cp + 1]
        rows.append(m)
    return torch.stack(rows, dim=1)


def _log1mexp(d: Tensor) -> Tensor:
    """log(1 - exp(d)) for d < 0, accurate on both sides of -log 2 and with finite gradients."""
    d = d.clamp(max=-1e-12)
    near = d > -math.log(2.0)
    a = torch.where(near, d, torch.full_like(d, -math.log(2.0)))
    b = torch.where(near, torch.full_like(d, -math.log(2.0)), d)
    return torch.where(near, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(b)))


def log_logistic_bin(x: Tensor, mean: Tensor, log_scale: Tensor, bins: int) -> Tensor:
    """log P(x) of a logistic discretised on ``bins`` centres, edge bins open-ended (module docstring).

    Interior bins use log(σ(a) - σ(b)) = log σ(a') + log(1 - exp(log σ(b') - log σ(a'))), with
    (a', b') = (-b, -a) when a + b > 0 (σ(a) - σ(b) = σ(-b) - σ(-a)), exact and stable without the
    PixelCNN++ pdf fallback, so the bins sum to one for any bin count. Shapes broadcast.
    """
    half = 1.0 / (bins - 1)
    inv_s = torch.exp(-log_scale)
    centred = x - mean
    a = (centred + half) * inv_s         # upper edge
    b = (centred - half) * inv_s         # lower edge
    flip = (a + b) > 0
    a2, b2 = torch.where(flip, -b, a), torch.where(flip, -a, b)
    la, lb = F.logsigmoid(a2), F.logsigmoid(b2)
    interior = la + _log1mexp(lb - la)
    low_edge = F.logsigmoid(a)           # x = -1: σ(a)
    high_edge = F.logsigmoid(-b)         # x = +1: 1 - σ(b)
    return torch.where(x < -1 + half, low_edge, torch.where(x > 1 - half, high_edge, interior))


def _check_x(x: Tensor, channels: int, out: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != channels or x.shape[0] != out.shape[0] or x.shape[2:] != out.shape[2:]:
        raise ValueError(f"x must have shape {(out.shape[0], channels, *out.shape[2:])} (values in [-1, 1]), "
                         f"got {tuple(x.shape)}")


def dmol_log_prob(x: Tensor, out: Tensor, channels: int, n_mix: int, bins: int = 256) -> Tensor:
    """log p(x_ij) per pixel under the DMOL ``out``: x (B, C, H, W) on the bin centres -> (B, H, W) nats.

    log p = logsumexp_k [log π_k + Σ_c log P(x_c | μ_ck + Σ_{c'<c} coeff x_c', s_ck)] (Salimans et al.
    2017, Eq. 2 with the coupling of §2.2; thesis §4.3.3, §5.3.1).
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    _check_x(x, channels, out)
    logits, means, log_scales, coeffs = split_dmol(out, channels, n_mix)
    mu = coupled_means(means, coeffs, x)
    per_channel = log_logistic_bin(x.unsqueeze(2), mu, log_scales, bins)       # (B, C, K, H, W)
    return torch.logsumexp(F.log_softmax(logits, dim=1) + per_channel.sum(dim=1), dim=1)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    return u.clamp(1e-5, 1.0 - 1e-5)


def _discrete_mode(mean: Tensor, log_scale: Tensor, bins: int) -> Tensor:
    """The bin centre of largest mass of a discretised logistic: the bin holding μ or an edge bin."""
    centres = to_unit(torch.stack([to_index(mean, bins), torch.zeros_like(mean, dtype=torch.long),
                                   torch.full_like(mean, bins - 1, dtype=torch.long)]), bins)
    logp = log_logistic_bin(centres, mean.unsqueeze(0), log_scale.unsqueeze(0), bins)
    return torch.gather(centres, 0, logp.argmax(dim=0, keepdim=True)).squeeze(0)


def dmol_sample(out: Tensor, channels: int, n_mix: int, generator: torch.Generator | None = None,
                variance_reduction: float = 0.0, map: bool = False, bins: int = 256) -> Tensor:
    """Sample x (B, C, H, W) on the bin centres in [-1, 1] from the DMOL ``out`` (B, P, H, W).

    Draws, in this order: one uniform (B, K, H, W) for the component (Gumbel-max), then one uniform
    (B, C, H, W) for the logistic noise (drawn also when ``map`` is set, so the random stream does not
    depend on the mode). Channel c uses the component's mean coupled to the already sampled channels
    < c. ``variance_reduction`` is subtracted from every log-scale before sampling (thesis §4.4.2,
    Fig. 4.4; clamped at -7 as FaceGeneration does). ``map=True``: the component is still drawn by
    its weight, then each channel takes the mode of the discretised component (given the earlier
    channels) instead of a draw. A continuous logistic draw rounded to the nearest bin (edges
    clamped) is an exact draw of the discretised logistic.
    """
    logits, means, log_scales, coeffs = split_dmol(out, channels, n_mix)
    if variance_reduction:
        log_scales = (log_scales - variance_reduction).clamp(min=LOG_SCALE_MIN)
    b, k, hh, ww = logits.shape
    gumbel = -torch.log(-torch.log(_uniform((b, k, hh, ww), generator, logits)))
    comp = (logits + gumbel).argmax(dim=1, keepdim=True)                         # (B, 1, H, W)
    noise_u = _uniform((b, channels, hh, ww), generator, logits)
    pick = comp.unsqueeze(1).expand(b, channels, 1, hh, ww)
    mu = torch.gather(means, 2, pick).squeeze(2)                                  # (B, C, H, W)
    ls = torch.gather(log_scales, 2, pick).squeeze(2)
    co = torch.gather(coeffs, 2, comp.unsqueeze(1).expand(b, coeffs.shape[1], 1, hh, ww)).squeeze(2)
    xs: list[Tensor] = []
    for c in range(channels):
        m = mu[:, c]
        for cp in range(c):
            m = m + co[:, _pair_index(c, cp)] * xs[cp]
        if map:
            value = _discrete_mode(m, ls[:, c], bins)
        else:
            u = noise_u[:, c]
            value = to_unit(to_index(m + torch.exp(ls[:, c]) * (torch.log(u) - torch.log1p(-u)), bins), bins)
        xs.append(value)
    return torch.stack(xs, dim=1)


def categorical_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """log p(x_ij) of a per-pixel softmax over ``bins = logits.shape[1]`` levels.

    x (B, 1, H, W) on the bin centres in [-1, 1] (e.g. the 4-bit image, 16 levels), logits
    (B, bins, H, W) -> (B, H, W) nats (the cross-entropy of thesis §4.3.3, negated).
    """
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] != logits.shape[0] or x.shape[2:] != logits.shape[2:]:
        raise ValueError(f"x must have shape {(logits.shape[0], 1, *logits.shape[2:])}, got {tuple(x.shape)}")
    index = to_index(x, logits.shape[1])
    return torch.gather(F.log_softmax(logits, dim=1), 1, index).squeeze(1)


def categorical_sample(logits: Tensor, generator: torch.Generator | None = None, map: bool = False,
                       temperature: float = 1.0) -> Tensor:
    """Sample (B, 1, H, W) bin centres in [-1, 1] from logits (B, bins, H, W) by Gumbel-max.

    Draws one uniform (B, bins, H, W) (also when ``map``, which returns the most probable level);
    ``temperature`` divides the logits.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    gumbel = -torch.log(-torch.log(_uniform(tuple(logits.shape), generator, logits)))
    index = logits.argmax(dim=1, keepdim=True) if map else (logits / temperature + gumbel).argmax(dim=1, keepdim=True)
    return to_unit(index, logits.shape[1])
