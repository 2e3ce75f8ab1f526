"""The chapter's figures: the transformations on local patches and full images (Fig. 4.3), the LCI pipeline
(Fig. 4.4), and the diagnostics. Grids and the probe curve are the shared ch. 3 figures
(:func:`thesislib.selfsup.plots.image_grid`, ``probe_plot``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from thesislib.methods.lci.config import LCIParams, class_names
from thesislib.methods.lci.evaluate import heldout_batch
from thesislib.methods.lci.train import inpainter_inputs
from thesislib.methods.lci.transforms import crop_windows, draw, paste_windows
from thesislib.selfsup.plots import image_grid, probe_plot

__all__ = ["diagnostic_plot", "image_grid", "lci_pipeline_rows", "probe_plot", "transformation_rows"]


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
