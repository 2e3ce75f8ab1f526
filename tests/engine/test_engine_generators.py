"""Trainer(generators=): named generators checkpointed per rank and restored on resume (review finding 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_testkit import MLP, RegressionSet, params

from thesislib.engine import CheckpointError, TrainConfig, Trainer, latest_checkpoint, load_checkpoint
from thesislib.engine.checkpoint import save_checkpoint

CPU = torch.device("cpu")
BASE = dict(epochs=3, batch_size=8, log_every=3, progress="none")  # 5 steps / epoch, 15 steps


def make_trainer(config: TrainConfig, *, checkpointed: bool = True) -> Trainer:
    """A step whose target noise comes from a private generator (as spotting_artifacts' per-rank masks);
    ``checkpointed``: hand the generator to the Trainer (else the step draws from it unbeknown to the engine)."""
    torch.manual_seed(0)
    model = MLP()
    gen = torch.Generator().manual_seed(99)

    def step(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        y = y + torch.randn(y.shape, generator=gen)
        return torch.nn.functional.mse_loss(net(x), y), {}

    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return Trainer(model, opt, RegressionSet(37), step, config, CPU,
                   generators={"noise": gen} if checkpointed else None)


def _fit(config: TrainConfig, **kw) -> Trainer:
    trainer = make_trainer(config, **kw)
    trainer.fit()
    return trainer


def _equal(a: Trainer, b: Trainer) -> bool:
    return all(torch.equal(x, y) for x, y in zip(params(a.model), params(b.model), strict=True))


def test_generator_state_makes_resume_exact_and_its_absence_does_not(tmp_path: Path) -> None:
    reference = _fit(TrainConfig(**BASE))
    for checkpointed in (True, False):
        ckpt = str(tmp_path / f"c{checkpointed}")
        _fit(TrainConfig(**BASE, max_steps=7, checkpoint_dir=ckpt), checkpointed=checkpointed)
        resumed = _fit(TrainConfig(**BASE, checkpoint_dir=ckpt, resume=True), checkpointed=checkpointed)
        assert resumed.step == 15
        assert _equal(reference, resumed) == checkpointed  # the control: a fresh generator draws other noise


def test_resume_refuses_a_checkpoint_without_the_generator_state(tmp_path: Path) -> None:
    ckpt = str(tmp_path / "c")
    _fit(TrainConfig(**BASE, max_steps=7, checkpoint_dir=ckpt), checkpointed=False)
    with pytest.raises(CheckpointError, match="noise"):
        _fit(TrainConfig(**BASE, checkpoint_dir=ckpt, resume=True))


def test_resume_on_fewer_ranks_takes_rank_modulo_the_saved_ranks(tmp_path: Path) -> None:
    # a checkpoint of 2 ranks resumed by 1 process: rank 0 takes entry 0 (saved_ranks = 2, rank % 2 = 0)
    reference = _fit(TrainConfig(**BASE))
    for first_is_real in (True, False):
        ckpt = tmp_path / f"c{first_is_real}"
        _fit(TrainConfig(**BASE, max_steps=7, checkpoint_dir=str(ckpt)))
        path = latest_checkpoint(str(ckpt))
        state = load_checkpoint(path)
        real = state["rng"][0]
        other = {**real, "generators": {"noise": torch.Generator().manual_seed(7).get_state()}}
        state["rng"] = [real, other] if first_is_real else [other, real]
        save_checkpoint(path, state)
        resumed = _fit(TrainConfig(**BASE, checkpoint_dir=str(ckpt), resume=True))
        assert _equal(reference, resumed) == first_is_real
