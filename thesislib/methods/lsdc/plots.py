"""LSD-C's figures: Fig. 2 (connection graphs on two moons); the embeddings, cluster assignments,
training curves and per-variant scores are the shared :mod:`thesislib.selfsup.plots`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from thesislib.methods.lsdc.moons import MoonGraphs
from thesislib.selfsup.plots import assignment_figure, curves_figure, embedding_figure, variant_figure

__all__ = ["assignment_figure", "curves_figure", "embedding_figure", "moon_graph_figure", "variant_figure"]


def moon_graph_figure(g: MoonGraphs) -> Figure:
    """(a) the data coloured by class, then one panel per graph with its edges (Fig. 2)."""
    names = list(g.graphs)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.0))
    pts = g.points.numpy()
    axes[0].scatter(pts[:, 0], pts[:, 1], c=g.labels.numpy(), cmap="coolwarm", s=8)
    axes[0].set_title("(a) two moons")
    for ax, name in zip(axes[1:], names, strict=True):
        a = torch.triu(g.graphs[name], 1).nonzero().numpy()
        segs = np.stack([pts[a[:, 0]], pts[a[:, 1]]], 1)
        for s in segs:
            ax.plot(s[:, 0], s[:, 1], color="0.4", lw=0.4)
        deg = g.graphs[name].sum(1).numpy()
        ax.scatter(pts[:, 0], pts[:, 1], c=deg, cmap="viridis", s=8, zorder=3)
        ax.set_title(f"{name}: {len(a)} edges\n{g.settings[name]}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
