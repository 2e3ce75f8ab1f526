"""Figures of the G-softmax chapter: the transfer curve, the paper's Figs. 3, 5 and 6, the multi-label
procedures, learned-Gaussian trajectories and the learning-rate schedules. Every function returns a
matplotlib Figure (titles and axis labels set); ``results`` arguments map a display label to the
:class:`~thesislib.methods.gsoftmax.train.GSoftmaxResult` runs (one per seed) of one method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from thesislib.methods.gsoftmax.evaluate import MEASURES
from thesislib.methods.gsoftmax.experiments import Correlation
from thesislib.methods.gsoftmax.transform import gaussian_transform, phi
from thesislib.replication import mean_sd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from thesislib.methods.gsoftmax.config import RunSpec
    from thesislib.methods.gsoftmax.train import GSoftmaxResult

MEASURE_LABELS = {"compactness": "compactness 1/σ", "separability": "separability (sym. KL)",
                  "ratio": "ratio sep./σ", "gap": "gap (μ₊−μ₋)/σ₊ (scale-free)"}


def display_name(config: RunSpec) -> str:
    """``softmax``, ``G-softmax (λ=1)``, ``G-softmax (λ=1, μ=0, σ=0.5)``, ``L-softmax (m=2)``."""
    if config.method == "softmax":
        return "softmax"
    if config.method == "lsoftmax":
        return f"L-softmax (m={config.params.lsoftmax_margin})"
    init = "" if (config.mu_init, config.sigma_init) == (0.0, 1.0) else \
        f", μ={config.mu_init:g}, σ={config.sigma_init:g}"
    return f"G-softmax (λ={config.lam:g}{init})"


def _colors(n: int) -> list[str]:
    return [f"C{i % 10}" for i in range(n)]


def plot_transfer_curves(lams: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
                         inits: Sequence[tuple[float, float]] = ((0.0, 1.0), (0.0, 0.5), (0.0, 5.0), (-2.0, 1.0)),
                         x_range: tuple[float, float] = (-6.0, 6.0)) -> Figure:
    """``z = x + lam Phi(x; mu, sigma)`` (Eq. 3's softmax argument) and its slope ``1 + lam phi``:
    top row for several lam at (mu, sigma) = (0, 1), bottom row for several (mu, sigma) at lam = 1."""
    import matplotlib.pyplot as plt

    x = torch.linspace(*x_range, 601, dtype=torch.float64)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    rows = [[(f"λ={lam:g}", lam, 0.0, 1.0) for lam in lams],
            [(f"μ={mu:g}, σ={sigma:g}", 1.0, mu, sigma) for mu, sigma in inits]]
    titles = ["varying λ (μ=0, σ=1)", "varying (μ, σ) (λ=1)"]
    for row, curves, title in zip(axes, rows, titles):
        for label, lam, mu, sigma in curves:
            row[0].plot(x, gaussian_transform(x, mu, sigma, lam) - x, label=label)
            row[1].plot(x, 1.0 + lam * phi(x, mu, sigma), label=label)
        row[0].set(title=f"distribution term z − x = λΦ(x; μ, σ), {title}", xlabel="logit x", ylabel="z − x")
        row[1].set(title=f"slope dz/dx = 1 + λφ(x; μ, σ), {title}", xlabel="logit x", ylabel="dz/dx")
        for ax in row:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    return fig


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def plot_true_vs_imposter(runs: Mapping[str, GSoftmaxResult], class_index: int, class_name: str) -> Figure:
    """Fig. 3: for the test images of one class, the true-class logit ``x_c`` against its probability
    ``p_c`` (p = softmax of z) and the pooled imposter logits ``x_j, j != c`` against ``p_j``, one
    panel per method (one run each)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.6), constrained_layout=True, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (label, result) in zip(axes, runs.items()):
        x, z, y = (result.outputs[k] for k in ("x", "z", "labels"))
        mine = y == class_index
        p = _softmax(z[mine].astype(np.float64))
        xs = x[mine]
        other = np.ones_like(xs, dtype=bool)
        other[:, class_index] = False
        ax.scatter(xs[other], p[other], s=6, alpha=0.25, color="C7", label="imposter logits x_j, j ≠ c")
        ax.scatter(xs[:, class_index], p[:, class_index], s=10, alpha=0.8, color="C3",
                   label=f"true-class logit x_c ('{class_name}')")
        ax.set(title=label, xlabel="logit x (before the G-softmax term)", ylabel="softmax probability p")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="center left")
    fig.suptitle(f"Test images of class '{class_name}': true-class vs imposter logits (cf. paper Fig. 3)")
    return fig


