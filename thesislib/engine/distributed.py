"""Distributed data parallel under ``torchrun``: process group, rank queries, reductions, launch.

A script started by ``torchrun --nproc_per_node N`` (or :func:`launch`) calls
``device = init_distributed(device)`` first: it joins the process group from torchrun's
environment variables (NCCL on CUDA, gloo on CPU) and returns this rank's device
(``cuda:LOCAL_RANK`` on CUDA). Without torchrun every helper degrades to one process.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from thesislib.device import resolve_device
from thesislib.repro import write_json


class LaunchError(RuntimeError):
    """A ``torchrun`` job exited with a non-zero status; the message ends with its output's tail."""


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def is_distributed() -> bool:
    """True inside an initialised process group (torchrun or a test's forked workers)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes in the group (1 without one)."""
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """This process's rank on its node (torchrun's ``LOCAL_RANK``; 0 otherwise): its CUDA device index."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single-process run): the process that logs and writes files."""
    return get_rank() == 0


def init_distributed(device: str | torch.device = "auto") -> torch.device:
    """Join torchrun's process group if launched by it; return this process's device.

    On CUDA each rank takes ``cuda:LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
    Calling it again, or without torchrun, only resolves the device.
    """
    device = resolve_device(device)
    if not launched_by_torchrun():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", get_local_rank())
        torch.cuda.set_device(device)
    if not is_distributed():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://",
                                device_id=device if device.type == "cuda" else None)
    return device


def cleanup() -> None:
    """Leave the process group (call at the end of a torchrun script)."""
    if is_distributed():
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str | torch.device = "auto") -> Iterator[torch.device]:
    """``with distributed_session(args.device) as device: ...``: the body of a torchrun entry
    point. Joins the process group when launched by torchrun (:func:`init_distributed`), yields
    this process's device, and leaves the group however the body ends (:func:`cleanup`)."""
    resolved = init_distributed(device)
    try:
        yield resolved
    finally:
        cleanup()


def barrier() -> None:
    """Wait until every rank reaches this point (a no-op in one process)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` when more than one process runs, else ``model`` itself.
    ``find_unused_parameters``: let DDP skip parameters that receive no gradient in a step.

    A model without trainable parameters is returned unwrapped (DDP refuses it and has nothing to
    reduce). A model whose attribute ``ddp_broadcast_buffers`` is False keeps its own buffers on every
    rank (DDP otherwise overwrites them with rank 0's at each forward), e.g. a per-rank replay buffer.
    """
    if get_world_size() == 1 or not any(p.requires_grad for p in model.parameters()):
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters,
                                               broadcast_buffers=getattr(model, "ddp_broadcast_buffers", True))


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under ``torch.compile`` and DDP wrappers (whose state dict has clean keys)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a copy; the input is untouched)."""
    out = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= get_world_size()
    return out


def reduce_metrics(metrics: Mapping[str, torch.Tensor | float], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks in one collective and return them as floats (one sync)."""
    if not metrics:
        return {}
    values = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(())
                          for v in metrics.values()])
    return dict(zip(metrics, all_reduce_mean(values).tolist()))


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (b, ...) concatenated along dim 0 in rank order -> (W b, ...), the same on
    every rank; the gradient flows to this rank's own rows only (the others arrive detached). Shapes
    must agree over ranks. One process: ``tensor`` itself. A loss over the gathered rows, multiplied by
    W, gets DDP's gradient average right: (1/W) Σ_r W ∂L/∂(rank r's rows) = ∂L/∂θ."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[get_rank()] = tensor
    return torch.cat(parts)


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def torchrun_command(module: str, args: Sequence[str] = (), nproc: int = 1, *, nnodes: int = 1, node_rank: int = 0,
                     rdzv_endpoint: str | None = None, rdzv_id: str = "thesislib") -> list[str]:
    """The ``torchrun`` command line: one node (``--standalone``), or node ``node_rank`` of ``nnodes``
    meeting at the c10d rendezvous ``rdzv_endpoint`` (``host:port`` of a machine every node reaches)."""
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError("need nproc >= 1, nnodes >= 1 and 0 <= node_rank < nnodes; "
                         f"got {nproc}, {nnodes}, {node_rank}")
    if nnodes == 1:
        where = ["--standalone"]
    else:
        if not rdzv_endpoint:
            raise ValueError("several nodes need rdzv_endpoint='host:port' (a machine every node reaches)")
        where = [f"--nnodes={nnodes}", f"--node_rank={node_rank}", "--rdzv_backend=c10d",
                 f"--rdzv_endpoint={rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={nproc}",
            "-m", module, *map(str, args)]


