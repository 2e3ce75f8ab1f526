"""Device-side accumulation averages correctly over log windows; progress lines and modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_testkit import MLP, RegressionSet

from thesislib.engine import TrainConfig, Trainer, fit, resolve_progress
from thesislib.engine.progress import format_record

CPU = torch.device("cpu")


def counting_step():
    """Loss = metric = the 1-based call number (the model term is zero but keeps the graph)."""
    calls = {"n": 0}

    def step_fn(model, batch):
        calls["n"] += 1
        x, _ = batch
        k = torch.tensor(float(calls["n"]))
        return (model(x) * 0).sum() + k, {"k": k, "k2": k * k}

    return step_fn


def test_window_means_over_log_windows_and_epoch_ends() -> None:
    torch.manual_seed(0)
    model = MLP()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.0), RegressionSet(40), counting_step(),
                  TrainConfig(epochs=2, batch_size=4, log_every=4, progress="none"), CPU)
    # 10 steps per epoch; a record every 4 global steps and at each epoch end
    assert history.steps().tolist() == [4, 8, 10, 12, 16, 20]
    assert history.get("steps").tolist() == [4, 4, 2, 2, 4, 4]
    windows = [range(1, 5), range(5, 9), range(9, 11), range(11, 13), range(13, 17), range(17, 21)]
    assert history.get("loss").tolist() == pytest.approx([np.mean(w) for w in windows])
    assert history.get("k").tolist() == pytest.approx([np.mean(w) for w in windows])
    assert history.get("k2").tolist() == pytest.approx([np.mean(np.square(w)) for w in windows])
    assert history.get("epoch").tolist() == [1, 1, 1, 2, 2, 2]
    assert np.all(np.diff(history.get("time")) >= 0)
    with pytest.raises(KeyError, match="no train metric 'acc'"):
        history.get("acc")


def test_eval_records_and_callbacks() -> None:
    torch.manual_seed(0)
    model = MLP()
    seen = []
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(40), counting_step(),
                      TrainConfig(epochs=4, batch_size=8, eval_every=3, progress="none"), CPU,
                      eval_fn=lambda m: {"training": float(m.training), "vec": torch.arange(3)},
                      on_epoch_end=lambda t: seen.append((t.epoch, t.step)))
    history = trainer.fit()
    assert [r["epoch"] for r in history.eval] == [3, 4]  # every 3rd epoch and the last
    assert history.get("training", kind="eval").tolist() == [0.0, 0.0]
    assert history.eval[0]["vec"] == [0, 1, 2]
    assert seen == [(1, 5), (2, 10), (3, 15), (4, 20)]
    assert model.training


def test_request_stop_from_a_callback() -> None:
    torch.manual_seed(0)
    model = MLP()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(40), counting_step(),
                      TrainConfig(epochs=4, batch_size=8, progress="none"), CPU,
                      on_step=lambda t: t.request_stop() if t.step == 7 else None)
    history = trainer.fit()
    assert trainer.step == 7 and history.steps()[-1] == 7


def test_log_lines(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THESISLIB_PROGRESS", raising=False)  # =none would silence even explicit modes
    torch.manual_seed(0)
    model = MLP()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.01), RegressionSet(40), counting_step(),
        TrainConfig(epochs=1, batch_size=8, log_every=2, progress="log"), CPU)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch 1 step 2/5 loss 1.5 k 1.5 k2 2.5 lr 1.0e-02 ") and lines[0].endswith(" it/s")
    assert len(lines) == 3
    record = {"step": 300, "epoch": 2, "lr": 0.01, "loss": 0.43118, "acc": 0.8712, "steps": 50, "time": 1.0,
              "it_s": 12.34}
    assert format_record(record, 1000) == "epoch 2 step 300/1000 loss 0.4312 acc 0.8712 lr 1.0e-02 12.3 it/s"


def test_progress_mode_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THESISLIB_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert resolve_progress("auto") == "log" and resolve_progress("bar") == "bar"
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert resolve_progress("auto") == "bar"
    monkeypatch.setenv("THESISLIB_PROGRESS", "log")
    assert resolve_progress("auto") == "log"
    monkeypatch.setenv("THESISLIB_PROGRESS", "none")
    assert resolve_progress("auto") == "none" and resolve_progress("bar") == "none"
