"""The pluggable update of one training step: named networks, named optimisers, several backward passes.

A method that trains one network with one loss gives :class:`~thesislib.engine.Trainer` a step
function ``step_fn(model, batch) -> (loss, metrics)`` and never sees this module. A method that
alternates networks (a GAN's generator and discriminator, an inpainter against a classifier,
two-stage schedules) gives the trainer a dict of networks, a dict of :class:`OptimizerSlot` and an
update function ``update_fn(u: Update, batches) -> metrics`` that runs its phases in the order the
method prescribes::

    def update_fn(u, batches):            # batches: TrainConfig.grad_accum chunks of the step's batch
        real, z = batches[0]
        with u.phase("disc"):             # only "disc"'s parameters receive gradients here
            fake = u.models["gen"](z).detach()
            d_loss = bce(u.models["disc"](real), 1) + bce(u.models["disc"](fake), 0)
            u.backward(d_loss)
        u.step("disc")                    # clip disc's gradients, step, zero them, schedule, EMA
        with u.phase("gen"):
            g_loss = bce(u.models["disc"](u.models["gen"](z)), 1)
            u.backward(g_loss)            # the discriminator's .grad is left untouched
        u.step("gen")
        return {"d_real": ...}

Semantics, so that the multi-network case is as exact as the single one:

* ``phase(slot)`` restricts every :meth:`Update.backward` to the parameters of that slot's
  networks (``torch.autograd.backward(..., inputs=...)``), so a generator loss never leaves
  gradients in the discriminator. Under DDP the networks outside the slot are entered in
  ``no_sync`` (their forward passes prepare no gradient reduction); ``sync=False`` does the same for
  the slot's own networks, for the non-final micro-batches of an accumulation
  (:meth:`Update.accumulate` does this with the right weights).
* ``backward(loss, weight)`` back-propagates ``weight * loss`` and records the weighted loss for
  the slot; a non-finite loss is flagged on the device with its step and slot (raised by the
  trainer as :class:`~thesislib.engine.NonFiniteLossError` naming the network) and, on one CPU
  process, raised at once before the backward pass.
* ``step(slot)`` clips the slot's gradients to its own ``grad_clip`` (global norm), steps its
  optimiser and scheduler, sets its gradients to ``None`` and updates the EMA of its networks.
  The recorded ``loss_<slot>`` of the training step is the mean over the slot's optimiser steps
  in that update of the weighted losses back-propagated before each.
* Calls of a network outside any phase must run under ``torch.no_grad()`` (under DDP a forward
  with gradients outside a phase would wait for a gradient reduction that never comes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class OptimizerSlot:
    """One named optimiser of a multi-network run.

    ``models``: names (keys of the trainer's network dict) whose parameters this optimiser trains;
    ``scheduler``: stepped after every step of this optimiser; ``grad_clip``: global gradient-norm
    bound for this optimiser's parameters (``None``: no clipping).
    """

    optimizer: torch.optim.Optimizer
    models: tuple[str, ...]
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.models, str):
            object.__setattr__(self, "models", (self.models,))
        if not self.models:
            raise ValueError("an OptimizerSlot trains at least one network: give models=('name', ...)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")


UpdateFn = Callable[["Update", list[Any]], Mapping[str, torch.Tensor]]


class Update:
    """What an update function sees of the trainer during one training step (see the module doc).

    ``models``: the networks in their training form (DDP / compiled wrappers), by name;
    ``batches``: the step's micro-batches on the device; ``sizes``: their sample counts;
    ``step_index``: optimiser-step index of this update (0-based); ``trainer``: the running
    :class:`~thesislib.engine.Trainer` (typed ``Any`` here: this module sits below the loop).
    """

    def __init__(self, trainer: Any, batches: list[Any], sizes: Sequence[int]) -> None:
        self.trainer = trainer
        self.models: Mapping[str, nn.Module] = trainer.train_models
        self.batches = batches
        self.sizes = list(sizes)
        self.step_index = trainer.step
        self._active: str | None = None
        self._pending: dict[str, torch.Tensor] = {}
        self._loss_sum: dict[str, torch.Tensor] = {}
        self._steps: dict[str, int] = {}
        self.metrics: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ phases
    @contextlib.contextmanager
    def phase(self, slot: str, *, sync: bool = True) -> Iterator[None]:
        """Compute gradients for ``slot`` only; ``sync=False`` also defers its DDP gradient reduction."""
        trainer = self.trainer
        if slot not in trainer.slots:
            raise KeyError(f"unknown optimizer {slot!r}; optimizers are: {', '.join(trainer.slots)}")
        if self._active is not None:
            raise RuntimeError(f"phase({slot!r}) inside phase({self._active!r}): phases do not nest")
        own = set(trainer.slots[slot].models)
        with contextlib.ExitStack() as stack:
            if trainer.world > 1:
                for name, wrapped in trainer.ddp_models.items():
                    if isinstance(wrapped, nn.parallel.DistributedDataParallel) and (name not in own or not sync):
                        stack.enter_context(wrapped.no_sync())
            self._active = slot
            try:
                yield
            finally:
                self._active = None

    def backward(self, loss: torch.Tensor, weight: float = 1.0) -> None:
        """Back-propagate ``weight * loss`` into the active phase's parameters and record it."""
        slot = self._active
        if slot is None:
            raise RuntimeError("Update.backward outside a phase: wrap it in `with u.phase(name):`")
        trainer = self.trainer
        if loss.numel() != 1:
            raise ValueError(f"the loss of {slot!r} has shape {tuple(loss.shape)}; backward needs a scalar")
        if trainer.check_every_step and not math.isfinite(value := float(loss.detach())):
            raise trainer.nonfinite_error(trainer.step + 1, value, slot)
        scaled = loss * weight if weight != 1.0 else loss
        inputs = trainer.slot_inputs[slot]
        torch.autograd.backward(scaled, inputs=inputs if inputs is not None else None)
        weighted = loss.detach().to(torch.float64) * weight
        self._pending[slot] = self._pending[slot] + weighted if slot in self._pending else weighted

    def accumulate(self, slot: str, loss_fn: Callable[[Any], torch.Tensor],
                   batches: Sequence[Any] | None = None, sizes: Sequence[int] | None = None) -> torch.Tensor:
        """Gradient accumulation for ``slot`` over ``batches`` (default: the step's micro-batches):
        ``loss_fn(batch)`` per chunk, weighted by its share of the samples, the DDP reduction deferred
        to the last chunk. Returns the weighted mean loss (detached). Does not step."""
        batches = self.batches if batches is None else list(batches)
        sizes = (self.sizes if batches is self.batches else [1] * len(batches)) if sizes is None else list(sizes)
        total = float(sum(sizes))
        mean = torch.zeros((), dtype=torch.float64, device=self.trainer.device)
        for i, (batch, size) in enumerate(zip(batches, sizes)):
            with self.phase(slot, sync=i == len(batches) - 1):
                loss = loss_fn(batch)
                self.backward(loss, weight=size / total)
            mean = mean + loss.detach().to(torch.float64) * (size / total)
        return mean

    def step(self, slot: str) -> None:
        """Clip, step and zero ``slot``'s optimiser, then its scheduler and its networks' EMA."""
        trainer = self.trainer
        if self._active is not None:
            raise RuntimeError(f"Update.step({slot!r}) inside phase({self._active!r}): step after the phase")
        spec = trainer.slots[slot]
        params = trainer.slot_params[slot]
        if spec.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            self.metrics[trainer.metric_name("grad_norm", slot)] = norm.detach().to(torch.float64)
        trainer.last_lr[slot] = float(spec.optimizer.param_groups[0]["lr"])
        spec.optimizer.step()
        spec.optimizer.zero_grad(set_to_none=True)
        for p in params:
            p.grad = None
        if spec.scheduler is not None:
            spec.scheduler.step()
        for name in spec.models:
            if name in trainer.emas:
                trainer.emas[name].update(trainer.models[name])
        pending = self._pending.pop(slot, None)
        if pending is not None:
            self._loss_sum[slot] = self._loss_sum[slot] + pending if slot in self._loss_sum else pending
        self._steps[slot] = self._steps.get(slot, 0) + 1

    # ------------------------------------------------------------- bookkeeping
    def finish(self) -> dict[str, torch.Tensor]:
        """The step's losses (``loss_<slot>``, or ``loss`` for a single model) for the trainer's record."""
        if self._pending:
            raise RuntimeError(f"the update back-propagated into {sorted(self._pending)} without stepping "
                               "their optimizers (call u.step(name) after the phase)")
        return {self.trainer.metric_name("loss", slot): total / self._steps[slot]
                for slot, total in self._loss_sum.items()}


def single_model_update(step_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, Any]]],
                        name: str = "model") -> UpdateFn:
    """The update of a one-network run: ``step_fn(model, micro_batch) -> (loss, metrics)`` accumulated
    over the micro-batches (weights = sample shares, DDP reduction on the last), then one step.
    Metrics are the weighted means over micro-batches."""

    def update(u: Update, batches: list[Any]) -> dict[str, torch.Tensor]:
        total = float(sum(u.sizes))
        model = u.models[name]
        metrics: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(batches):
            weight = u.sizes[i] / total
            with u.phase(name, sync=i == len(batches) - 1):
                loss, values = step_fn(model, batch)
                u.backward(loss, weight=weight if len(batches) > 1 else 1.0)
            for key, value in values.items():
                value = torch.as_tensor(value, device=u.trainer.device).detach()
                if value.numel() != 1:
                    raise ValueError(f"step_fn metric {key!r} has shape {tuple(value.shape)}; metrics must be scalars")
                weighted = value.reshape(()).to(torch.float64) * weight
                metrics[key] = metrics[key] + weighted if key in metrics else weighted
        u.step(name)
        return metrics

    return update
