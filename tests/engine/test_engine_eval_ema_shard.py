"""Evaluation sees the EMA weights when EMA is on; ``evaluate`` shards over DDP ranks and gathers in order."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from engine_testkit import MLP, RegressionSet, regression_step
from torch.utils.data import TensorDataset

from thesislib.engine import TrainConfig, Trainer, cleanup, evaluate, init_distributed

CPU = torch.device("cpu")


def _mse(model: torch.nn.Module) -> float:
    data = RegressionSet(37)
    with torch.no_grad():
        return F.mse_loss(model(data.x), data.y).item()


def test_eval_fn_receives_the_ema_model_and_scores_it() -> None:
    torch.manual_seed(0)
    model = MLP()
    seen = []

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        seen.append(m)
        return {"mse": _mse(m)}

    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), RegressionSet(37), regression_step,
                      TrainConfig(epochs=3, batch_size=8, ema_decay=0.8, progress="none"), CPU, eval_fn=eval_fn)
    trainer.fit()
    assert all(m is trainer.ema.module for m in seen) and len(seen) == 3
    recorded = trainer.history.get("mse", kind="eval")[-1]
    assert recorded == _mse(trainer.ema.module)
    assert recorded != _mse(model)  # the live model scores differently: evaluating it would be caught
    # without EMA the live model is evaluated
    live = MLP()
    plain = Trainer(live, torch.optim.SGD(live.parameters(), lr=0.1), RegressionSet(37), regression_step,
                    TrainConfig(epochs=1, batch_size=8, progress="none"), CPU, eval_fn=eval_fn)
    seen.clear()
    plain.fit()
    assert seen == [plain.model]


def _shard_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = init_distributed("cpu")
    data = TensorDataset(torch.arange(11.0).reshape(11, 1), torch.arange(11))
    seen_rows = []

    def fn(m, batch):
        seen_rows.append(batch[1].clone())
        return {"double": m(batch[0]), "index": batch[1]}

    out = evaluate(torch.nn.Identity(), data, lambda m, b: fn(m, b), device, batch_size=4)
    torch.save({"out": out, "seen": torch.cat(seen_rows)}, Path(out_dir) / f"rank{rank}.pt")
    cleanup()


def test_evaluate_shards_over_ranks_and_gathers_in_dataset_order(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_shard_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method="fork")
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert results[0]["seen"].tolist() == [0, 2, 4, 6, 8, 10] and results[1]["seen"].tolist() == [1, 3, 5, 7, 9]
    for result in results:  # every rank holds the whole result, in order
        assert result["out"]["index"].tolist() == list(range(11))
        assert result["out"]["double"].flatten().tolist() == [float(i) for i in range(11)]
