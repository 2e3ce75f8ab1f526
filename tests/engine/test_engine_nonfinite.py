"""A non-finite loss stops training with its step and value; the last good checkpoint survives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from engine_testkit import MLP, RegressionSet, regression_step

from thesislib.engine import NonFiniteLossError, TrainConfig, Trainer, latest_checkpoint, load_checkpoint

CPU = torch.device("cpu")


def nan_at(step: int, value: float = math.nan):
    calls = {"n": 0}

    def step_fn(model, batch):
        calls["n"] += 1
        loss, metrics = regression_step(model, batch)
        if calls["n"] >= step:  # once broken, stays broken
            loss = loss * value
        return loss, metrics

    return step_fn


def trainer(step_fn, config: TrainConfig) -> Trainer:
    torch.manual_seed(0)
    model = MLP()
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(40), step_fn, config, CPU)


def test_nan_at_step_7_raises_with_step_and_value(tmp_path: Path) -> None:
    config = TrainConfig(epochs=5, batch_size=8, checkpoint_every=5, checkpoint_dir=str(tmp_path), progress="none")
    t = trainer(nan_at(7), config)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 7 \(epoch 2\)") as info:
        t.fit()
    assert info.value.step == 7 and info.value.epoch == 2 and math.isnan(info.value.value)
    # checked before the backward pass on CPU: the parameters are those after step 6
    assert t.step == 6
    last = latest_checkpoint(tmp_path)
    assert last.name == "step_0000000005.pt" and load_checkpoint(last)["step"] == 5


class DeferredCheckTrainer(Trainer):
    """Checks only at materialisation points, as on CUDA or under DDP."""

    def _setup(self) -> None:
        super()._setup()
        self.check_every_step = False


def test_device_side_record_reports_the_first_bad_step(tmp_path: Path) -> None:
    config = TrainConfig(epochs=5, batch_size=8, log_every=100, checkpoint_every=4, checkpoint_dir=str(tmp_path),
                         progress="none")
    torch.manual_seed(0)
    model = MLP()
    t = DeferredCheckTrainer(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(40),
                             nan_at(7, math.inf), config, CPU)
    with pytest.raises(NonFiniteLossError, match=r"loss became inf at step 7 \(epoch 2\)") as info:
        t.fit()
    assert info.value.step == 7 and info.value.value == math.inf
    # found when step 8 was about to be checkpointed: nothing after the bad step was written
    assert t.step == 8
    assert latest_checkpoint(tmp_path).name == "step_0000000005.pt"  # epoch-end checkpoint of epoch 1
