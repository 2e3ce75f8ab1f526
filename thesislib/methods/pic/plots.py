"""PIC's figures: gray inputs beside several colourings (Figs. 5.1, 5.4, 5.6 analogues)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from thesislib.data.color import lab_to_rgb
from thesislib.methods.pic.evaluate import to_full_lab


def to_rgb_images(big_l: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """(N, H, W, 3) floats in [0, 1] from L (N, 1, H, W) and low-resolution ab (N, 2, h, w)."""
    return lab_to_rgb(to_full_lab(big_l.cpu(), ab.cpu())).permute(0, 2, 3, 1).numpy()


def colouring_grid(big_l: torch.Tensor, columns: Sequence[tuple[str, torch.Tensor]], rows: int = 4,
                   size: float = 1.1) -> Figure:
    """One row per gray input (the first ``rows`` of ``big_l`` (N, 1, H, W)): the gray image, then each
    ``(title, ab (N, 2, h, w))`` column converted to RGB at full resolution."""
    n = min(rows, big_l.shape[0])
    fig, axes = plt.subplots(n, len(columns) + 1, figsize=(size * (len(columns) + 1), size * n), squeeze=False)
    gray = ((big_l[:n, 0].cpu() + 1) / 2).numpy()
    images = [to_rgb_images(big_l[:n], ab[:n]) for _, ab in columns]
    for i in range(n):
        axes[i, 0].imshow(gray[i], cmap="gray", vmin=0, vmax=1)
        for j, img in enumerate(images):
            axes[i, j + 1].imshow(img[i])
    for j, title in enumerate(["gray input", *(t for t, _ in columns)]):
        axes[0, j].set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
