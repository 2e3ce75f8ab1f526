"""The two training stages through :mod:`thesislib.engine`, and the torchrun entry point.

1. :func:`train_autoencoder`: {E, D} on L_auto (Eq. 3.3) with :func:`thesislib.engine.fit`.
2. :func:`train_damage_repair`: the repair network R and the discriminator C alternate through the
   engine's multi-optimiser update (:func:`damage_repair_update`): per step one C step on real vs
   (history-mixed) corrupted images with the mask loss, then one R step against the updated C. The
   autoencoder is frozen. Both stages use Adam(lr, β1) with L2 weight decay and the learning rate
   decayed linearly from ``lr`` to ``lr_end`` (:class:`thesislib.engine.Linear`).

:func:`run_stage` trains a stage in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes
of this module, reading rank 0's weights back::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.spotting_artifacts.train \
        --params p.json --stage dr --autoencoder ae.pt --output DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.device import resolve_device
from thesislib.engine import History, Linear, OptimizerSlot, Trainer, fit, launch, make_scheduler
from thesislib.engine.distributed import distributed_session, rank_generator, save_main_outputs, unwrap
from thesislib.engine.update import Update
from thesislib.methods.spotting_artifacts.config import (
    SpottingArtifactsParams,
    engine_config,
    spotting_artifacts_config,
)
from thesislib.methods.spotting_artifacts.data import chapter_data
from thesislib.methods.spotting_artifacts.losses import autoencoder_loss, discriminator_loss, repair_loss
from thesislib.methods.spotting_artifacts.model import (
    AutoEncoder,
    DamageRepair,
    Discriminator,
    HistoryBuffer,
    drop_mask,
    upsample_mask,
)
from thesislib.repro import seed_everything, write_json

__all__ = ["build_autoencoder", "build_discriminator", "build_generator", "damage_repair_update", "main",
           "rank_generator", "run_stage", "train_autoencoder", "train_damage_repair"]

STAGES = ("ae", "dr")


def build_autoencoder(params: SpottingArtifactsParams) -> AutoEncoder:
    return AutoEncoder(params.in_channels, params.encoder_channels, params.encoder_kernel)


def build_generator(params: SpottingArtifactsParams, autoencoder: AutoEncoder) -> DamageRepair:
    """R threaded through the frozen ``autoencoder``, with the history buffer when ``params.history``."""
    gen = DamageRepair(autoencoder, params.repair, params.gated)
    if params.history:
        gen.history = HistoryBuffer(params.history_size, (params.in_channels, params.image_size, params.image_size),
                                    (params.grid, params.grid))
    return gen


def build_discriminator(params: SpottingArtifactsParams) -> Discriminator:
    return Discriminator(params.in_channels, params.image_size, params.disc_width, params.disc_hidden,
                         params.conv1_kernel, params.conv1_stride, mask_head=params.mask_head, grid=params.grid)


def _adam(params: SpottingArtifactsParams, parameters: Any, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(parameters, lr=params.lr, betas=(params.beta1, 0.999), weight_decay=params.weight_decay)
    end = params.lr_end / params.lr if params.lr > 0 else 1.0
    return opt, make_scheduler(opt, Linear(total_steps=steps, end=end))


def _images(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def train_autoencoder(params: SpottingArtifactsParams, images: Dataset, device: torch.device
                      ) -> tuple[AutoEncoder, History]:
    """Stage 1: {E, D} on ``images`` (items float (C, S, S) in [-1, 1]); seeded from ``params.seed``."""
    seed_everything(params.seed)
    ae = build_autoencoder(params)
    opt, sched = _adam(params, ae.parameters(), params.ae_iterations)

    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = _images(batch)
        loss = autoencoder_loss(model(x), x, params.ae_mse_weight)
        return loss, {}

    history = fit(ae, opt, images, step, engine_config(params, "ae"), device, scheduler=sched)
    return unwrap(ae), history


def damage_repair_update(params: SpottingArtifactsParams, rng: torch.Generator | None = None
                         ) -> Callable[[Update, list[Any]], Mapping[str, Tensor]]:
    """The alternating update of stage 2 (one C step, then one R step when R has parameters).

    ``rng``: the generator of the drop masks and history picks (None: the global RNG); it must live on
    the device of the batches.

    C sees [x_r; x̂'] in one batch (x_r = D(E(x)) or x, x̂' = corrupted images with half replaced from
    the history buffer) and is trained on the real/corrupt logit and the mask head (real target:
    all kept). R is then trained on C's logit of the fresh x̂ (C run on [x_r; x̂] again so that its
    BatchNorm sees the same mixture) plus the masked reconstruction term.
    """
    grid = (params.grid, params.grid)

    def update(u: Update, batches: list[Any]) -> dict[str, Tensor]:
        gen, disc = u.models["gen"], u.models["disc"]
        plain = unwrap(gen)
        x = torch.cat([_images(b) for b in batches])
        b = x.shape[0]
        omega = drop_mask(b, grid, params.drop_rate, x.device, generator=rng)
        with torch.no_grad():
            real = plain.autoencode(x) if params.real_source == "autoencoded" else x
        with u.phase("disc"):
            with torch.no_grad():
                fake = gen(x, omega)
                shown, shown_mask = (plain.history.mix(fake, omega, generator=rng) if params.history
                                     else (fake, omega))
            logits, masks = disc(torch.cat([real, shown]))
            target = torch.cat([torch.ones_like(shown_mask), shown_mask])
            d_loss, m_loss = discriminator_loss(logits[:b], logits[b:], masks, target, params.mask_weight)
            u.backward(d_loss)
        u.step("disc")
        if params.history:
            plain.history.push(fake, omega)
        metrics = {"d_acc": ((logits[:b] > 0).float().mean() + (logits[b:] < 0).float().mean()).detach() / 2,
                   "mask_bce": m_loss.detach()}
        if "gen" in u.trainer.slots:
            with u.phase("gen"):
                fake = gen(x, omega)
                logit_fake = disc(torch.cat([real, fake]))[0][b:]
                keep = upsample_mask(omega, tuple(x.shape[-2:]))
                u.backward(repair_loss(logit_fake, fake, x, keep, params.repair_mse_weight))
            u.step("gen")
            metrics["fooled"] = (logit_fake > 0).float().mean().detach()
        return metrics

    return update


def train_damage_repair(params: SpottingArtifactsParams, autoencoder: AutoEncoder, images: Dataset,
                        device: torch.device) -> tuple[DamageRepair, Discriminator, History]:
    """Stage 2 on ``images`` with the pre-trained (now frozen) ``autoencoder``; seeded from ``params.seed``."""
    seed_everything(params.seed)
    gen = build_generator(params, autoencoder)
    disc = build_discriminator(params)
    opt_d, sched_d = _adam(params, disc.parameters(), params.iterations)
    slots = {"disc": OptimizerSlot(opt_d, ("disc",), sched_d)}
    repair_params = [p for p in gen.parameters() if p.requires_grad]
    if repair_params:
        opt_r, sched_r = _adam(params, repair_params, params.iterations)
        slots["gen"] = OptimizerSlot(opt_r, ("gen",), sched_r)
    # Per-rank drop masks and history picks, checkpointed through Trainer(generators=). Resume is exact for one
    # process only: under torchrun the history buffer is per rank (Discriminator.ddp_broadcast_buffers is False)
    # but a checkpoint holds rank 0's module buffers, so on resume every rank restarts from rank 0's stored
    # corruptions (and R's BN statistics): the masks continue exactly, the weights do not.
    rng = rank_generator(params.seed, torch.device(device))
    trainer = Trainer({"gen": gen, "disc": disc}, slots, images, damage_repair_update(params, rng),
                      engine_config(params, "dr"), device, generators={"masks": rng} if rng is not None else None)
    history = trainer.fit()
    return unwrap(trainer.models["gen"]), unwrap(trainer.models["disc"]), history


def run_stage(params: SpottingArtifactsParams, stage: str, device: str | torch.device = "auto",
              images: Dataset | None = None, autoencoder: AutoEncoder | None = None, nproc: int | None = None,
              timeout: float | None = None) -> tuple[dict[str, nn.Module], History]:
    """Stage ``"ae"`` (-> ``{"ae"}``) or ``"dr"`` (-> ``{"gen", "disc"}``, needs ``autoencoder``), trained in
    this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes (they load the data themselves)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if stage == "dr" and autoencoder is None:
        raise ValueError("stage 'dr' needs the pre-trained autoencoder")
    nproc = params.nproc if nproc is None else nproc
    if nproc == 1:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        images = images if images is not None else chapter_data(params, params.seed).unlabelled
        if stage == "ae":
            ae, history = train_autoencoder(params, images, dev)
            return {"ae": ae}, history
        gen, disc, history = train_damage_repair(params, autoencoder, images, dev)  # type: ignore[arg-type]
        return {"gen": gen, "disc": disc}, history
    with tempfile.TemporaryDirectory(prefix="spotting-artifacts-") as tmp:
        out = Path(tmp)
        args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--stage", stage,
                "--output", str(out), "--device", resolve_device(device).type]
        if autoencoder is not None:
            torch.save(autoencoder.state_dict(), out / "ae_in.pt")
            args += ["--autoencoder", str(out / "ae_in.pt")]
        launch("thesislib.methods.spotting_artifacts.train", args, nproc=nproc, timeout=timeout)
        models = _load_outputs(params, stage, out, autoencoder)
        history = History()
        history.load_state_dict(json.loads((out / "history.json").read_text()))
    return models, history


