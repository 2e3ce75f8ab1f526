"""Figures of the chapter: real vs corrupted images (Figs. 3.1, 3.3), the drop rate (Fig. 3.6), probes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from thesislib.methods.spotting_artifacts.model import DamageRepair, damage, drop_mask, upsample_mask

__all__ = ["corruption_rows", "drop_rate_rows", "image_grid", "probe_plot"]


def image_grid(rows: Sequence[Tensor], labels: Sequence[str], title: str = "", cell: float = 0.7) -> Figure:
    """Row k shows the images ``rows[k]`` (N_k, C, S, S) in [-1, 1] (grey for C = 1), labelled ``labels[k]``."""
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.6, cell * len(rows) + 0.4),
                             squeeze=False)
    for k, (row, label) in enumerate(zip(rows, labels, strict=True)):
        shown = ((row.detach().float().cpu() + 1) / 2).clamp(0, 1)
        for j in range(n_cols):
            ax = axes[k][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(shown):
                img = shown[j].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
        axes[k][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


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


def probe_plot(ssl: Mapping[str, Sequence[float]], random: Mapping[str, Sequence[float]],
               title: str = "") -> Figure:
    """Per-layer probe accuracy (%) of the self-supervised and the random C: mean ± sd over replicates, and
    every replicate as a dot."""
    layers = list(ssl)
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    for offset, (name, values, colour) in enumerate((("self-supervised C", ssl, "C0"), ("random C", random, "C7"))):
        xs = [i + (offset - 0.5) * 0.3 for i in range(len(layers))]
        data = [100 * torch.tensor(values[layer], dtype=torch.float64) for layer in layers]
        means = [float(d.mean()) for d in data]
        sds = [float(d.std()) if len(d) > 1 else 0.0 for d in data]
        ax.errorbar(xs, means, yerr=sds, fmt="o", color=colour, label=name, capsize=3)
        for x, d in zip(xs, data):
            ax.scatter([x] * len(d), d.tolist(), s=8, color=colour, alpha=0.35)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylabel("probe test accuracy (%)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
