"""Checkpoints: exact resume (bit-identical parameters), corrupt files, config mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_testkit import MLP, RegressionSet, params, regression_step

from thesislib.engine import (
    CheckpointError,
    ConfigMismatchError,
    Cosine,
    TrainConfig,
    Trainer,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    make_scheduler,
)

CPU = torch.device("cpu")


class Killed(Exception):
    pass


def make_trainer(config: TrainConfig, *, kill_at: int | None = None, eval_fn=None) -> Trainer:
    """A fresh process's view: seed, build model/optimizer/scheduler, train (dropout + noisy data)."""
    torch.manual_seed(0)
    model = MLP(dropout=0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = make_scheduler(optimizer, Cosine(total_steps=15, warmup_steps=3))

    def on_step(trainer: Trainer) -> None:
        if kill_at is not None and trainer.step == kill_at:
            raise Killed

    return Trainer(model, optimizer, RegressionSet(37, noise=0.05), regression_step, config, CPU,
                   scheduler=scheduler, on_step=on_step, eval_fn=eval_fn)


def run(config: TrainConfig, **kw) -> Trainer:
    trainer = make_trainer(config, **kw)
    trainer.fit()
    return trainer


def strip_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "it_s")} for r in records]


def eval_fn(model):
    data = RegressionSet(37)
    return {"mse": torch.nn.functional.mse_loss(model(data.x), data.y)}


BASE = dict(epochs=3, batch_size=8, log_every=3, progress="none")  # 37 samples: 5 steps/epoch, last batch of 5


def test_resume_mid_epoch_after_max_steps_is_bit_identical(tmp_path: Path) -> None:
    reference = run(TrainConfig(**BASE))
    ckpt = str(tmp_path / "ckpt")
    first = run(TrainConfig(**BASE, max_steps=7, checkpoint_dir=ckpt))
    assert first.step == 7 and latest_checkpoint(ckpt).name == "step_0000000007.pt"
    resumed = run(TrainConfig(**BASE, checkpoint_dir=ckpt, resume=True))
    assert resumed.step == reference.step == 15
    for a, b in zip(params(reference.model), params(resumed.model), strict=True):
        assert torch.equal(a, b)
    # the stop at step 7 closed a log window early: one extra record, the rest as in the reference
    assert [r["step"] for r in resumed.history.train] == [3, 5, 6, 7, 9, 10, 12, 15]
    assert strip_times(resumed.history.train)[-3:] == strip_times(reference.history.train)[-3:]


