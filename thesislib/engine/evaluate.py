"""Run a model over a dataset without gradients and collect its outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from thesislib.engine.loop import to_device


def _to_host(value: torch.Tensor) -> torch.Tensor:
    value = value.detach()
    return (value.float() if value.is_floating_point() else value).cpu()


def _concat(outputs: list[Any]) -> Any:
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, dict):
        return {k: torch.cat([o[k] for o in outputs]) for k in first}
    return type(first)(torch.cat(parts) for parts in zip(*outputs))


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, fn: Callable[[nn.Module, Any], Any], device: torch.device, *,
             batch_size: int = 256, collate_fn: Callable[[list[Any]], Any] | None = None, num_workers: int = 0,
             amp: bool = True, channels_last: bool = False) -> Any:
    """``fn(model, batch)`` over ``dataset`` in order, in eval mode, without gradients.

    ``fn`` returns a tensor ``(b, ...)``, a tuple of them or a dict of them; the result is the
    same structure concatenated along dim 0 on the CPU (floating outputs as float32), in dataset
    order. On CUDA the forward runs under bf16 autocast when ``amp``. The model's training
    mode is restored afterwards.
    """
    cuda = device.type == "cuda"
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_fn, pin_memory=cuda)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for batch in loader:
            batch = to_device(batch, device, channels_last and cuda)
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp and cuda else contextlib.nullcontext():
                out = fn(model, batch)
            if isinstance(out, torch.Tensor):
                outputs.append(_to_host(out))
            elif isinstance(out, dict):
                outputs.append({k: _to_host(v) for k, v in out.items()})
            else:
                outputs.append(tuple(_to_host(v) for v in out))
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("evaluate: the dataset is empty")
    return _concat(outputs)
