"""The self-supervised training through :mod:`thesislib.engine`, and the torchrun entry point.

:func:`lci_update` is the engine's multi-optimiser update of one step on a batch x (B, C, L, L):

1. draw the step's random choices (:func:`thesislib.methods.lci.transforms.draw`);
2. ``cls``: F's patches under ``no_grad``, C's batch of all K transformations (:func:`assemble`), one AdamW
   step of C on L_SSL (Eq. 4.1);
3. ``disc``: one Adam step of D on the hinge loss, real pairs (e, ê) against inpainted pairs (r, ê);
4. ``inp``: F run again with gradients on the same inputs, the same batch rebuilt with its patches, one Adam
   step of F on L_F = hinge generator term + λ_border · border MSE + λ_AE · autoencoding MSE − L_SSL (C after its
   step, in train mode: its BatchNorm normalises with the batch's statistics, but its running statistics are
   restored afterwards, :func:`kept_batchnorm_statistics`, so they move once per step).

Without LCI among the transformations only step 2 runs. With ``frozen_inpainter`` (Table 4.1 (d)) the run has
two stages: F and D alone (steps 3-4 without C's term), then C alone with F frozen (step 2).

:func:`run_training` trains in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes of this
module, reading rank 0's weights back::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.lci.train --params p.json --output DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.device import resolve_device
from thesislib.engine import Cosine, History, OptimizerSlot, Trainer, launch, make_scheduler
from thesislib.engine.distributed import distributed_session, rank_generator, save_main_outputs, unwrap
from thesislib.engine.update import Update
from thesislib.methods.lci.config import LCIParams, engine_config, lci_config
from thesislib.methods.lci.data import chapter_data
from thesislib.methods.lci.losses import discriminator_loss, inpainter_loss, ssl_loss
from thesislib.methods.lci.model import Inpainter, PatchDiscriminator, build_classifier
from thesislib.methods.lci.transforms import Draws, assemble, crop_windows, draw, erase, erase_mask
from thesislib.repro import seed_everything, write_json

__all__ = ["build_networks", "inpainter_inputs", "kept_batchnorm_statistics", "lci_update", "main", "run_training",
           "train_lci"]


def build_networks(params: LCIParams) -> dict[str, nn.Module]:
    """``{"cls": C}`` plus ``{"inp": F, "disc": D}`` when LCI is among the transformations."""
    nets: dict[str, nn.Module] = {"cls": build_classifier(params)}
    if params.uses_inpainter:
        nets["inp"] = Inpainter(params.in_channels, params.inpainter_width)
        nets["disc"] = PatchDiscriminator(params.in_channels, params.inpainter_width)
    return nets


def _images(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def inpainter_inputs(params: LCIParams, x: Tensor, draws: Draws) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(e (B, C, p, p), ê, m (1, 1, p, p), e_ae (h, C, p, p)): LCI's patches, their erased form and the patches
    to autoencode."""
    p = params.patch_size
    m = erase_mask(p, params.border, x.device).to(x.dtype)
    e = crop_windows(x, draws.lci_corners, p)
    e_ae = crop_windows(x[: draws.ae_corners.shape[0]], draws.ae_corners, p)
    return e, erase(e, m, draws.noise.to(x.dtype)), m, e_ae


