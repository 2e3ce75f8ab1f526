"""Figures of the chapter: the annotation interface (Fig. 3.2), eigenvalues, before/after maps and
boxes (Figs. 3.3 and 3.6) and the eigenvalue ranking curve (Fig. 3.5(b)).

Every function returns its matplotlib ``Figure`` (nothing is shown or saved here). Images are
(n, 3, H, W) in [0, 1]; maps are (n, h, w) and are drawn stretched over the image extent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from thesislib.methods.micro_annotation.spectral import SpectralResult


def _image(x: Tensor | np.ndarray) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    return np.clip(arr.transpose(1, 2, 0), 0, 1) if arr.ndim == 3 and arr.shape[0] == 3 else arr


def _map(m: Tensor | np.ndarray) -> np.ndarray:
    arr = m.detach().cpu().numpy() if isinstance(m, Tensor) else np.asarray(m, dtype=np.float64)
    arr = arr.astype(np.float64)
    return np.where(np.isfinite(arr), arr, np.nan)


def _box(ax: plt.Axes, box: np.ndarray, colour: str, width: float = 1.8, style: str = "-") -> None:
    if box is None or not np.all(np.isfinite(box)):
        return
    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                           linewidth=width, linestyle=style))


def _clean(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def annotation_panel(images: Tensor, heatmaps: Tensor, title: str = "", blocks: int = 2) -> Figure:
    """Fig. 3.2 analogue: for each image, the image and one heatmap H(X | C) per cluster C (Eq. 3.1),
    each cluster's heatmaps on one colour scale; the images are split into ``blocks`` side-by-side
    columns. ``images`` (n, 3, H, W), ``heatmaps`` (n, k, h, w)."""
    n, k = heatmaps.shape[0], heatmaps.shape[1]
    rows = int(np.ceil(n / blocks))
    cols = blocks * (k + 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.15 * rows + 0.5), squeeze=False)
    hm = _map(heatmaps)
    extent = (-0.5, images.shape[-1] - 0.5, images.shape[-2] - 0.5, -0.5)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, b = i % rows, i // rows
        ax = axes[r, b * (k + 1)]
        ax.imshow(_image(images[i]))
        for c in range(k):
            a = axes[r, b * (k + 1) + 1 + c]
            a.imshow(hm[i, c], cmap="magma", vmin=np.nanmin(hm[:, c]), vmax=np.nanmax(hm[:, c]),
                     extent=extent, interpolation="nearest")
            if r == 0:
                a.set_title(f"cluster {c}", fontsize=8)
        if r == 0:
            ax.set_title("image", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def eigenvalue_plot(clusterings: Mapping[str, SpectralResult], rho: float) -> Figure:
    """The M smallest eigenvalues lambda_1..lambda_M of every class (Algorithm 3, line 4) with the
    threshold rho; the legend gives the chosen k."""
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    for name, result in clusterings.items():
        ax.plot(np.arange(1, len(result.eigenvalues) + 1), result.eigenvalues, "o-", label=f"{name} (k={result.k})")
    ax.axhline(rho, color="grey", linestyle="--", linewidth=1)
    ax.text(1.0, rho + 0.02, f"rho = {rho}", color="grey", fontsize=8)
    ax.set_xlabel("i")
    ax.set_ylabel("lambda_i of L v = lambda D v")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cam_gallery(images: Tensor, maps: Sequence[Tensor], labels: Sequence[str],
                regions: Sequence[np.ndarray] | None = None,
                titles: Sequence[str] | None = None) -> Figure:
    """One row per image: the image, then each map in ``maps`` ((n, h, w) each, e.g. the CAM, a
    suppressed CAM) with the outline of ``regions[j]`` (n, H, W) when given."""
    n, m = images.shape[0], len(maps)
    fig, axes = plt.subplots(n, m + 1, figsize=(1.5 * (m + 1), 1.5 * n), squeeze=False)
    extent = (-0.5, images.shape[-1] - 0.5, images.shape[-2] - 0.5, -0.5)
    for i in range(n):
        axes[i, 0].imshow(_image(images[i]))
        axes[i, 0].set_ylabel(labels[i], fontsize=8)
        for j, mp in enumerate(maps):
            ax = axes[i, j + 1]
            ax.imshow(_image(images[i]))
            ax.imshow(_map(mp[i]), cmap="jet", alpha=0.5, extent=extent, interpolation="bilinear")
            if regions is not None:
                ax.contour(np.asarray(regions[j][i], dtype=float), levels=[0.5], colors="white", linewidths=1)
            if i == 0 and titles is not None:
                ax.set_title(titles[j], fontsize=8)
        for ax in axes[i]:
            _clean(ax)
    if titles is not None:
        axes[0, 0].set_title("image", fontsize=8)
    fig.tight_layout()
    return fig


def before_after_boxes(images: Tensor, boxes_before: np.ndarray, boxes_after: np.ndarray,
                       gt_boxes: Sequence[np.ndarray], cols: int = 6, title: str = "") -> Figure:
    """Fig. 3.6 analogue: ground truth (white, dashed), the baseline box (red) and the box after
    micro-annotation (green) on each image."""
    n = images.shape[0]
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        ax = axes[i // cols, i % cols]
        ax.imshow(_image(images[i]))
        for gt in np.asarray(gt_boxes[i]).reshape(-1, 4):
            _box(ax, gt, "white", 1.2, "--")
        _box(ax, boxes_before[i], "red")
        _box(ax, boxes_after[i], "cyan")
    fig.suptitle(title + "  (white dashed: ground truth, red: CAM, cyan: CAM + micro-annotation)", fontsize=9)
    fig.tight_layout()
    return fig


def ranking_plot(x: np.ndarray, y: np.ndarray, label: str = "") -> Figure:
    """Fig. 3.5(b): fraction of the total improvement vs fraction of classes annotated, classes in
    increasing order of lambda_2; the diagonal is a random order's expectation."""
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.plot(x, y, "o-", label=label or "sorted by lambda_2")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random order (expected)")
    ax.set_xlabel("fraction of classes annotated")
    ax.set_ylabel("fraction of the improvement")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gain_bars(names: Sequence[str], gains: np.ndarray) -> Figure:
    """Fig. 3.5(a) analogue: the change of per-class localization accuracy (points), sorted."""
    gains = np.asarray(gains, dtype=np.float64)
    order = np.argsort(gains)[::-1]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.25 * len(gains) + 1.5), 3.0))
    ax.bar(np.arange(len(gains)), gains[order], color=np.where(gains[order] >= 0, "tab:green", "tab:red"))
    ax.set_xticks(np.arange(len(gains)), [names[i] for i in order], rotation=90, fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("accuracy change (points)")
    fig.tight_layout()
    return fig
