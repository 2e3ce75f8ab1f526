"""Chapter 4's figures: accuracy by placement, the singular-value spectrum of the stacked adapters,
accuracy vs K, and accuracy vs the share of training data (Fig. 4c analogue)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def placement_bars(rows: Sequence[Sequence[Any]], headers: Sequence[str], names: Sequence[str]) -> Figure:
    """Mean target accuracy (%) of the rows whose model is in ``names`` (e.g. the placements)."""
    pick = [r for r in rows if r[0] in names]
    i = headers.index("mean (targets)")
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.bar([r[0] for r in pick], [float(r[i]) for r in pick], color="tab:blue")
    ax.set_ylabel("mean target accuracy (%)")
    ax.set_ylim(max(0.0, min(float(r[i]) for r in pick) - 15), 100)
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    ax.set_title("where the parallel adapters go")
    fig.tight_layout()
    return fig


def spectrum(spectra: Mapping[str, torch.Tensor], k_fraction: float) -> Figure:
    """Normalised singular values of every layer's stacked adapters, with the kept K marked."""
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for values in spectra.values():
        s = values.numpy()
        ax.plot(np.arange(1, len(s) + 1) / len(s), s / s[0], color="0.4", alpha=0.5, lw=1)
    ax.axvline(k_fraction, color="tab:red", ls="--", label=f"K = {k_fraction:g} x C")
    ax.set_xlabel("singular value index / C")
    ax.set_ylabel("sigma / sigma_1")
    ax.set_title("spectrum of the stacked adapters, one line per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def k_sweep(results: Sequence[Any], uncompressed: float) -> Figure:
    """Mean target accuracy right after the cut (no fine-tuning) vs K / C, over replicates."""
    ks = sorted(results[0].sweep)
    vals = np.array([[r.sweep[k] for k in ks] for r in results]) * 100
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.errorbar(ks, vals.mean(0), yerr=vals.std(0, ddof=1) if len(vals) > 1 else None, marker="o", capsize=3)
    ax.axhline(uncompressed, color="0.5", ls=":", label="uncompressed")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K / C")
    ax.set_ylabel("mean target accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("joint SVD cut, before fine-tuning", fontsize=9)
    fig.tight_layout()
    return fig


def data_curve(results: Sequence[Any], domain: str, labels: Mapping[str, str]) -> Figure:
    """Accuracy vs share of the training data per method (mean and sd over replicates)."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for m in results[0].curve:
        fs = sorted(results[0].curve[m])
        vals = np.array([[r.curve[m][f] for f in fs] for r in results]) * 100
        ax.errorbar(fs, vals.mean(0), yerr=vals.std(0, ddof=1) if len(vals) > 1 else None, marker="o", capsize=3,
                    label=labels.get(m, m))
    ax.set_xlabel(f"share of {domain}'s training images")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("Fig. 4c analogue", fontsize=9)
    fig.tight_layout()
    return fig
