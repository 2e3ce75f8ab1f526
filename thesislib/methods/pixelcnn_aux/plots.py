"""The chapter's figures: image grids of samples (Figs. 4.2-4.4, 4.6 analogues)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from thesislib.data.color import gray4_to_rgb

__all__ = ["image_rows", "to_display"]


def to_display(images: Tensor, side: int | None = None) -> Tensor:
    """uint8 (N, 3, S, S) RGB or (N, 1, S, S) 4-bit levels -> uint8 (N, 3, side, side) for display
    (nearest-neighbour upscaling, so pyramid levels line up)."""
    x = gray4_to_rgb(images) if images.shape[1] == 1 else images
    if side is not None and x.shape[-1] != side:
        x = F.interpolate(x.float(), size=(side, side), mode="nearest").round().to(torch.uint8)
    return x


def image_rows(rows: Sequence[Tensor], labels: Sequence[str], title: str = "", side: int | None = None,
               cell: float = 0.6) -> Figure:
    """A grid: row k shows the images ``rows[k]`` (N_k, C, S, S) uint8, labelled ``labels[k]``."""
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.2, cell * len(rows) + 0.4),
                             squeeze=False)
    for k, (row, label) in enumerate(zip(rows, labels, strict=True)):
        shown = to_display(row, side)
        for j in range(n_cols):
            ax = axes[k][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(shown):
                ax.imshow(shown[j].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[k][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
