"""A small 2-D GAN for the engine's multi-network tests (CPU, deterministic), and its DDP workers.

Data: points of a two-component Gaussian mixture in the plane; each item carries its own latent
``z`` drawn from a generator seeded by the item's index, so a 2-process run sees exactly the
samples and noise of a 1-process run with the same global batch. The update alternates
``len(batches)`` discriminator steps (one per chunk of the step's batch) with one generator step
(non-saturating loss), as in Goodfellow et al. 2014, Algorithm 1, with k = ``grad_accum``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from thesislib.engine import OptimizerSlot, TrainConfig, Trainer, Update, cleanup, init_distributed, is_main_process

GAN_CONFIG = dict(epochs=3, batch_size=16, grad_accum=2, log_every=2, progress="none", seed=7)


class MixtureSet(Dataset):
    """``n`` items ``(x (2,), z (4,))``: x from a 2-component mixture, z ~ N(0, I) seeded by the index."""

    deterministic = True

    def __init__(self, n: int = 64) -> None:
        gen = torch.Generator().manual_seed(99)
        centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
        self.x = centres[torch.randint(0, 2, (n,), generator=gen)] + 0.3 * torch.randn(n, 2, generator=gen)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], torch.randn(4, generator=torch.Generator().manual_seed(1000 + i))


def build_gan() -> tuple[dict[str, nn.Module], dict[str, OptimizerSlot]]:
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    disc = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.SGD(disc.parameters(), lr=0.05, momentum=0.9)
    slots = {"disc": OptimizerSlot(opt_d, ("disc",), grad_clip=1.0),
             "gen": OptimizerSlot(opt_g, ("gen",), torch.optim.lr_scheduler.StepLR(opt_g, step_size=3, gamma=0.5))}
    return {"gen": gen, "disc": disc}, slots


def gan_update(nan_in: str | None = None, nan_step: int = 0):
    """The alternating update; ``nan_in`` ("disc" / "gen") poisons that loss at 1-based step ``nan_step``."""

    def poison(loss: torch.Tensor, who: str, u: Update) -> torch.Tensor:
        return loss * float("nan") if who == nan_in and u.step_index + 1 == nan_step else loss

    def update(u: Update, batches: list) -> dict[str, torch.Tensor]:
        gen, disc = u.models["gen"], u.models["disc"]
        for real, z in batches:
            with u.phase("disc"):
                with torch.no_grad():
                    fake = gen(z)
                logits_real, logits_fake = disc(real), disc(fake)
                d_loss = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
                          + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
                u.backward(poison(d_loss, "disc", u))
            u.step("disc")
        z = torch.cat([b[1] for b in batches])
        with u.phase("gen"):
            logits = disc(gen(z))
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            u.backward(poison(g_loss, "gen", u))
        u.step("gen")
        return {"d_real": torch.sigmoid(logits_real).mean()}

    return update


def train_gan(config: TrainConfig, device: torch.device, n: int = 64, **kwargs) -> Trainer:
    models, slots = build_gan()
    trainer = Trainer(models, slots, MixtureSet(n), gan_update(**kwargs), config, device, ema_models=("gen",))
    trainer.fit()
    return trainer


def gan_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every network's and the EMA generator's parameters, flattened into one dict."""
    state = {f"{name}.{k}": v for name, m in trainer.models.items() for k, v in m.state_dict().items()}
    state.update({f"ema_gen.{k}": v for k, v in trainer.emas["gen"].module.state_dict().items()})
    return state


def gan_ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = init_distributed("cpu")
    trainer = train_gan(TrainConfig(**GAN_CONFIG, ema_decay=0.9), device)
    if is_main_process():
        torch.save({"state": gan_state(trainer), "d_loss": trainer.history.get("loss_disc").tolist()},
                   Path(out_dir) / "gan.pt")
    cleanup()
