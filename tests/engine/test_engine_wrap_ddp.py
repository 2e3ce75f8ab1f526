"""engine.wrap_ddp: a model without trainable parameters stays unwrapped (DDP refuses it), and a model's
``ddp_broadcast_buffers = False`` keeps each rank's buffers its own (two gloo processes)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from thesislib.engine.distributed import distributed_session, get_rank, wrap_ddp


class _Counter(nn.Module):
    ddp_broadcast_buffers = False

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def _worker(argv: list[str]) -> int:
    out = Path(argv[0])
    with distributed_session("cpu") as device:
        frozen = nn.Linear(2, 1).requires_grad_(False)
        plain_frozen = wrap_ddp(frozen, device)
        model = _Counter()
        wrapped = wrap_ddp(model, device)
        model.seen.fill_(float(get_rank() + 1))  # a per-rank buffer value
        wrapped(torch.ones(1, 2)).sum().backward()
        torch.save({"frozen_wrapped": plain_frozen is not frozen, "seen": float(model.seen),
                    "ddp": isinstance(wrapped, nn.parallel.DistributedDataParallel)}, out / f"r{get_rank()}.pt")
    return 0


def test_wrap_ddp_skips_frozen_models_and_honours_broadcast_buffers(tmp_path: Path, torchrun_gloo) -> None:
    torchrun_gloo(_worker, [tmp_path])
    r0, r1 = (torch.load(tmp_path / f"r{r}.pt") for r in (0, 1))
    assert not r0["frozen_wrapped"] and r0["ddp"] and r1["ddp"]
    assert (r0["seen"], r1["seen"]) == (1.0, 2.0)  # rank 1's buffer was not overwritten by rank 0's
