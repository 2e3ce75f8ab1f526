"""train_config: a chapter's parameters + the run's length -> TrainConfig, in one call."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from engine_testkit import MLP, RegressionSet, regression_step

from thesislib.config import ConfigError
from thesislib.engine import Trainer, train_config


@dataclass(frozen=True)
class Run:
    seed: int = 4
    amp: bool = False
    compile: bool = False
    progress: str = "none"
    num_workers: int = 0
    threads: int = 1  # not a TrainConfig field: ignored


def test_iterations_run_exactly_that_many_steps_across_epochs() -> None:
    config = train_config(Run(), batch_size=8, iterations=11)
    assert (config.seed, config.amp, config.progress, config.max_steps) == (4, False, "none", 11)
    model = MLP()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(20), regression_step,
                      config, torch.device("cpu"))
    trainer.fit()
    assert trainer.step == 11 and trainer.epoch == 3  # 3 steps per epoch: 3 + 3 + 3 + 2


def test_epochs_checkpoints_and_overrides(tmp_path) -> None:
    config = train_config(Run(), batch_size=16, epochs=2, checkpoint_dir=tmp_path, ema_decay=0.9)
    assert (config.epochs, config.max_steps, config.resume, config.ema_decay) == (2, None, True, 0.9)
    assert config.checkpoint_dir == str(tmp_path)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="exactly one of"):
        train_config(Run(), batch_size=8)
    with pytest.raises(ConfigError, match="exactly one of"):
        train_config(Run(), batch_size=8, epochs=1, iterations=3)
    with pytest.raises(ConfigError, match="unknown TrainConfig field.*'grad_clipping'"):
        train_config(Run(), batch_size=8, epochs=1, grad_clipping=1.0)
