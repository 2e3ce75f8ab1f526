"""The chapter's figures: the transformations on local patches and full images (Fig. 4.3), the LCI pipeline
(Fig. 4.4), natural vs tile-shuffled + band-inpainted images (Fig. 4.1), the diagnostics, and kNN accuracy
against k and nearest-neighbour retrievals (Figs. 4.6, 4.7). Grids and the probe curve are the shared ch. 3
figures (:func:`thesislib.selfsup.plots.image_grid`, ``probe_plot``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from thesislib.methods.lci.config import LCIParams, class_names
from thesislib.methods.lci.evaluate import heldout_batch
from thesislib.methods.lci.tiles import tile_shuffle_steps
from thesislib.methods.lci.train import inpainter_inputs
from thesislib.methods.lci.transforms import crop_windows, draw, paste_windows
from thesislib.selfsup.plots import image_grid, probe_plot

__all__ = ["diagnostic_plot", "image_grid", "knn_plot", "lci_pipeline_rows", "probe_plot", "retrieval_plot",
           "transformation_rows"]


def transformation_rows(params: LCIParams, inpainter: nn.Module | None, images: Tensor, seed: int,
                        patch: int = 10) -> dict[str, Tensor]:
    """Fig. 4.3: for every class, the full transformed images (N, C, S, S) (centre crop, no augmentation) and a
    ``patch``-pixel local window of each (upscaled to S for display), rows named ``<class>`` / ``<class> (local)``."""
    inputs, _ = heldout_batch(params, inpainter, images, seed, augment=False)
    n, s = images.shape[0], params.image_size
    corner = torch.full((n, 2), (s - patch) // 2, dtype=torch.long, device=images.device)
    rows: dict[str, Tensor] = {}
    for k, name in enumerate(class_names(params.transforms)):
        full = inputs[k * n:(k + 1) * n]
        rows[name] = full
        local = crop_windows(full, corner, patch)
        rows[f"{name} (local)"] = torch.nn.functional.interpolate(local, size=s, mode="nearest")
    return rows


@torch.no_grad()
def lci_pipeline_rows(params: LCIParams, inpainter: nn.Module, images: Tensor, seed: int) -> dict[str, Tensor]:
    """Fig. 4.4: the patch e, the erased patch ê (noise in the centre), F's output r = F(ê), and the image with r
    pasted back (Eq. 4.4) beside the original; patches upscaled to the image side for display."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    draws = draw(params, images, gen)
    e, e_hat, _, _ = inpainter_inputs(params, images, draws)
    was = inpainter.training
    inpainter.eval()
    r = inpainter(e_hat)
    inpainter.train(was)
    side = images.shape[-1]

    def up(p: Tensor) -> Tensor:
        return torch.nn.functional.interpolate(p, size=side, mode="nearest")

    return {"image x": images, "patch e": up(e), "erased ê (Eq. 4.3 input)": up(e_hat), "F(ê)": up(r),
            "T_5 x (Eq. 4.4)": paste_windows(images, r, draws.lci_corners)}


def diagnostic_plot(diagnostics: Sequence[Mapping[str, Mapping[str, float]]], chance: Mapping[str, float],
                    title: str = "") -> Figure:
    """Held-out accuracy of the local and the global net per task, one dot per replicate, chance dashed."""
    tasks = list(diagnostics[0])
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 2, 2.8))
    for i, task in enumerate(tasks):
        for j, (kind, colour) in enumerate((("local", "tab:orange"), ("global", "tab:blue"))):
            vals = [d[task][kind] for d in diagnostics]
            x = i + (j - 0.5) * 0.3
            ax.scatter([x] * len(vals), vals, color=colour, alpha=0.7, label=kind if i == 0 else None)
            ax.hlines(sum(vals) / len(vals), x - 0.1, x + 0.1, color="k")
        ax.hlines(chance[task], i - 0.4, i + 0.4, color="grey", ls="--", lw=1)
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("held-out accuracy")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def knn_plot(accuracy: Mapping[str, Mapping[int, float]], chance: float | None = None, title: str = "") -> Figure:
    """Fig. 4.6: leave-one-out kNN accuracy (%) against k (log axis), one line per feature set ``{name: {k:
    accuracy in [0, 1]}}``; ``chance`` (a fraction) dashed."""
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for name, curve in accuracy.items():
        ks = sorted(curve)
        ax.plot(ks, [100 * curve[k] for k in ks], "o-", label=name, ms=4)
    if chance is not None:
        ax.axhline(100 * chance, color="grey", ls="--", lw=1, label="chance")
    ax.set_xscale("log")
    ks_all = sorted({k for curve in accuracy.values() for k in curve})
    ax.set_xticks(ks_all, [str(k) for k in ks_all])
    ax.minorticks_off()
    ax.set_xlabel("k")
    ax.set_ylabel("LOO kNN accuracy (%)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def retrieval_plot(dataset: Sequence[tuple[Tensor, Tensor]], labels: Tensor, queries: Sequence[int],
                   neighbours: Mapping[str, Tensor], title: str = "") -> Figure:
    """Fig. 4.7: for every query index, one row per feature set ``{name: (N, k) neighbour indices}``: the query
    image, then its k neighbours best first; a neighbour of another class than the query's is framed red.
    ``dataset`` yields ``(image (C, S, S) in [-1, 1], label)``; ``labels`` (N,)."""
    rows, names, wrong = [], [], []
    for q in queries:
        for name, idx in neighbours.items():
            picked = [int(q), *[int(j) for j in idx[q]]]
            rows.append(torch.stack([dataset[j][0] for j in picked]))
            names.append(f"{name}: {int(labels[q])}")
            wrong.append([False] + [bool(labels[j] != labels[q]) for j in picked[1:]])
    fig = image_grid(rows, names, title)
    n_cols = max(len(r) for r in rows)
    for r, flags in enumerate(wrong):
        for c, bad in enumerate(flags):
            ax = fig.axes[r * n_cols + c]
            colour, width = ("red", 2.5) if bad else (("black", 1.5) if c == 0 else ("lightgrey", 0.5))
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(width)
    return fig


__all__ += ["tiles_rows"]


@torch.no_grad()
def tiles_rows(params: LCIParams, inpainter: nn.Module, images: Tensor, seed: int) -> dict[str, Tensor]:
    """Fig. 4.1's rows for ``images`` (N, C, S, S), all from one generator seeded with ``seed``: the steps of
    :func:`thesislib.methods.lci.tiles.tile_shuffle_steps` (``natural``, ``tiles shuffled``, ``bands erased``,
    ``bands inpainted``; the band inpainter in eval mode)."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    was = inpainter.training
    inpainter.eval()
    try:
        return tile_shuffle_steps(images, inpainter, params.tiles_grid, params.tiles_band, params.noise_std, gen)[0]
    finally:
        inpainter.train(was)
