"""The chapter's figures: one image per domain (thesis Fig. 1.2), per-domain accuracy per method,
forgetting of the source domain (Table 2 as a picture), the adapter weight-decay study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from thesislib.data.mini_decathlon import MiniDomain
from thesislib.methods.residual_adapters.config import METHOD_LABELS


def domain_examples(domains: Mapping[str, MiniDomain], per_domain: int = 6) -> Figure:
    """A row of training images per domain, un-normalised, with its class names."""
    fig, axes = plt.subplots(len(domains), per_domain, figsize=(1.3 * per_domain, 1.4 * len(domains)))
    for row, (name, d) in zip(np.atleast_2d(axes), domains.items()):
        idx = torch.linspace(0, len(d.y_train) - 1, per_domain).long()
        for ax, i in zip(row, idx):
            img = (d.x_train[i] * d.std.view(3, 1, 1) + d.mean.view(3, 1, 1)).clamp(0, 1).permute(1, 2, 0)
            ax.imshow(img.numpy(), interpolation="nearest")
            ax.set_title(d.class_names[int(d.y_train[i])][:10], fontsize=7)
            ax.axis("off")
        row[0].text(-0.3, 0.5, name, transform=row[0].transAxes, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_bars(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> Figure:
    """Grouped bars: accuracy (%) per domain (x) and method (colour), from :func:`table_rows`."""
    domains = list(headers[1:headers.index("mean")])
    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 0.8 / len(rows)
    x = np.arange(len(domains))
    for k, row in enumerate(rows):
        ax.bar(x + (k - (len(rows) - 1) / 2) * width, [float(v) for v in row[1:1 + len(domains)]], width,
               label=f"{row[0]} (S={float(row[-1]):.0f})")
    ax.set_xticks(x, domains)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncols=2, loc="lower left")
    ax.set_title("per-domain accuracy (mean over replicates); S with E^max = 2 x fine-tuning's error")
    fig.tight_layout()
    return fig


def forgetting(results: Sequence[Any], targets: Sequence[str], methods: Sequence[str]) -> Figure:
    """Source accuracy after training on each target, per method (adapters are flat by construction)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for m in methods:
        vals = [100 * float(np.mean([r.source_after[m][t] for r in results])) for t in targets]
        ax.plot(list(targets), vals, marker="o", label=METHOD_LABELS.get(m, m))
    ax.set_ylabel("source accuracy after (%)")
    ax.set_ylim(0, 102)
    ax.legend(fontsize=8)
    ax.set_title("forgetting of the source domain (Table 2 analogue)")
    fig.tight_layout()
    return fig


def decay_study(results: Sequence[Any], low: float, high: float, domain: str) -> Figure:
    """Tiny-domain accuracy per replicate at the two adapter decays (paired lines)."""
    fig, ax = plt.subplots(figsize=(3.6, 3))
    for r in results:
        ax.plot([0, 1], [100 * r.decay["low"], 100 * r.decay["high"]], marker="o", color="0.5", alpha=0.7)
    ax.set_xticks([0, 1], [f"wd {low:g}", f"wd {high:g}"])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(f"{domain} test accuracy (%)")
    ax.set_title("adapter weight decay, one line per replicate", fontsize=9)
    fig.tight_layout()
    return fig
