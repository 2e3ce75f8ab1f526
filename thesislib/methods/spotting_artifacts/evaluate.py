"""Evaluation of a trained replicate: per-layer linear probes of C against a random C, and how well C
spots held-out corruptions.

* :func:`probe_layers`: :func:`thesislib.eval.layer_probes` on the frozen conv layers of a
  discriminator (features average-pooled to ~``probe_dims``, standardised, softmax regression with
  weight decay; the Zhang et al. protocol of Tables 3.4-3.5 at smoke scale).
* :func:`random_discriminator`: the same architecture, randomly initialised (the "Random" rows).
* :func:`spotting_accuracy`: on held-out images with fresh masks (no history), C's real/corrupt
  accuracy on the repaired corruptions and on the same damage decoded without repair, and its mask
  head on the repaired corruptions (accuracy, and the prior-free rank AUC), through
  :func:`thesislib.engine.evaluate`. Both diagnose the adversarial game: C near 100 % on un-repaired
  damage but at chance on repaired damage means C learned the damage and R learned to hide it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from thesislib.engine import evaluate
from thesislib.eval.auc import binary_auc
from thesislib.eval.probe import layer_probes
from thesislib.methods.spotting_artifacts.config import SpottingArtifactsParams
from thesislib.methods.spotting_artifacts.model import DamageRepair, Discriminator, drop_mask
from thesislib.methods.spotting_artifacts.train import build_discriminator
from thesislib.repro import seed_everything

__all__ = ["probe_layers", "random_discriminator", "spotting_accuracy"]


def random_discriminator(params: SpottingArtifactsParams, seed: int) -> Discriminator:
    """A randomly initialised C (PyTorch's default init, seeded by ``seed``)."""
    seed_everything(seed)
    return build_discriminator(params)


def probe_layers(params: SpottingArtifactsParams, disc: Discriminator, train: Dataset, test: Dataset,
                 device: torch.device, seed: int) -> dict[str, float]:
    """``{layer: probe test accuracy}`` for every layer in ``params.probe_layers``."""
    out = layer_probes(disc.to(device), params.probe_layers, train, test, device, dims=params.probe_dims,
                       batch_size=params.eval_batch_size, epochs=params.probe_epochs,
                       weight_decay=params.probe_weight_decay, seed=seed)
    return {layer: float(r["test_acc"]) for layer, r in out.items()}


class _Pair(nn.Module):
    """The generator and the discriminator as one module (for :func:`thesislib.engine.evaluate`)."""

    def __init__(self, gen: DamageRepair, disc: Discriminator) -> None:
        super().__init__()
        self.gen, self.disc = gen, disc


def spotting_accuracy(params: SpottingArtifactsParams, gen: DamageRepair, disc: Discriminator, images: Tensor,
                      device: torch.device, seed: int) -> dict[str, float]:
    """C on held-out ``images`` (N, C, S, S): ``acc`` over real (D(E(x)) or x) and repaired corrupted
    copies, ``acc_real``, ``acc_fake``; ``acc_unrepaired``: the same over real and the same damage decoded
    without repair (D(φ̂)); ``mask_acc`` of the mask head on the repaired corruptions (0.5 threshold) and
    ``mask_auc``, its rank AUC for "kept" over all their latent positions (0.5: no localisation,
    whatever θ; :func:`thesislib.eval.binary_auc`).
    The masks are drawn from a generator seeded with ``seed`` per item index, so the result does not
    depend on the batch size."""
    gen, disc = gen.to(device), disc.to(device)
    grid = (params.grid, params.grid)
    masks = torch.stack([drop_mask(1, grid, params.drop_rate, "cpu",
                                   torch.Generator().manual_seed(seed * 100_003 + i))[0]
                         for i in range(images.shape[0])])

    def fn(model: nn.Module, batch: Any) -> dict[str, Tensor]:
        idx, x = batch
        omega = masks[idx.cpu()].to(x.device)
        real = model.gen.autoencode(x) if params.real_source == "autoencoded" else x
        fake = model.gen(x, omega)
        plain = model.gen.damaged(x, omega)
        logits, mask_logits = model.disc(torch.cat([real, fake, plain]))
        b = x.shape[0]
        out = {"real": (logits[:b] > 0).float(), "fake": (logits[b:2 * b] < 0).float(),
               "plain": (logits[2 * b:] < 0).float()}
        if mask_logits is not None:
            hit = ((mask_logits[b:2 * b] > 0).float() == omega[:, 0]).float()
            out["mask"] = hit.flatten(1).mean(dim=1)
            out["mask_logit"] = mask_logits[b:2 * b].flatten(1)
        return out

    indexed = TensorDataset(torch.arange(images.shape[0]), images)  # items (index, image)
    res = evaluate(_Pair(gen, disc), indexed, fn, device, batch_size=params.eval_batch_size, shard=False)
    acc_real, acc_fake = float(res["real"].mean()), float(res["fake"].mean())
    out = {"acc": (acc_real + acc_fake) / 2, "acc_real": acc_real, "acc_fake": acc_fake,
           "acc_unrepaired": (acc_real + float(res["plain"].mean())) / 2}
    if "mask" in res:
        out["mask_acc"] = float(res["mask"].mean())
        kept = masks[:, 0].flatten(1).to(res["mask_logit"].device)
        out["mask_auc"] = float(binary_auc(res["mask_logit"], kept)) if 0 < float(kept.mean()) < 1 else 0.5
    return out
