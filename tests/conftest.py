"""Shared pytest settings: CPU tests use one torch thread (2-core CI machines), GPU tests skip."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
import torch
import torch.multiprocessing as mp

torch.set_num_threads(int(os.environ.get("THESISLIB_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


# --------------------------------------------------------------------------------------------
# Several processes: a chapter's torchrun entry point as two (or more) gloo processes on the CPU.

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun_worker(rank: int, world: int, port: int, main: Callable[[list[str]], int | None],
                     argv: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    status = main(list(argv))
    assert status in (0, None), f"rank {rank}: {main.__module__}.main returned {status}"


@pytest.fixture
def torchrun_gloo() -> Callable[..., None]:
    """``torchrun_gloo(main, argv, nprocs=2)`` runs ``main(argv)`` in ``nprocs`` forked processes
    with the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT on a free
    local port), one torch thread each; a failing rank fails the test. Build anything the workers
    should inherit (imports, data) before the call: the processes are forked."""

    def run(main: Callable[[list[str]], int | None], argv: list[str], nprocs: int = 2) -> None:
        mp.start_processes(_torchrun_worker, args=(nprocs, _free_port(), main, [str(a) for a in argv]),
                           nprocs=nprocs, start_method="fork")

    return run


@pytest.fixture
def rescale_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The reports of every :func:`thesislib.nn.rescaling.krahenbuhl_rescale` call the transfer fine-tunes of
    :mod:`thesislib.eval.transfer` make during the test (the real function runs; its report is recorded)."""
    from thesislib.eval import transfer as eval_transfer

    calls: list[dict] = []
    real = eval_transfer.krahenbuhl_rescale

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(eval_transfer, "krahenbuhl_rescale", spy)
    return calls
