"""The multi-network update on a 2-D GAN: phases, per-optimiser clipping, exact resume, DDP, NaN reports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from engine_gan import GAN_CONFIG, MixtureSet, build_gan, gan_ddp_worker, gan_state, gan_update, train_gan

from thesislib.engine import (
    NonFiniteLossError,
    OptimizerSlot,
    TrainConfig,
    Trainer,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)

CPU = torch.device("cpu")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gan_trains_and_records_each_network() -> None:
    trainer = train_gan(TrainConfig(**GAN_CONFIG), CPU)
    record = trainer.history.train[-1]
    assert {"loss_disc", "loss_gen", "lr_disc", "lr_gen", "grad_norm_disc", "d_real"} <= set(record)
    assert "loss" not in record and "grad_norm_gen" not in record  # gen has no clipping
    assert trainer.step == 3 * (64 // 16)
    # the generator's StepLR(3, 0.5) stepped once per update: lr 2e-3 halves after steps 3, 6, 9
    assert trainer.slots["gen"].optimizer.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.5 ** 4)
    # the generated cloud moves towards the data (its mean starts near the origin, the data's is (0, 0.5))
    data = MixtureSet(64).x
    with torch.no_grad():
        fake = trainer.models["gen"](torch.randn(256, 4, generator=torch.Generator().manual_seed(3)))
    assert fake.std(0).sum() > 0.1 and torch.isfinite(fake).all()
    assert torch.isfinite(torch.tensor(trainer.history.get("loss_disc"))).all()
    assert data.shape == (64, 2)


def test_phase_restricts_gradients_to_its_networks() -> None:
    """A generator backward through the discriminator leaves the discriminator's .grad untouched."""
    models, slots = build_gan()
    seen = {}

    def update(u, batches):
        real, z = batches[0]
        with u.phase("gen"):
            u.backward(F.softplus(-u.models["disc"](u.models["gen"](z))).mean())
        seen["disc_grads"] = [p.grad for p in u.models["disc"].parameters()]
        seen["gen_grads"] = [p.grad is not None for p in u.models["gen"].parameters()]
        u.step("gen")
        seen["gen_after_step"] = [p.grad for p in u.models["gen"].parameters()]
        return {}

    Trainer(models, slots, MixtureSet(16), update, TrainConfig(epochs=1, batch_size=16, progress="none"), CPU).fit()
    assert seen["disc_grads"] == [None] * 4 and all(seen["gen_grads"])
    assert seen["gen_after_step"] == [None] * 4  # the step zeroes (sets to None) its own gradients


def test_per_optimizer_clipping_bounds_only_that_optimizer() -> None:
    models, slots = build_gan()
    before = {k: v.clone() for k, v in models["disc"].state_dict().items()}
    tiny = {"disc": OptimizerSlot(torch.optim.SGD(models["disc"].parameters(), lr=1.0), ("disc",), grad_clip=1e-3),
            "gen": slots["gen"]}
    trainer = Trainer(models, tiny, MixtureSet(16), gan_update(),
                      TrainConfig(epochs=1, batch_size=16, grad_accum=2, progress="none"), CPU)
    trainer.fit()
    moved = torch.cat([(models["disc"].state_dict()[k] - v).flatten() for k, v in before.items()])
    assert moved.norm() <= 2 * 1e-3 + 1e-6  # two disc steps of norm <= lr * clip
    assert trainer.history.get("grad_norm_disc")[0] > 1e-3  # the raw norm was above the bound


