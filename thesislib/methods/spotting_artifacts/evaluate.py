"""Evaluation of a trained replicate: per-layer linear probes of C against a random C, and how well C
spots held-out corruptions.

* :func:`probe_layers`: :func:`thesislib.eval.layer_probes` on the frozen conv layers of a
  discriminator (features average-pooled to ~``probe_dims``, standardised, softmax regression with
  weight decay; the Zhang et al. protocol of Tables 3.4-3.5 at smoke scale).
* :func:`random_discriminator`: the same architecture, randomly initialised (the "Random" rows).
* :func:`spotting_accuracy`: on held-out images with fresh masks (no history), C's real/corrupt
  accuracy and its mask-head accuracy on the corrupted images, through :func:`thesislib.engine.evaluate`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.engine import evaluate
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


class _Images(Dataset):
    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        return i, self.images[i]


class _Pair(nn.Module):
    """The generator and the discriminator as one module (for :func:`thesislib.engine.evaluate`)."""

    def __init__(self, gen: DamageRepair, disc: Discriminator) -> None:
        super().__init__()
        self.gen, self.disc = gen, disc


def spotting_accuracy(params: SpottingArtifactsParams, gen: DamageRepair, disc: Discriminator, images: Tensor,
                      device: torch.device, seed: int) -> dict[str, float]:
    """C on held-out ``images`` (N, C, S, S): ``acc`` over real (D(E(x)) or x) and corrupted copies,
    ``acc_real``, ``acc_fake``, and ``mask_acc`` of the mask head on the corrupted ones (0.5 threshold).
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
        logits, mask_logits = model.disc(torch.cat([real, fake]))
        b = x.shape[0]
        out = {"real": (logits[:b] > 0).float(), "fake": (logits[b:] < 0).float()}
        if mask_logits is not None:
            hit = ((mask_logits[b:] > 0).float() == omega[:, 0]).float()
            out["mask"] = hit.flatten(1).mean(dim=1)
        return out

    res = evaluate(_Pair(gen, disc), _Images(images), fn, device, batch_size=params.eval_batch_size, shard=False)
    acc_real, acc_fake = float(res["real"].mean()), float(res["fake"].mean())
    out = {"acc": (acc_real + acc_fake) / 2, "acc_real": acc_real, "acc_fake": acc_fake}
    if "mask" in res:
        out["mask_acc"] = float(res["mask"].mean())
    return out
