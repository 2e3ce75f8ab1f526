"""Figures shared by the clustering chapters (Rebuffi ch. 6-7): t-SNE embeddings, clusters against
classes, training curves and per-variant scores over replicates."""

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
