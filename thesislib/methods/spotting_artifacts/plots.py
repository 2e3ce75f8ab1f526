"""Figures of the chapter: real vs corrupted images (Figs. 3.1, 3.3), the drop rate (Fig. 3.6), probes (the grid
and the probe curve are the shared :func:`thesislib.selfsup.plots.image_grid` and ``probe_plot``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from thesislib.methods.spotting_artifacts.model import DamageRepair, damage, drop_mask, upsample_mask
from thesislib.selfsup.plots import image_grid, probe_plot

__all__ = ["corruption_rows", "drop_rate_rows", "image_grid", "probe_plot"]


@torch.no_grad()
def corruption_rows(gen: DamageRepair, images: Tensor, drop_rate: float, seed: int) -> dict[str, Tensor]:
    """Fig. 3.3: ``input``, ``autoencoded`` (the "real" images), the mask Ω at image resolution (white =
    kept, shown in [-1, 1]), ``corrupted`` (damage + repair) and ``no repair`` (damage, plain decoder)."""
    gen.eval()
    gen_device = next(gen.parameters()).device
    x = images.to(gen_device)
    grid = gen.ae.encoder(x[:1]).shape[-2:]
    omega = drop_mask(x.shape[0], tuple(grid), drop_rate, "cpu", torch.Generator().manual_seed(seed)).to(gen_device)
    phi_hat = damage(gen.ae.encoder(x), omega)
    mask_img = upsample_mask(omega, tuple(x.shape[-2:])).expand(-1, x.shape[1], -1, -1) * 2 - 1
    return {"input": x, "autoencoded": gen.autoencode(x), "mask Ω": mask_img, "corrupted": gen.decode(phi_hat, omega),
            "no repair": gen.ae.decoder(phi_hat)}


@torch.no_grad()
def drop_rate_rows(gen: DamageRepair, images: Tensor, rates: Sequence[float], seed: int) -> dict[str, Tensor]:
    """Fig. 3.6 (as far as one trained R allows): the same images corrupted at each drop rate θ."""
    return {f"θ = {r:.1f}": corruption_rows(gen, images, r, seed)["corrupted"] for r in rates}
