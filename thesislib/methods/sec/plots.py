"""Figures of the SEC chapter (thesis Figs. 2.1-2.7 at the scale of the run).

Label maps are drawn with the PASCAL VOC colour map (:func:`thesislib.data.voc.colorize`):
0 background black, 1 dark red, 2 green, 3 olive, 4 dark blue, ...; 255 (no cue / void) cream.
Every function returns the matplotlib figure and leaves showing it to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor

from thesislib.data.voc import VOC_PALETTE, colorize
from thesislib.methods.sec.experiments import RunResult, by_name
from thesislib.replication import mean_sd


def to_image(rgb: Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) 0-255 tensor (or (H, W, 3) array) -> (H, W, 3) uint8 for ``imshow``."""
    if isinstance(rgb, Tensor):
        rgb = rgb.detach().cpu().float()
        rgb = rgb.permute(1, 2, 0).numpy() if rgb.shape[0] == 3 else rgb.numpy()
    return np.clip(np.asarray(rgb), 0, 255).astype(np.uint8)


def _show(ax: Any, picture: np.ndarray, title: str = "", **kwargs: Any) -> None:
    ax.imshow(picture, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def legend_handles(class_names: Sequence[str], extra_void: str | None = "no cue / void") -> list[Patch]:
    handles = [Patch(color=VOC_PALETTE[i] / 255.0, label=name) for i, name in enumerate(class_names)]
    if extra_void:
        handles.append(Patch(color=VOC_PALETTE[255] / 255.0, label=extra_void))
    return handles


def image_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], class_names: Sequence[str] | None = None,
               row_labels: Sequence[str] | None = None, size: float = 1.6, suptitle: str = "") -> Figure:
    """A grid of pictures: ``rows[i][j]`` is an RGB image (H, W, 3), an integer label map (drawn
    with the VOC colours) or a float map (drawn as a heat map, brighter = larger)."""
    n_rows, n_cols = len(rows), len(titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for j, picture in enumerate(row):
            picture = np.asarray(picture.detach().cpu() if isinstance(picture, Tensor) else picture)
            title = titles[j] if i == 0 else ""
            if picture.ndim == 2 and np.issubdtype(picture.dtype, np.floating):
                _show(axes[i][j], picture, title, cmap="magma")
            else:
                _show(axes[i][j], picture if picture.ndim == 3 else colorize(picture), title)
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i], fontsize=8)
    if class_names is not None:
        fig.legend(handles=legend_handles(class_names), loc="lower center", ncol=min(len(class_names) + 1, 7),
                   fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout(rect=(0, 0.05 if class_names is not None else 0, 1, 1))
    return fig


def plot_gwrp_weights(n: int, decays: Mapping[str, float], marks: Sequence[float] = (0.1, 0.3)) -> Figure:
    """GWRP weights d^(j-1)/Z by rank j (left) and their cumulative mass (right) for n locations."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    j = np.arange(n)
    for label, d in decays.items():
        w = np.power(d, j) if d > 0 else (j == 0).astype(float)
        w = w / w.sum()
        ax1.plot(j + 1, w, label=f"{label} (d = {d:.4g})")
        ax2.plot((j + 1) / n, np.cumsum(w), label=label)
    ax1.set_yscale("log")
    ax1.set_ylim(1e-6, 1.5)
    ax1.set_xlabel("rank j of the location")
    ax1.set_ylabel("weight of the j-th best score")
    ax1.legend(fontsize=8)
    for p in marks:
        ax2.axvline(p, color="grey", lw=0.8, ls=":")
    ax2.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax2.set_xlabel("top fraction of the locations")
    ax2.set_ylabel("share of the pooled score")
    ax2.set_title(f"n = {n} locations", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ablation_bars(results: Sequence[RunResult], names: Sequence[str], title: str = "") -> Figure:
    """mIoU (%) without and with the test-time CRF per configuration, mean ± sd over replicates
    (dots: single replicates); the foreground fraction on the right."""
    groups = by_name(results)
    names = [n for n in names if n in groups]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(names))
    for offset, metric, label in ((-0.2, "miou_nocrf", "without CRF"), (0.2, "miou", "with test-time CRF")):
        vals = [[r.metrics[metric] for r in groups[n].values()] for n in names]
        means = [mean_sd(v)[0] for v in vals]
        sds = [0.0 if len(v) < 2 else mean_sd(v)[1] for v in vals]
        ax1.bar(x + offset, means, 0.38, yerr=sds, label=label, capsize=3, alpha=0.85)
        for xi, v in zip(x, vals):
            ax1.scatter([xi + offset] * len(v), v, s=8, color="k", zorder=3)
    ax1.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax1.set_ylabel("mIoU (%)")
    ax1.legend(fontsize=8)
    vals = [[r.metrics["fg_fraction"] for r in groups[n].values()] for n in names]
    ax2.bar(x, [mean_sd(v)[0] for v in vals], 0.6, yerr=[0.0 if len(v) < 2 else mean_sd(v)[1] for v in vals],
            capsize=3, color="tab:green", alpha=0.8)
    ax2.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax2.set_ylabel("predicted foreground (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def per_image_iou(pred: Tensor, truth: Tensor, num_labels: int, ignore_index: int = 255) -> Tensor:
    """(B,) mean IoU of each image over the classes present in its truth or prediction."""
    valid = truth != ignore_index
    p = torch.where(valid, pred, torch.full_like(pred, num_labels))
    t = torch.where(valid, truth, torch.full_like(truth, num_labels))
    p1 = torch.nn.functional.one_hot(p, num_labels + 1)[..., :num_labels].flatten(1, 2).bool()
    t1 = torch.nn.functional.one_hot(t, num_labels + 1)[..., :num_labels].flatten(1, 2).bool()
    inter = (p1 & t1).sum(1).float()
    union = (p1 | t1).sum(1).float()
    iou = inter / union.clamp_min(1)
    return (iou * (union > 0)).sum(1) / (union > 0).sum(1).clamp_min(1)
