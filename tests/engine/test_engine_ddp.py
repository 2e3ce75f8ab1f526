"""DDP on CPU (gloo): 2 processes end with the parameters of a 1-process run with the same global batch.

The workers are forked (no second torch import, so the test takes seconds) and join the
group through ``init_distributed`` from the same environment variables torchrun sets.
``launch`` itself is checked with a torch-free module and with a failing one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from engine_ddp_worker import DDP_CONFIG, WithUnusedHead, build, ddp_worker, unused_worker
from engine_testkit import RegressionSet, regression_step

from thesislib.engine import LaunchError, TrainConfig, fit, launch, list_checkpoints

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_ddp_matches_single_process(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THESISLIB_PROGRESS", raising=False)
    # the reference first: the forked workers then inherit every lazily imported module
    model, optimizer = build()
    history = fit(model, optimizer, RegressionSet(36, noise=0.05), regression_step,
                  TrainConfig(**{**DDP_CONFIG, "progress": "none"}), torch.device("cpu"))
    capfd.readouterr()
    mp.start_processes(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    output = capfd.readouterr().out
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-5, atol=1e-6)
    # the logged loss is the mean over ranks of local means = the global mean (equal local sizes)
    assert ddp["loss"] == pytest.approx(history.get("loss").tolist(), rel=1e-5)
    assert ddp["rank_mean"] == 0.5
    # only rank 0 logs and checkpoints: one line per record, checkpoints at epoch ends (5 steps/epoch)
    assert sum(line.startswith("epoch ") for line in output.splitlines()) == len(history.train) == 6
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step_0000000005.pt", "step_0000000010.pt"]


def test_ddp_with_unused_parameters_trains_when_told(tmp_path: Path) -> None:
    """2 steps with a head outside the loss: DDP needs ``find_unused_parameters`` (without it the
    second step raises); the head stays at its initial values, the body trains."""
    mp.start_processes(unused_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    state = torch.load(tmp_path / "unused.pt", weights_only=True)
    torch.manual_seed(0)
    initial = WithUnusedHead().state_dict()
    torch.testing.assert_close(state["unused.weight"], initial["unused.weight"])
    assert not torch.equal(state["body.net.0.weight"], initial["body.net.0.weight"])


def test_launch_runs_torchrun_and_reports_failures() -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    output = launch("engine_echo_rank", [], nproc=2, env=env, timeout=120, echo=False)
    assert "rank 0 of 2" in output and "rank 1 of 2" in output
    with pytest.raises(LaunchError, match="(?s)exited with status 1.*No module named"):
        launch("thesislib_no_such_module", [], nproc=1, echo=False, timeout=120)


def test_distributed_session_outside_torchrun_yields_the_device_and_leaves_no_group():
    import torch

    from thesislib.engine import distributed_session, is_distributed

    with distributed_session("cpu") as device:
        assert device == torch.device("cpu") and not is_distributed()
    assert not is_distributed()
