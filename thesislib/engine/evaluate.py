"""Run a model over a dataset without gradients and collect its outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from thesislib.engine.distributed import all_gather_object, get_rank, get_world_size
from thesislib.engine.loop import to_device
from thesislib.engine.sampler import IndexBatch, SeededDataset, data_seed


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
             amp: bool = True, channels_last: bool = False, shard: bool = True, seed: int | None = None) -> Any:
    """``fn(model, batch)`` over ``dataset`` in order, in eval mode, without gradients.

    ``fn`` returns a tensor ``(b, ...)``, a tuple of them or a dict of them; the result is the
    same structure concatenated along dim 0 on the CPU (floating outputs as float32), in dataset
    order. On CUDA the forward runs under bf16 autocast when ``amp``. The model's training
    mode is restored afterwards.

    Under DDP (``shard`` and more than one process) rank ``r`` of ``W`` evaluates the samples
    ``r, r + W, r + 2W, ...`` and the shards are gathered: every rank returns the whole result in
    dataset order, as one process would (each rank must call this; ``model`` is the plain network,
    not its DDP wrapper).

    ``seed``: for a dataset whose items draw random numbers (a random-crop transform), sample ``i``'s draws are
    seeded from ``(seed, i)`` by :class:`thesislib.engine.sampler.SeededDataset`, as the training loop seeds its
    epochs: the same view of every sample whatever the batch size, the worker count, the number of ranks or the
    state of the global generators, which the pass leaves as it found them. None: the items draw from the global
    generators as they stand.
    """
    world, rank = (get_world_size(), get_rank()) if shard else (1, 0)
    n = len(dataset)
    if world > 1:
        local = _evaluate_local(model, dataset, range(rank, n, world), fn, device, batch_size, collate_fn,
                                num_workers, amp, channels_last, seed, allow_empty=True)
        shards = all_gather_object(local)
        return _interleave(shards, n, world)
    return _evaluate_local(model, dataset, range(n), fn, device, batch_size, collate_fn, num_workers, amp,
                           channels_last, seed)


def _interleave(shards: list[Any], n: int, world: int) -> Any:
    """Put rank r's rows back at positions r, r + W, ... (shards of tensors / tuples / dicts)."""
    first = next(s for s in shards if s is not None)

    def merge(parts: list[torch.Tensor]) -> torch.Tensor:
        ref = next(p for p in parts if p is not None)
        full = torch.empty((n, *ref.shape[1:]), dtype=ref.dtype)
        for r, part in enumerate(parts):
            if part is not None:
                full[r::world] = part
        return full

    if isinstance(first, torch.Tensor):
        return merge(shards)
    if isinstance(first, dict):
        return {k: merge([s[k] if s is not None else None for s in shards]) for k in first}
    return type(first)(merge([s[i] if s is not None else None for s in shards]) for i in range(len(first)))


def _evaluate_local(model: nn.Module, dataset: Dataset, indices: range, fn: Callable[[nn.Module, Any], Any],
                    device: torch.device, batch_size: int, collate_fn: Callable[[list[Any]], Any] | None,
                    num_workers: int, amp: bool, channels_last: bool, seed: int | None,
                    allow_empty: bool = False) -> Any:
    """``fn`` over ``dataset[indices]`` in order; with ``seed`` each batch is an :class:`IndexBatch` of the
    DATASET's indices read through :class:`SeededDataset` (per-sample draws from ``(seed, index)``)."""
    cuda = device.type == "cuda"
    if seed is None:
        view = dataset if len(indices) == len(dataset) else Subset(dataset, indices)
        loader = DataLoader(view, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            collate_fn=collate_fn, pin_memory=cuda)
    else:
        epoch_seed = data_seed(seed, 0)
        batches = [IndexBatch(list(indices[b:b + batch_size]), epoch_seed) for b in range(0, len(indices), batch_size)]
        loader = DataLoader(SeededDataset(dataset), batch_sampler=batches, num_workers=num_workers,
                            collate_fn=collate_fn, pin_memory=cuda,
                            generator=torch.Generator().manual_seed(epoch_seed))  # workers' base seed
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
        if allow_empty:
            return None
        raise ValueError("evaluate: the dataset is empty")
    return _concat(outputs)