def launch(module: str, args: Sequence[str] = (), nproc: int = 1, *, env: Mapping[str, str] | None = None,
           timeout: float | None = None, echo: bool = True, tail_lines: int = 80, nnodes: int = 1,
           node_rank: int = 0, rdzv_endpoint: str | None = None, rdzv_id: str = "thesislib") -> str:
    """Run ``module`` under torchrun (:func:`torchrun_command`): ``nproc`` processes on this node, which
    is node ``node_rank`` of ``nnodes`` (several nodes: start the same call on each, with its rank).

    The job's combined output is echoed line by line (``echo``) and returned; a non-zero exit
    (or exceeding ``timeout`` seconds) raises :class:`LaunchError` with the last ``tail_lines``
    lines. ``env`` adds to this process's environment.
    """
    cmd = torchrun_command(module, args, nproc, nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint,
                           rdzv_id=rdzv_id)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            tail.append(line)
            if echo:
                print(line, end="", flush=True)
        code = proc.wait()
    finally:
        if timer:
            timer.cancel()
    if code != 0 or timed_out.is_set():
        why = f"timed out after {timeout} s" if timed_out.is_set() else f"exited with status {code}"
        raise LaunchError(f"{' '.join(cmd)} {why}; last output:\n{''.join(tail)}")
    return "".join(lines)


def rank_generator(seed: int, device: torch.device) -> torch.Generator | None:
    """The random stream of a method's per-sample draws on this rank (Jenni ch. 3's drop masks and history
    picks, ch. 4's windows, noise, warps and augmentations).

    One process: ``None``, the global RNG seeded by ``seed_everything(seed)`` (the smoke's recorded
    numbers). Under torchrun every rank seeds the global RNG alike (so that the models start equal), so
    each rank gets its own generator seeded from (seed, rank): without it all ranks would draw the same
    random values and the global batch would hold ``nproc`` copies of each draw. Hand the generator to
    :class:`~thesislib.engine.Trainer` (``generators=``), which checkpoints its state per rank, so that a
    resumed run draws what an uninterrupted one would.
    """
    if get_world_size() == 1:
        return None
    gen = torch.Generator(device=device)
    gen.manual_seed(1_000_003 * (seed + 1) + 7_919 * get_rank())
    return gen


def save_main_outputs(output: str | os.PathLike[str] | None, modules: Mapping[str, nn.Module],
                      history: Any) -> None:
    """On the main process only, write every module's state dict to ``output/<name>.pt`` and ``history`` (a
    :class:`~thesislib.engine.History`) to ``output/history.json``: what a torchrun entry point hands back to
    the process that launched it. Nothing happens without ``output`` or on other ranks."""
    if not output or not is_main_process():
        return
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        torch.save(module.state_dict(), out / f"{name}.pt")
    write_json(out / "history.json", history.state_dict())


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (b, ...) concatenated along dim 0 in rank order -> (W b, ...), with the
    gradient flowing back to **every** rank's rows (``torch.distributed.nn.functional.all_gather``; its
    backward sums the ranks' gradients of each slice). A loss L computed identically on every rank from
    the gathered rows then needs no rescaling: rank r receives W ∂L/∂(its rows), and DDP's average
    (1/W) Σ_r W ∂L/∂θ|_r is ∂L/∂θ. Shapes must agree over ranks. Without a process group, or with one
    process: ``tensor`` itself (no copy)."""
    if not is_distributed() or get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()))
