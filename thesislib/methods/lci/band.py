"""Fig. 4.1's band inpainter F_b: the chapter's F and D architectures trained adversarially on the band task alone.

The thesis builds Fig. 4.1's images by "training a network to inpaint a band of pixels across the tiles through
adversarial training" (footnote 2), "independently of either feature" (the caption): no classifier takes part. So
F_b is not the chapter's F (trained jointly with C, against C's Eq. 4.1 loss) but a fresh :class:`Inpainter` with
its own :class:`PatchDiscriminator` D_b, trained through the engine's multi-optimiser step (:func:`band_update`) on
the unlabelled images. One step on a batch x (B, C, L, L):

1. random ``image_size`` windows xs (B, C, S, S) of x (C's input side; uniform corners), the tile draws of
   :func:`thesislib.methods.lci.tiles.draw_tiles` (non-identity permutations π, noise z), M the band mask;
   s = shuffle(xs, π), ê = s ⊙ (1 − M) + z ⊙ M (F_b's input), out = s ⊙ (1 − M) + F_b(ê) ⊙ M;
2. ``disc``: one Adam step of D_b on the hinge loss, real pairs (xs, xs ⊙ (1 − M) + z ⊙ M) (natural images, whose
   bands are natural) against the inpainted pairs (out, ê);
3. ``inp``: one Adam step of F_b on the chapter's L_F without C or the autoencoding term: the hinge generator term
   −E[D_b(out, ê)] + λ_border · mean((F_b(ê) − s)² off the bands) (:func:`thesislib.methods.lci.losses.inpainter_loss`
   with ``l_ssl`` None and λ_AE 0).

:func:`band_inpainter` trains F_b once per run (not per replicate) from the run's base seed + :data:`BAND_SEED_OFFSET`
and caches it in this process and, when the run has a directory (``output_dir``, else ``checkpoint_dir``), as
``<dir>/band_inpainter/<key>.pt``, the key a hash of every parameter F_b depends on and the seed, so the replicates and
a resumed run reuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from thesislib.engine import History, OptimizerSlot, Trainer, train_config
from thesislib.engine.distributed import rank_generator, unwrap
from thesislib.engine.update import Update
from thesislib.methods.lci.config import LCIParams, replicate
from thesislib.methods.lci.data import chapter_data
from thesislib.methods.lci.losses import discriminator_loss, inpainter_loss
from thesislib.methods.lci.model import Inpainter, PatchDiscriminator
from thesislib.methods.lci.tiles import band_inpaint, band_mask, draw_tiles, shuffle_tiles
from thesislib.methods.lci.transforms import crop_windows, erase, random_windows
from thesislib.repro import seed_everything

__all__ = ["BAND_KEY_FIELDS", "BAND_SEED_OFFSET", "band_cache_key", "band_inpainter", "band_update",
           "train_band_inpainter"]

BAND_SEED_OFFSET = 1000
"""F_b trains from the run's base seed + this (its draws differ from every replicate's, seeds base..base+n−1)."""

BAND_KEY_FIELDS = ("data", "data_root", "load_size", "image_size", "n_unlabelled", "noise_std", "inpainter_width",
                   "lambda_border", "gan_lr", "gan_beta1", "batch_size", "tiles_grid", "tiles_band",
                   "tiles_inpainter_iterations", "amp")
"""The parameters F_b depends on (with the seed): its cache key."""

_CACHE: dict[str, Inpainter] = {}


def band_update(params: LCIParams) -> Callable[[Update, list[Any]], Mapping[str, Tensor]]:
    """The engine update of F_b (slot ``inp``) and D_b (slot ``disc``): steps 1-3 of the module docstring."""
    generators: dict[torch.device, torch.Generator | None] = {}

    def update(u: Update, batches: list[Any]) -> dict[str, Tensor]:
        x = torch.cat([b[0] if isinstance(b, (list, tuple)) else b for b in batches])
        if x.device not in generators:
            generators[x.device] = rank_generator(params.seed, x.device)
        gen = generators[x.device]
        side = params.image_size
        xs = crop_windows(x, random_windows(x.shape[0], x.shape[-1], side, x.device, gen), side)
        draws = draw_tiles(xs, params.tiles_grid, params.noise_std, gen)
        mask = band_mask(side, params.tiles_grid, params.tiles_band, x.device).to(x.dtype)
        s = shuffle_tiles(xs, draws.perms, params.tiles_grid)
        e_hat, real_hat = erase(s, mask, draws.noise), erase(xs, mask, draws.noise)
        f, d = u.models["inp"], u.models["disc"]
        with torch.no_grad():
            fake = band_inpaint(s, mask, draws.noise, f)
        with u.phase("disc"):
            scores = d(torch.cat([xs, fake]), torch.cat([real_hat, e_hat]))
            u.backward(discriminator_loss(scores[: x.shape[0]], scores[x.shape[0]:]))
        u.step("disc")
        with u.phase("inp"):
            r = f(e_hat)
            out = s * (1.0 - mask) + r * mask
            empty = xs[:0]
            loss, terms = inpainter_loss(d(out, e_hat), r, s, mask, empty, empty, None, params.lambda_border, 0.0)
            u.backward(loss)
        u.step("inp")
        return {"d_real": scores[: x.shape[0]].detach().mean(), "d_fake": scores[x.shape[0]:].detach().mean(),
                **{f"f_{k}": v.detach() for k, v in terms.items()}}

    return update


def train_band_inpainter(params: LCIParams, images: Any, device: torch.device) -> tuple[Inpainter, History]:
    """F_b and D_b (widths ``inpainter_width``) trained for ``tiles_inpainter_iterations`` steps of ``batch_size``
    images of ``images`` (items (C, L, L) in [-1, 1]) with Adam(``gan_lr``, (``gan_beta1``, 0.999)), seeded from
    ``params.seed``; returns F_b (eval mode, frozen) and the history."""
    seed_everything(params.seed)
    nets: dict[str, nn.Module] = {"inp": Inpainter(params.in_channels, params.inpainter_width),
                                  "disc": PatchDiscriminator(params.in_channels, params.inpainter_width)}
    slots = {name: OptimizerSlot(torch.optim.Adam(net.parameters(), lr=params.gan_lr,
                                                  betas=(params.gan_beta1, 0.999)), (name,))
             for name, net in nets.items()}
    checkpoint = f"{params.checkpoint_dir}/band" if params.checkpoint_dir else None
    config = train_config(params, batch_size=params.batch_size, iterations=params.tiles_inpainter_iterations,
                          checkpoint_dir=checkpoint, log_every=max(1, params.tiles_inpainter_iterations // 20),
                          channels_last=False)
    trainer = Trainer(nets, slots, images, band_update(params), config, device)
    history = trainer.fit()
    f = unwrap(trainer.models["inp"])
    assert isinstance(f, Inpainter)
    return f.eval().requires_grad_(False), history


def band_cache_key(params: LCIParams) -> str:
    """A hash of :data:`BAND_KEY_FIELDS` and the run's base ``seed``: F_b's identity."""
    fields = {name: getattr(params, name) for name in BAND_KEY_FIELDS} | {"seed": params.seed}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def band_inpainter(params: LCIParams, device: torch.device) -> Inpainter:
    """The run's F_b (``params``: the run's, with its base ``seed``): from this process's cache, else from
    ``<run dir>/band_inpainter/<key>.pt``, else trained (:func:`train_band_inpainter` on the unlabelled images of
    the split of seed ``seed`` + :data:`BAND_SEED_OFFSET`, from that seed) and stored in both."""
    key = band_cache_key(params)
    if key not in _CACHE:
        run_dir = params.output_dir or params.checkpoint_dir
        path = Path(run_dir) / "band_inpainter" / f"{key}.pt" if run_dir else None
        if path is not None and path.is_file():
            net = Inpainter(params.in_channels, params.inpainter_width)
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            _CACHE[key] = net.eval().requires_grad_(False)
        else:
            seed = params.seed + BAND_SEED_OFFSET
            rep = replicate(params, seed)
            _CACHE[key] = train_band_inpainter(rep, chapter_data(rep, seed).unlabelled, device)[0].cpu()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(_CACHE[key].state_dict(), path)
    return _CACHE[key].to(device)