def test_gan_resume_after_interruption_is_exact(tmp_path: Path) -> None:
    cfg = dict(GAN_CONFIG, ema_decay=0.9)
    reference = train_gan(TrainConfig(**cfg), CPU)
    ckpt = str(tmp_path / "ckpt")
    train_gan(TrainConfig(**cfg, max_steps=5, checkpoint_dir=ckpt), CPU)  # stops mid-epoch 2
    state = load_checkpoint(latest_checkpoint(ckpt))
    assert set(state["models"]) == {"gen", "disc"} and set(state["ema"]) == {"gen"}
    assert state["schedulers"]["disc"] is None and state["schedulers"]["gen"] is not None
    resumed = train_gan(TrainConfig(**cfg, checkpoint_dir=ckpt, resume=True), CPU)
    for key, value in gan_state(reference).items():
        assert torch.equal(value, gan_state(resumed)[key]), key
    for name in ("gen", "disc"):
        assert (resumed.slots[name].optimizer.state_dict()["state"].keys()
                == reference.slots[name].optimizer.state_dict()["state"].keys())
    assert resumed.step == reference.step == 12
    fresh = train_gan(TrainConfig(**{**cfg, "seed": 8}), CPU)
    assert not torch.equal(gan_state(fresh)["gen.0.weight"], gan_state(reference)["gen.0.weight"])


def test_resume_refuses_a_different_structure(tmp_path: Path) -> None:
    ckpt = str(tmp_path / "ckpt")
    train_gan(TrainConfig(**GAN_CONFIG, max_steps=2, checkpoint_dir=ckpt), CPU)
    models, slots = build_gan()
    slots = {"disc": OptimizerSlot(slots["disc"].optimizer, ("disc",), grad_clip=0.5), "gen": slots["gen"]}
    with pytest.raises(Exception, match="per-optimizer grad_clip"):
        Trainer(models, slots, MixtureSet(64), gan_update(),
                TrainConfig(**GAN_CONFIG, checkpoint_dir=ckpt, resume=True), CPU).fit()


@pytest.mark.parametrize("network", ["disc", "gen"])
def test_non_finite_loss_names_the_network_and_step(tmp_path: Path, network: str) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(NonFiniteLossError, match=f"loss of '{network}' became nan at step 6 \\(epoch 2\\)") as info:
        train_gan(TrainConfig(**{**GAN_CONFIG, "checkpoint_every": 1}, checkpoint_dir=str(ckpt)), CPU,
                  nan_in=network, nan_step=6)
    assert (info.value.step, info.value.epoch, info.value.name) == (6, 2, network)
    assert latest_checkpoint(ckpt).name == "step_0000000005.pt"  # nothing written from the bad step on


def test_update_misuse_is_reported() -> None:
    models, slots = build_gan()
    data = MixtureSet(16)
    cfg = TrainConfig(epochs=1, batch_size=16, progress="none")

    def outside(u, batches):
        u.backward(u.models["disc"](batches[0][0]).mean())

    def no_step(u, batches):
        with u.phase("disc"):
            u.backward(u.models["disc"](batches[0][0]).mean())
        return {}

    with pytest.raises(RuntimeError, match="outside a phase"):
        Trainer(models, slots, data, outside, cfg, CPU).fit()
    with pytest.raises(RuntimeError, match="without stepping"):
        Trainer(*build_gan(), data, no_step, cfg, CPU).fit()
    with pytest.raises(ValueError, match="grad_clip per OptimizerSlot"):
        Trainer(*build_gan(), data, gan_update(), TrainConfig(epochs=1, grad_clip=1.0), CPU)
    with pytest.raises(KeyError, match="unknown networks"):
        models, slots = build_gan()
        Trainer(models, {"x": OptimizerSlot(slots["gen"].optimizer, ("generator",))}, data, gan_update(), cfg, CPU)


def test_two_process_gan_matches_single_process(tmp_path: Path) -> None:
    """gloo, 2 ranks: each rank sees half of every chunk; the averaged gradients of every D and G
    step equal the 1-process ones, so both networks and the EMA end where one process ends."""
    reference = train_gan(TrainConfig(**GAN_CONFIG, ema_decay=0.9), CPU)
    mp.start_processes(gan_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    ddp = torch.load(tmp_path / "gan.pt", weights_only=True)
    for key, value in gan_state(reference).items():
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert ddp["d_loss"] == pytest.approx(reference.history.get("loss_disc").tolist(), rel=1e-5)
    assert list_checkpoints(tmp_path) == []
