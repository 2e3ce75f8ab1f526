"""AutoNovel's own figure: DTC's estimate of C^u (App. E) over replicates. The figures the self-supervised chapters
share (embeddings, assignments, curves, variants) are :mod:`thesislib.selfsup.plots`."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from thesislib.eval.class_number import ClassNumberEstimate


def class_number_figure(estimates: Sequence[ClassNumberEstimate], true_new: int,
                        labels: Sequence[str] | None = None) -> Figure:
    """Per replicate (``labels``, default ``r0, r1, ...``): the probe ACC and the silhouette against the candidate
    number of new clusters c, the chosen candidate marked (x), the true C^u dashed; right, the estimated C^u of
    each replicate against the true one."""
    names = list(labels) if labels is not None else [f"r{i}" for i in range(len(estimates))]
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.0), gridspec_kw={"width_ratios": [3, 3, 2]})
    for i, (name, e) in enumerate(zip(names, estimates, strict=True)):
        for ax, values in ((axes[0], e.probe_acc), (axes[1], e.silhouette)):
            ax.plot(e.candidates, values, color=f"C{i % 10}", lw=1.0, label=name)
            ax.plot(e.candidates[e.chosen], values[e.chosen], "x", color=f"C{i % 10}", ms=7)
    for ax, title in ((axes[0], "probe ACC (Hungarian)"), (axes[1], "silhouette (probe + unlabelled)")):
        ax.axvline(true_new, color="k", ls="--", lw=0.8)
        ax.set_xlabel("candidate new clusters c")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    axes[2].bar(range(len(estimates)), [e.k for e in estimates], color=[f"C{i % 10}" for i in range(len(estimates))])
    axes[2].axhline(true_new, color="k", ls="--", lw=0.8)
    axes[2].set_xticks(range(len(estimates)), names, fontsize=8)
    axes[2].set_title(f"estimated C^u (true {true_new})", fontsize=9)
    fig.tight_layout()
    return fig
