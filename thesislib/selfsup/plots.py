"""Figures shared by the self-supervised chapters: t-SNE embeddings, clusters against classes, training curves
and per-variant scores over replicates (Rebuffi ch. 6-7); image grids and per-layer probe accuracies over
replicates (Jenni ch. 3-4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from thesislib.engine import History
from thesislib.eval.clustering import best_matching, contingency


def embedding_figure(panels: Sequence[tuple[str, torch.Tensor]], labels: torch.Tensor, n: int = 500,
                     seed: int = 0) -> Figure:
    """t-SNE (scikit-learn) of the first ``n`` rows of each ``(title, features (N, D))``, coloured by class."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    y = labels[:n].numpy()
    for ax, (title, f) in zip(axes[0], panels, strict=True):
        z = TSNE(2, init="pca", perplexity=30, random_state=seed).fit_transform(f[:n].double().numpy())
        ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", s=5)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def assignment_figure(clusters: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Contingency of classes (rows) and clusters (columns), clusters ordered by their matched class."""
    table = contingency(clusters, labels).T              # classes x clusters
    match = best_matching(clusters, labels)
    order = sorted(range(table.shape[1]), key=lambda k: match.get(k, 10**6))
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(table[:, order], cmap="Blues")
    ax.set_xticks(range(len(order)), [str(k) for k in order], fontsize=7)
    ax.set_yticks(range(table.shape[0]), list(class_names)[: table.shape[0]], fontsize=7)
    ax.set_xlabel("cluster (ordered by Hungarian match)")
    ax.set_ylabel("class")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def curves_figure(histories: Mapping[str, History], keys: Sequence[str] = ("bce", "pair_precision", "pos_rate")
                  ) -> Figure:
    """One panel per metric, one line per variant, against the optimiser step."""
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, h in histories.items():
            if key in (h.train[0] if h.train else {}):
                ax.plot(h.get("step"), h.get(key), label=name, lw=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def variant_figure(rows: Mapping[str, Sequence[float]]) -> Figure:
    """ACC per variant: one dot per replicate and the mean."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(rows), 3.0))
    for i, vals in enumerate(rows.values()):
        ax.scatter([i] * len(vals), vals, s=12, color="C0")
        ax.hlines(np.mean(vals), i - 0.3, i + 0.3, color="C3")
    ax.set_xticks(range(len(rows)), list(rows), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("ACC (whole dataset)")
    fig.tight_layout()
    return fig


def image_grid(rows: Sequence[torch.Tensor], labels: Sequence[str], title: str = "", cell: float = 0.7) -> Figure:
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