def _load_outputs(params: SpottingArtifactsParams, stage: str, out: Path,
                  autoencoder: AutoEncoder | None) -> dict[str, nn.Module]:
    if stage == "ae":
        ae = build_autoencoder(params)
        ae.load_state_dict(torch.load(out / "ae.pt", map_location="cpu", weights_only=True))
        return {"ae": ae}
    gen = build_generator(params, autoencoder)  # type: ignore[arg-type]
    gen.load_state_dict(torch.load(out / "gen.pt", map_location="cpu", weights_only=True))
    disc = build_discriminator(params)
    disc.load_state_dict(torch.load(out / "disc.pt", map_location="cpu", weights_only=True))
    return {"gen": gen, "disc": disc}


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.spotting_artifacts.train --params p.(json|yaml) --stage ae|dr
    [--autoencoder ae.pt] [--output DIR] [--device D]``: one stage; rank 0 writes the state dicts
    (``ae.pt`` or ``gen.pt`` and ``disc.pt``) and ``history.json`` to DIR."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.spotting_artifacts.train",
                                     description=main.__doc__)
    parser.add_argument("--params", required=True, help="JSON or YAML mapping of SpottingArtifactsParams fields")
    parser.add_argument("--stage", required=True, choices=STAGES, help="ae (autoencoder) | dr (damage & repair)")
    parser.add_argument("--autoencoder", help="state dict of the pre-trained autoencoder (stage dr)")
    parser.add_argument("--output", help="directory for the weights and history.json")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        mapping: dict[str, Any] = load_params_file(args.params)
        params = spotting_artifacts_config(mapping)
        if args.stage == "dr" and not args.autoencoder:
            raise ConfigError("--stage dr needs --autoencoder")
        images = chapter_data(params, params.seed).unlabelled
        ae = None
        if args.autoencoder:
            ae = build_autoencoder(params)
            ae.load_state_dict(torch.load(args.autoencoder, map_location="cpu", weights_only=True))
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"spotting_artifacts: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        if args.stage == "ae":
            model, history = train_autoencoder(params, images, device)
            outputs = {"ae": model}
        else:
            gen, disc, history = train_damage_repair(params, ae, images, device)  # type: ignore[arg-type]
            outputs = {"gen": gen, "disc": disc}
        save_main_outputs(args.output, outputs, history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
