"""Joint cross-domain SVD compression of parallel adapters (Rebuffi Ch. 4 §3.4, eq. 5).

For one layer with parallel adapters alpha_t (C_out x C_in) of the T domains, stack them side by
side, ``A = [alpha_1 ... alpha_T]`` (C_out x T·C_in), factorise ``A = U S V^T`` and keep the top K
singular values: ``beta = U_K S_K`` (C_out x K) is *shared* by the domains and frozen, and
``gamma_t^T = (V_K^T)_t`` (K x C_in, the t-th block of columns) is each domain's own, fine-tuned
afterwards, so that ``alpha_t ≈ beta gamma_t^T``. Adapter parameters go from T·C_out·C_in to
C_out·K + T·K·C_in (ratio → K / C for square layers; K = C/2 halves them: the "1.5x" model).
With K = rank(A) (at most C_out) the factorisation is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from thesislib.nn.resnet26_adapters import DomainConv, MultiDomainResNet


def stacked_adapters(conv: DomainConv, domains: Sequence[int]) -> Tensor:
    """``[alpha_t for t in domains]`` side by side: (C_out, T·C_in) float64."""
    if conv.adapter != "parallel" or conv.adapters is None or conv.basis is not None:
        raise ValueError("stacking needs uncompressed parallel adapters")
    return torch.cat([conv.adapters[t].weight.detach()[:, :, 0, 0].double() for t in domains], dim=1)


def joint_factors(stacked: Tensor, n_domains: int, k: int) -> tuple[Tensor, list[Tensor], Tensor]:
    """SVD of the stacked adapters (C_out, T·C_in): returns ``beta`` (C_out, K), the T factors
    ``gamma_t^T`` (K, C_in) and all singular values (min(C_out, T·C_in),), descending."""
    c_out, width = stacked.shape
    if width % n_domains:
        raise ValueError(f"{width} columns do not split into {n_domains} domains")
    if not 1 <= k <= min(c_out, width):
        raise ValueError(f"K must lie in 1..{min(c_out, width)}, got {k}")
    u, s, vh = torch.linalg.svd(stacked, full_matrices=False)
    beta = u[:, :k] * s[:k]
    gammas = list(vh[:k].split(width // n_domains, dim=1))
    return beta, gammas, s


def layer_rank(conv: DomainConv, fraction: float, n_domains: int) -> int:
    """K = round(fraction · C_out), at least 1 and at most the stack's rank bound min(C_out, T·C_in)
    (Ch. 4 uses K = C/2)."""
    return max(1, min(conv.c_out, n_domains * conv.c_in, int(round(fraction * conv.c_out))))


@torch.no_grad()
def compress_parallel_adapters(net: MultiDomainResNet, domains: Sequence[int], fraction: float = 0.5
                               ) -> dict[str, Tensor]:
    """Replace every parallel adapter of ``domains`` by ``basis(gamma_t(x))`` in place (eq. 5).

    Each :class:`DomainConv` gets a shared ``basis`` ``Conv2d(K, C_out, 1)`` holding beta, and
    domain ``t``'s adapter becomes ``Conv2d(C_in, K, 1, stride)`` holding gamma_t^T. Domains not
    in ``domains`` get a zero gamma (no adaptation). Returns the singular values per layer name
    (for the spectrum plot)."""
    domains = list(domains)
    spectra: dict[str, Tensor] = {}
    names = {id(m): n for n, m in net.named_modules()}
    for conv in net.domain_convs():
        if conv.adapter != "parallel":
            continue
        k = layer_rank(conv, fraction, len(domains))
        beta, gammas, s = joint_factors(stacked_adapters(conv, domains), len(domains), k)
        spectra[names[id(conv)]] = s.float()
        dtype = conv.conv.weight.dtype
        basis = nn.Conv2d(k, conv.c_out, 1, bias=False).to(conv.conv.weight.device, dtype)
        basis.weight.copy_(beta.to(dtype)[:, :, None, None])
        basis.weight.requires_grad_(False)
        new = []
        for t in range(len(conv.adapters)):
            g = nn.Conv2d(conv.c_in, k, 1, stride=conv.stride, bias=False).to(conv.conv.weight.device, dtype)
            if t in domains:
                g.weight.copy_(gammas[domains.index(t)].to(dtype)[:, :, None, None])
            else:
                nn.init.zeros_(g.weight)
            new.append(g)
        conv.adapters = nn.ModuleList(new)
        conv.basis = basis
    return spectra
