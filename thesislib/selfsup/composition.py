"""Data composition with pairwise-target mixing: RICAP and MixUp (Rebuffi thesis ch. 7 §3.3, eq. 6, Fig. 3).

A composite image j is built from the images σ(j) of a few permutations σ of the batch, with weights
w_σ (RICAP: the area share of each of the four crops; MixUp: λ and 1 - λ). Its pairwise target with a
*pure* image i is the weighted vote t_ij = Σ_σ w_σ A_{i σ(j)} (:func:`mix_targets`). The thesis prints
eq. 6 as a sum of per-σ BCEs; the released code uses this single soft target in one BCE, which we
follow (the sensible reading, study note 003 §5.2 item 4).

RICAP (Takahashi et al.) as in the released LSD-C code: crop width and height w = round(W·Beta(β, β)),
h = round(H·Beta(β, β)) (β = 0.3), one size and one crop position per quadrant for the whole batch,
quadrants (w x h | (W-w) x h / w x (H-h) | (W-w) x (H-h)); a quadrant covering more than a quarter of
the image keeps the identity permutation. Passing ``sizes`` and ``perms`` of a first call gives a
second view with the same composition and new crop positions (the code's two composite views).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Composite:
    """Composite images (B, C, H, W); ``perms`` (S, B): the source image of composite j in part s;
    ``weights`` (S, B): the share of part s in composite j (columns sum to 1); ``sizes``: RICAP's
    (w, h); ``lam``: MixUp's λ (host floats, so a second view reuses them without a device sync)."""

    images: Tensor
    perms: Tensor
    weights: Tensor
    sizes: tuple[int, int] | None = None
    lam: float | None = None


def _beta(a: float, generator: torch.Generator | None) -> float:
    # Beta(a, a) from two Gammas, drawn from the given generator (torch.distributions has no generator)
    g = torch._standard_gamma(torch.full((2,), float(a)), generator=generator) if generator is not None else \
        torch._standard_gamma(torch.full((2,), float(a)))
    return float(g[0] / g.sum())


def ricap(x: Tensor, beta: float = 0.3, generator: torch.Generator | None = None,
          sizes: tuple[int, int] | None = None, perms: Tensor | None = None) -> Composite:
    """RICAP composites of the batch x (B, C, H, W); see the module docstring."""
    b, _, height, width = x.shape
    if sizes is None:
        w = int(round(width * _beta(beta, generator)))
        h = int(round(height * _beta(beta, generator)))
        sizes = (w, h)
    w, h = sizes
    boxes = ((0, 0, w, h), (w, 0, width - w, h), (0, h, w, height - h), (w, h, width - w, height - h))
    if perms is None:
        ident = torch.arange(b)
        perms = torch.stack([ident if bw * bh > width * height / 4 else torch.randperm(b, generator=generator)
                             for _, _, bw, bh in boxes])
    out = torch.empty_like(x)
    weights = []
    for s, (x0, y0, bw, bh) in enumerate(boxes):
        weights.append(bw * bh / (width * height))
        if bw == 0 or bh == 0:
            continue
        cx = int(torch.randint(0, width - bw + 1, (1,), generator=generator))
        cy = int(torch.randint(0, height - bh + 1, (1,), generator=generator))
        # crop first, then gather the batch's permutation: one crop-sized copy instead of a whole batch
        out[:, :, y0:y0 + bh, x0:x0 + bw] = x[:, :, cy:cy + bh, cx:cx + bw][perms[s].to(x.device)]
    wt = torch.tensor(weights, dtype=x.dtype, device=x.device)[:, None].expand(4, b)
    return Composite(out, perms.to(x.device), wt, sizes)


def mixup(x: Tensor, alpha: float = 0.3, generator: torch.Generator | None = None,
          lam: float | None = None, perm: Tensor | None = None) -> Composite:
    """MixUp composites λ x + (1 - λ) x[σ] with λ ~ Beta(α, α) per batch (α = 0.3 in the thesis)."""
    b = x.shape[0]
    lam = _beta(alpha, generator) if lam is None else float(lam)
    perm = torch.randperm(b, generator=generator) if perm is None else perm
    perm = perm.to(x.device)
    images = lam * x + (1 - lam) * x[perm]
    perms = torch.stack([torch.arange(b, device=x.device), perm])
    weights = torch.tensor([lam, 1 - lam], dtype=x.dtype, device=x.device)[:, None].expand(2, b)
    return Composite(images, perms, weights, lam=lam)


def mix_targets(a: Tensor, composite: Composite) -> Tensor:
    """t_ij = Σ_s w_s[j] A[i, σ_s(j)]: targets (B, B) between pure image i (rows) and composite j
    (columns), from the pure-pair adjacency A (B, B) (ch. 7 eq. 6 / Fig. 3)."""
    t = torch.zeros_like(a)
    for perm, w in zip(composite.perms, composite.weights, strict=True):
        t = t + a[:, perm] * w[None, :].to(a.dtype)
    return t
