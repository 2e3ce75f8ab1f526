"""The chapter's figures: Fig. 1 (the Π-model's border on two moons over optimisation steps), Fig. 3
(accuracy and label switches over the cycles of Algorithm 1), and the per-method accuracies (the
shared :func:`thesislib.selfsup.plots.variant_figure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from thesislib.methods.scarce_annotations.moons import MoonsRun
from thesislib.selfsup.plots import variant_figure

__all__ = ["cycles_figure", "moons_figure", "variant_figure"]


def moons_figure(run: MoonsRun, iterations: Sequence[int]) -> Figure:
    """One panel per iteration: P(class 1) on the grid, the 0.5 border, the points and the 6 anchors."""
    fig, axes = plt.subplots(1, len(iterations), figsize=(3.4 * len(iterations), 2.8))
    pts, anchors = run.points.numpy(), run.anchors.numpy()
    for ax, it in zip(np.atleast_1d(axes), iterations, strict=True):
        p = run.frames[it].numpy()
        ax.contourf(run.grid_x.numpy(), run.grid_y.numpy(), p, levels=20, cmap="coolwarm", alpha=0.5)
        ax.contour(run.grid_x.numpy(), run.grid_y.numpy(), p, levels=[0.5], colors="k", linewidths=1.2)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="0.3", alpha=0.4)
        ax.scatter(anchors[:, 0], anchors[:, 1], c=run.anchor_labels.numpy(), cmap="coolwarm", s=70,
                   edgecolors="k", zorder=3)
        ax.set_title(f"iteration {it}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def cycles_figure(curves: Mapping[str, Sequence[Sequence[float]]], switches: Mapping[str, Sequence[Sequence[float]]]
                  ) -> Figure:
    """Left: test accuracy after each cycle's phase one (mean ± sd over replicates) per variant;
    right: the share of unlabelled images whose pseudo-label changed at each assignment."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, data, ylabel in ((a, curves, "test accuracy"), (b, switches, "labels switched")):
        for name, runs in data.items():
            arr = np.asarray(runs, dtype=float)
            m, s = np.nanmean(arr, 0), np.nanstd(arr, 0)
            x = np.arange(arr.shape[1])
            ax.plot(x, m, marker="o", ms=3, label=name)
            ax.fill_between(x, m - s, m + s, alpha=0.15)
        ax.set_xlabel("cycle")
        ax.set_ylabel(ylabel)
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig
