"""Two nodes, played by two local torchrun launches (gloo) meeting at a c10d rendezvous endpoint."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
import torch
from engine_ddp_worker import DDP_CONFIG, build
from engine_testkit import RegressionSet, regression_step

from thesislib.engine import TrainConfig, fit, launch, torchrun_command

HERE = Path(__file__).resolve().parent


def test_torchrun_command_for_several_nodes() -> None:
    cmd = torchrun_command("pkg.train", ["--x", 1], nproc=4, nnodes=2, node_rank=1, rdzv_endpoint="head:29500")
    assert "--nnodes=2" in cmd and "--node_rank=1" in cmd and "--rdzv_endpoint=head:29500" in cmd
    assert "--standalone" not in cmd and cmd[-3:] == ["pkg.train", "--x", "1"]
    assert "--standalone" in torchrun_command("pkg.train")
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        torchrun_command("pkg.train", nnodes=2)


@pytest.mark.slow
def test_two_nodes_train_like_one_process(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "two_nodes.pt"
    errors: list[BaseException] = []

    def node(rank: int) -> None:
        try:
            launch("engine_node_worker", [str(out)], nproc=1, nnodes=2, node_rank=rank,
                   rdzv_endpoint=f"127.0.0.1:{port}", rdzv_id=f"test{port}", env=env, timeout=240, echo=False)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            errors.append(err)

    threads = [threading.Thread(target=node, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    saved = torch.load(out, weights_only=True)
    assert saved["world"] == 2
    model, optimizer = build()
    fit(model, optimizer, RegressionSet(36, noise=0.05), regression_step,
        TrainConfig(**{**DDP_CONFIG, "progress": "none"}), torch.device("cpu"))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(saved["state"][name], value, rtol=1e-5, atol=1e-6)