def _normal_pdf(t: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _bars(ax, labels: Sequence[str], groups: Sequence[Sequence[float]], title: str) -> None:
    stats = [mean_sd(g) for g in groups]
    ax.bar(range(len(labels)), [m for m, _ in stats], yerr=[0 if math.isnan(s) else s for _, s in stats],
           color=_colors(len(labels)), capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(title=title)
    ax.grid(axis="y", alpha=0.3)


def plot_logit_gaussians(runs: Mapping[str, Sequence[GSoftmaxResult]], class_index: int, class_name: str) -> Figure:
    """Fig. 5: Gaussians fitted to the true-class and to the imposter logits of one class (first run of
    each method), and bars of that class's compactness, separability, ratio and scale-free gap
    (mean ± sd over the seeds)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 3.8), constrained_layout=True)
    grid = fig.add_gridspec(1, 6)
    ax = fig.add_subplot(grid[0, :2])
    colors = _colors(len(runs))
    lo, hi = math.inf, -math.inf
    for seeds in runs.values():
        pc = seeds[0].per_class
        for key in ("pos", "neg"):
            mu, sd = pc[f"emp_mu_{key}"][class_index], pc[f"emp_sigma_{key}"][class_index]
            lo, hi = min(lo, mu - 4 * sd), max(hi, mu + 4 * sd)
    t = np.linspace(lo, hi, 400)
    for color, (label, seeds) in zip(colors, runs.items()):
        pc = seeds[0].per_class
        ax.plot(t, _normal_pdf(t, pc["emp_mu_pos"][class_index], pc["emp_sigma_pos"][class_index]), color=color,
                label=f"{label}, true class")
        ax.plot(t, _normal_pdf(t, pc["emp_mu_neg"][class_index], pc["emp_sigma_neg"][class_index]), color=color,
                ls="--", label=f"{label}, imposters")
    ax.set(title=f"Gaussian fits of the test logits, class '{class_name}'", xlabel="logit x", ylabel="density")
    ax.legend(fontsize=7)
    labels = list(runs)
    for i, measure in enumerate(MEASURES):
        groups = [[r.per_class[f"emp_{measure}"][class_index] for r in seeds] for seeds in runs.values()]
        _bars(fig.add_subplot(grid[0, 2 + i]), labels, groups, MEASURE_LABELS[measure])
    fig.suptitle("Compactness and separability of one class's logits (cf. paper Fig. 5); bars: mean ± sd over seeds")
    return fig


def plot_per_class_measures(runs: Mapping[str, Sequence[GSoftmaxResult]], class_names: Sequence[str],
                            max_classes: int = 10) -> Figure:
    """Fig. 6 (Fig. 7 for CIFAR-100): per-class empirical compactness, separability, ratio and gap on the
    test set for the first ``max_classes`` classes, one bar per method (mean over seeds, sd as error bar)."""
    import matplotlib.pyplot as plt

    m = min(len(class_names), max_classes)
    class_names = class_names[:m]
    fig, axes = plt.subplots(len(MEASURES), 1, figsize=(max(8, 0.9 * m), 2.4 * len(MEASURES)),
                             constrained_layout=True, sharex=True)
    width = 0.8 / len(runs)
    for ax, measure in zip(axes, MEASURES):
        for j, (color, (label, seeds)) in enumerate(zip(_colors(len(runs)), runs.items())):
            table = np.asarray([r.per_class[f"emp_{measure}"][:m] for r in seeds], dtype=float)
            sd = table.std(0, ddof=1) if len(seeds) > 1 else None
            ax.bar(np.arange(m) + (j - (len(runs) - 1) / 2) * width, table.mean(0), width, yerr=sd,
                   color=color, label=label, capsize=2)
        ax.set(ylabel=MEASURE_LABELS[measure])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=len(runs))
    axes[-1].set_xticks(range(m), class_names, rotation=45 if m > 12 else 0)
    axes[-1].set(xlabel="class")
    axes[0].set_title("Per-class measures of the test-set logits (cf. paper Fig. 6)")
    return fig


def plot_gaussian_trajectories(result: GSoftmaxResult, class_names: Sequence[str]) -> Figure:
    """The learned mu and sigma of every class after each epoch (multi-label: the positive logits)."""
    import matplotlib.pyplot as plt

    epochs = np.asarray(result.gaussians["epoch"])
    step = 2 if result.config.multilabel else 1
    mu = np.asarray(result.gaussians["mu"])[:, ::step]
    sigma = np.asarray(result.gaussians["sigma"])[:, ::step]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    for ax, values, name in zip(axes, (mu, sigma), ("μ", "σ")):
        for c in range(values.shape[1]):
            ax.plot(epochs, values[:, c], label=class_names[c] if len(class_names) <= 10 else None)
        ax.set(title=f"learned {name} per class, {display_name(result.config)}, seed {result.config.seed}",
               xlabel="epoch", ylabel=name)
        ax.grid(alpha=0.3)
    if len(class_names) <= 10:
        axes[1].legend(fontsize=7, ncol=2)
    return fig


def plot_per_class_ap(baseline: GSoftmaxResult, variants: Mapping[str, GSoftmaxResult]) -> Figure:
    """Per-class AP of each G-softmax variant against the softmax baseline (the data of Table V's test)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5), constrained_layout=True)
    base = np.asarray(baseline.per_class["ap"])
    for color, (label, result) in zip(_colors(len(variants) + 1)[1:], variants.items()):
        ax.scatter(base, np.asarray(result.per_class["ap"]), s=18, color=color, label=label)
    lo, hi = np.nanmin(base) - 2, 100.5
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set(title="Per-class AP: G-softmax variants vs softmax", xlabel="AP, softmax (%)",
           ylabel="AP, G-softmax variant (%)", xlim=(lo, hi), ylim=(lo, hi))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_correlations(correlations: Sequence[Correlation], variant_labels: Sequence[str],
                      class_names: Sequence[str]) -> Figure:
    """Table VI's procedure: the chosen class's measure against its AP across the variants."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(correlations), figsize=(4.3 * len(correlations), 4.2), constrained_layout=True)
    source = {"emp": "empirical", "learned": "learned"}
    for ax, c in zip(np.atleast_1d(axes), correlations):
        if c.class_index < 0:
            ax.set(title=f"{c.measure}: no class with finite values", xlabel=MEASURE_LABELS[c.measure])
            continue
        for color, label, v, a in zip(_colors(len(variant_labels) + 1)[1:], variant_labels, c.values, c.aps):
            ax.scatter(v, a, color=color, s=30, label=label)
        ax.set(title=f"class '{class_names[c.class_index]}': ρ = {c.rho:.2f}, p = {c.p:.3f}",
               xlabel=f"{source.get(c.source, c.source)} {MEASURE_LABELS[c.measure]}", ylabel="AP (%)")
        ax.grid(alpha=0.3)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=8)
    fig.suptitle(f"Table VI procedure, {source.get(correlations[0].source, '')} measures "
                 f"(n = {len(variant_labels)} variants, class picked after the fact)")
    return fig


def plot_schedules(schedules: Mapping[str, tuple[object, int]], lr0: float = 0.1) -> Figure:
    """Learning rate per epoch of each ``label -> (schedule with durations in epochs, epochs)``, log scale."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4), constrained_layout=True)
    for label, (schedule, epochs) in schedules.items():
        n = np.arange(epochs)
        ax.plot(n + 1, [lr0 * schedule(int(e)) for e in n], label=label)
    ax.set(yscale="log", title="Learning-rate schedules of the full-scale CIFAR runs", xlabel="epoch",
           ylabel="learning rate")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig
