"""The DDP training worker of test_engine_ddp.py.

``ddp_worker(rank, world, port, out_dir)`` sets the environment variables torchrun would
set, joins the gloo group through ``init_distributed`` and trains the testkit MLP; rank 0
saves the final parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from engine_testkit import MLP, RegressionSet, regression_step

from thesislib.engine import (
    TrainConfig,
    cleanup,
    fit,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    reduce_metrics,
)

DDP_CONFIG = dict(epochs=2, batch_size=8, log_every=2, progress="log", seed=5)


def build() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = MLP(dropout=0.0)
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


class WithUnusedHead(torch.nn.Module):
    """The testkit MLP plus a head that never reaches the loss (DDP must be told)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = MLP(dropout=0.0)
        self.unused = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def unused_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """Trains :class:`WithUnusedHead` under DDP with ``ddp_find_unused_parameters``; rank 0 saves
    the final parameters."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = init_distributed("cpu")
    torch.manual_seed(0)
    model = WithUnusedHead()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    fit(model, optimizer, RegressionSet(16, noise=0.05), regression_step,
        TrainConfig(epochs=1, batch_size=8, progress="none", seed=1, ddp_find_unused_parameters=True), device)
    if is_main_process():
        torch.save(model.state_dict(), Path(out_dir) / "unused.pt")
    cleanup()


def ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = init_distributed("cpu")
    assert (get_rank(), get_world_size()) == (rank, world)
    model, optimizer = build()
    history = fit(model, optimizer, RegressionSet(36, noise=0.05), regression_step,
                  TrainConfig(**DDP_CONFIG, checkpoint_dir=str(Path(out_dir) / "ckpt")), device)
    reduced = reduce_metrics({"rank": torch.tensor(float(rank))}, device)
    if is_main_process():
        torch.save({"state": model.state_dict(), "loss": history.get("loss").tolist(), "rank_mean": reduced["rank"]},
                   Path(out_dir) / "ddp.pt")
    cleanup()