@pytest.mark.parametrize("kill_at", [9, 11])  # 9: resume mid-epoch; 11: from the epoch-end checkpoint at 10
def test_resume_after_crash_with_ema_accumulation_and_clipping(tmp_path: Path, kill_at: int) -> None:
    cfg = dict(BASE, grad_accum=2, grad_clip=0.5, ema_decay=0.9, checkpoint_every=3, keep_checkpoints=3)
    reference = run(TrainConfig(**cfg), eval_fn=eval_fn)
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(Killed):
        run(TrainConfig(**cfg, checkpoint_dir=ckpt), kill_at=kill_at, eval_fn=eval_fn)
    expected_latest = 9 if kill_at == 9 else 10
    assert latest_checkpoint(ckpt).name == f"step_{expected_latest:010d}.pt"
    assert len(list_checkpoints(ckpt)) == 3
    resumed = run(TrainConfig(**cfg, checkpoint_dir=ckpt, resume=True), eval_fn=eval_fn)
    for a, b in zip(params(reference.model), params(resumed.model), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(params(reference.ema.module), params(resumed.ema.module), strict=True):
        assert torch.equal(a, b)
    assert strip_times(resumed.history.train) == strip_times(reference.history.train)
    assert strip_times(resumed.history.eval) == strip_times(reference.history.eval)
    assert [r["epoch"] for r in resumed.history.eval] == [1, 2, 3]
    # the interrupted runs must actually differ from a fresh start, or the test proves nothing
    fresh = run(TrainConfig(**cfg, seed=1))
    assert not all(torch.equal(a, b) for a, b in zip(params(reference.model), params(fresh.model)))


def test_truncated_checkpoint_raises_naming_the_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    run(TrainConfig(**BASE, max_steps=4, checkpoint_dir=str(ckpt)))
    path = latest_checkpoint(ckpt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="step_0000000004.pt") as info:
        run(TrainConfig(**BASE, checkpoint_dir=str(ckpt), resume=True))
    assert info.value.path == path and "fails its checksum" in info.value.reason
    assert path.read_bytes() == data[: len(data) // 2]  # not overwritten by a fresh run


@pytest.mark.parametrize("where", ["payload", "last byte"])
def test_flipped_byte_is_refused_by_the_checksum(tmp_path: Path, where: str) -> None:
    """One flipped bit anywhere in the payload: torch.load might still unpickle it, the checksum does not."""
    ckpt = tmp_path / "ckpt"
    run(TrainConfig(**BASE, max_steps=4, checkpoint_dir=str(ckpt)))
    path = latest_checkpoint(ckpt)
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if where == "payload" else len(data) - 1
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="step_0000000004.pt.*fails its checksum"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="fails its checksum"):
        run(TrainConfig(**BASE, checkpoint_dir=str(ckpt), resume=True))


def test_checkpoint_header_damage_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    run(TrainConfig(**BASE, max_steps=4, checkpoint_dir=str(ckpt)))
    path = latest_checkpoint(ckpt)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="no thesislib checksum header"):
        load_checkpoint(path)


def test_garbage_checkpoint_raises(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "step_0000000003.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="step_0000000003.pt"):
        run(TrainConfig(**BASE, checkpoint_dir=str(ckpt), resume=True))


def test_config_mismatch_names_the_fields(tmp_path: Path) -> None:
    ckpt = str(tmp_path / "ckpt")
    run(TrainConfig(**BASE, max_steps=4, checkpoint_dir=ckpt))
    with pytest.raises(ConfigMismatchError) as info:
        run(TrainConfig(**{**BASE, "batch_size": 4}, seed=3, checkpoint_dir=ckpt, resume=True))
    message = str(info.value)
    assert "batch_size: checkpoint=8, now=4" in message and "seed: checkpoint=0, now=3" in message
    # fields that do not change the optimisation may differ (extend the run, log differently)
    longer = run(TrainConfig(**{**BASE, "epochs": 4, "log_every": 2}, checkpoint_dir=ckpt, resume=True))
    assert longer.step == 20


def test_fresh_run_refuses_to_overwrite_existing_checkpoints(tmp_path: Path) -> None:
    ckpt = str(tmp_path / "ckpt")
    run(TrainConfig(**BASE, max_steps=4, checkpoint_dir=ckpt))
    with pytest.raises(CheckpointError, match="resume=True"):
        run(TrainConfig(**BASE, checkpoint_dir=ckpt))


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    trainer = run(TrainConfig(**BASE, max_steps=2, checkpoint_dir=str(tmp_path / "empty"), resume=True))
    assert trainer.step == 2 and latest_checkpoint(tmp_path / "empty").name == "step_0000000002.pt"


def test_resume_with_persistent_workers(tmp_path: Path) -> None:
    """Worker processes load the data; the sampler is re-planned per epoch and after resume."""
    cfg = dict(BASE, num_workers=2)
    reference = run(TrainConfig(**cfg))
    ckpt = str(tmp_path / "ckpt")
    run(TrainConfig(**cfg, max_steps=7, checkpoint_dir=ckpt))
    resumed = run(TrainConfig(**cfg, checkpoint_dir=ckpt, resume=True))
    for a, b in zip(params(reference.model), params(resumed.model), strict=True):
        assert torch.equal(a, b)