@contextlib.contextmanager
def kept_batchnorm_statistics(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in train mode (batch statistics normalise) but restore every BatchNorm's running mean,
    variance and ``num_batches_tracked`` on exit (after the backward pass, which reads them): F's −L_SSL pass
    through C must not take a second momentum step of the statistics the eval-mode probes use (review #7)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: b.clone() for k, b in m.named_buffers(recurse=False) if b is not None} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, bufs in zip(norms, saved):
                for k, b in bufs.items():
                    getattr(m, k).copy_(b)


def lci_update(params: LCIParams, frozen: nn.Module | None = None
               ) -> Callable[[Update, list[Any]], Mapping[str, Tensor]]:
    """The alternating update (see the module docstring). ``frozen``: a pre-trained F used without training
    (Table 4.1 (d)'s second stage). The slots present decide which steps run: ``cls``, ``disc``, ``inp``."""
    generators: dict[torch.device, torch.Generator | None] = {}

    def update(u: Update, batches: list[Any]) -> dict[str, Tensor]:
        slots = u.trainer.slots
        x = torch.cat([_images(b) for b in batches])
        if x.device not in generators:
            generators[x.device] = rank_generator(params.seed, x.device)
        draws = draw(params, x, generators[x.device])
        metrics: dict[str, Tensor] = {}
        e = e_hat = m = e_ae = None
        if params.uses_inpainter:
            e, e_hat, m, e_ae = inpainter_inputs(params, x, draws)
        inp = frozen if frozen is not None else u.models.get("inp")

        def patches() -> tuple[Tensor | None, Tensor | None]:
            if inp is None:
                return None, None
            out = inp(torch.cat([e_hat, e_ae]))
            return out[: x.shape[0]], out[x.shape[0]:]

        with torch.no_grad():  # F is unchanged until its own step: one pass serves C's and D's steps
            r, a = patches()
        if "cls" in slots:
            inputs, labels = assemble(params, x, draws, r, a)
            with u.phase("cls"):
                logits = u.models["cls"](inputs)
                loss = ssl_loss(logits, labels)
                u.backward(loss)
            u.step("cls")
            hit = (logits.detach().argmax(1) == labels).float()
            metrics["ssl_acc"] = hit.mean()
            if params.uses_inpainter:
                metrics["lci_acc"] = hit[-x.shape[0]:].mean()
        if "disc" in slots:
            with u.phase("disc"):
                scores = u.models["disc"](torch.cat([e, r]), torch.cat([e_hat, e_hat]))
                d_loss = discriminator_loss(scores[: x.shape[0]], scores[x.shape[0]:])
                u.backward(d_loss)
            u.step("disc")
            metrics["d_real"] = scores[: x.shape[0]].detach().mean()
            metrics["d_fake"] = scores[x.shape[0]:].detach().mean()
        if "inp" in slots:
            keep = kept_batchnorm_statistics(u.models["cls"]) if "cls" in u.models else contextlib.nullcontext()
            with keep, u.phase("inp"):  # C's running statistics move in its own step only
                r, a = patches()
                d_fake = u.models["disc"](r, e_hat)
                l_ssl = None
                if params.adversarial_c and "cls" in u.models:
                    inputs, labels = assemble(params, x, draws, r, a)
                    l_ssl = ssl_loss(u.models["cls"](inputs), labels)
                loss, terms = inpainter_loss(d_fake, r, e, m, a, e_ae, l_ssl, params.lambda_border, params.lambda_ae)
                u.backward(loss)
            u.step("inp")
            metrics.update({f"f_{k}": v.detach() for k, v in terms.items()})
        return metrics

    return update


def _optimisers(params: LCIParams, nets: Mapping[str, nn.Module]) -> dict[str, OptimizerSlot]:
    """C: AdamW(lr, (beta1, beta2), weight_decay) cosine-annealed to lr_end; F, D: Adam(gan_lr, (gan_beta1, 0.999))."""
    slots: dict[str, OptimizerSlot] = {}
    if "cls" in nets:
        opt = torch.optim.AdamW(nets["cls"].parameters(), lr=params.lr, betas=(params.beta1, params.beta2),
                                weight_decay=params.weight_decay)
        end = params.lr_end / params.lr if params.lr > 0 else 1.0
        slots["cls"] = OptimizerSlot(opt, ("cls",), make_scheduler(opt, Cosine(params.iterations, end=end)))
    for name in ("disc", "inp"):
        if name in nets:
            opt = torch.optim.Adam(nets[name].parameters(), lr=params.gan_lr, betas=(params.gan_beta1, 0.999))
            slots[name] = OptimizerSlot(opt, (name,))
    return slots


def train_lci(params: LCIParams, images: Dataset, device: torch.device) -> tuple[dict[str, nn.Module], History]:
    """Train C (and F, D) on ``images`` (items float (C, L, L) in [-1, 1]); seeded from ``params.seed``.
    Returns the plain networks by name and the history of the (last) stage."""
    seed_everything(params.seed)
    nets = build_networks(params)
    if params.frozen_inpainter and params.uses_inpainter:
        gan = {"inp": nets["inp"], "disc": nets["disc"]}
        trainer = Trainer(gan, _optimisers(params, gan), images, lci_update(params), engine_config(params, "inp"),
                          device)
        trainer.fit()
        frozen = unwrap(trainer.models["inp"]).eval().requires_grad_(False)
        cls = {"cls": nets["cls"]}
        trainer = Trainer(cls, _optimisers(params, cls), images, lci_update(params, frozen=frozen),
                          engine_config(params, "ssl"), device)
        history = trainer.fit()
        out = {"cls": unwrap(trainer.models["cls"]), "inp": frozen, "disc": unwrap(gan["disc"])}
        return out, history
    trainer = Trainer(nets, _optimisers(params, nets), images, lci_update(params), engine_config(params, "ssl"),
                      device)
    history = trainer.fit()
    return {name: unwrap(m) for name, m in trainer.models.items()}, history


def run_training(params: LCIParams, device: str | torch.device = "auto", images: Dataset | None = None,
                 nproc: int | None = None, timeout: float | None = None) -> tuple[dict[str, nn.Module], History]:
    """:func:`train_lci` in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes (they load the data
    themselves); returns the networks (on the CPU after torchrun) and the history."""
    nproc = params.nproc if nproc is None else nproc
    if nproc == 1:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        images = images if images is not None else chapter_data(params, params.seed).unlabelled
        return train_lci(params, images, dev)
    with tempfile.TemporaryDirectory(prefix="lci-") as tmp:
        out = Path(tmp)
        args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--output", str(out),
                "--device", resolve_device(device).type]
        launch("thesislib.methods.lci.train", args, nproc=nproc, timeout=timeout)
        nets = load_outputs(params, out)
        history = History()
        history.load_state_dict(json.loads((out / "history.json").read_text()))
    return nets, history


def load_outputs(params: LCIParams, out: Path) -> dict[str, nn.Module]:
    """The networks rank 0 wrote to ``out`` (``<name>.pt`` for every network of :func:`build_networks`)."""
    nets = build_networks(params)
    for name, module in nets.items():
        module.load_state_dict(torch.load(out / f"{name}.pt", map_location="cpu", weights_only=True))
    return nets


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.lci.train --params p.(json|yaml) [--output DIR] [--device D]``:
    the self-supervised training; rank 0 writes ``cls.pt`` (and ``inp.pt``, ``disc.pt``) and ``history.json``."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.lci.train", description=main.__doc__)
    parser.add_argument("--params", required=True, help="JSON or YAML mapping of LCIParams fields")
    parser.add_argument("--output", help="directory for the weights and history.json")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        mapping: dict[str, Any] = load_params_file(args.params)
        params = lci_config(mapping)
        images = chapter_data(params, params.seed).unlabelled
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"lci: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        nets, history = train_lci(params, images, device)
        save_main_outputs(args.output, nets, history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
