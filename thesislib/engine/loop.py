"""The training loop every chapter uses: :class:`Trainer` and its one-call form :func:`fit`.

Per optimiser step: ``grad_accum`` micro-batches are moved to the device (non-blocking,
channels_last for 4-D float tensors on CUDA), ``step_fn(model, batch) -> (loss, metrics)``
runs under bf16 autocast (CUDA with ``amp``), the loss is back-propagated (DDP averages
gradients across ranks), gradients are clipped to ``grad_clip`` global norm, the optimiser,
LR scheduler and EMA step. Loss and metrics are summed ON DEVICE and only brought to the
host every ``log_every`` steps, at checkpoints and at epoch ends; a non-finite loss is
recorded on device (its first step and value) and raised there as
:class:`NonFiniteLossError` before any checkpoint is written. On a single CPU process the
loss is checked every step, before its backward pass, since a sync costs nothing there.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from thesislib.engine.checkpoint import (FORMAT_VERSION, CheckpointError, ConfigMismatchError, checkpoint_path,
                                         latest_checkpoint, load_checkpoint, prune_checkpoints, rng_state,
                                         save_checkpoint, set_rng_state)
from thesislib.engine.config import TrainConfig, fingerprint, fingerprint_mismatch
from thesislib.engine.distributed import (all_gather_object, all_reduce_mean, get_rank, get_world_size,
                                          is_distributed, unwrap, wrap_ddp)
from thesislib.engine.ema import ModelEMA
from thesislib.engine.history import History, plain_value
from thesislib.engine.progress import ProgressReporter
from thesislib.engine.sampler import GlobalBatchSampler, SeededDataset

StepFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]
EvalFn = Callable[[nn.Module], Mapping[str, Any]]
Callback = Callable[["Trainer"], None]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; ``step`` and ``epoch`` are 1-based."""

    def __init__(self, step: int, epoch: int, value: float) -> None:
        self.step, self.epoch, self.value = step, epoch, value
        super().__init__(f"loss became {value} at step {step} (epoch {epoch})")


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested tuple / list / dict / namedtuple) batch with non-blocking copies."""
    if isinstance(batch, torch.Tensor):
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            return batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device, channels_last) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


class _Window:
    """Device-side sums of the loss and metrics over the steps since the last record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, loss: torch.Tensor, metrics: Mapping[str, torch.Tensor]) -> None:
        self.loss += loss
        for name, value in metrics.items():
            if name in self.sums:
                self.sums[name] += value
            else:
                self.sums[name] = value.to(torch.float64).clone()
            self.counts[name] = self.counts.get(name, 0) + 1
        self.steps += 1

    def means(self) -> torch.Tensor:
        """``[loss, metric_1, ...]`` averaged over the window (in ``self.sums`` order), on device."""
        parts = [self.loss / max(self.steps, 1)] + [s / self.counts[k] for k, s in self.sums.items()]
        return torch.stack(parts)


class Trainer:
    """Trains ``model`` on ``train_set`` with ``step_fn`` as configured; see :meth:`fit`.

    Arguments: ``optimizer`` (built over ``model``'s parameters), ``scheduler`` (stepped once
    per optimiser step, e.g. :func:`thesislib.engine.make_scheduler`), ``collate_fn`` for the
    engine's DataLoader, ``eval_fn(model_for_eval) -> dict`` called every ``eval_every``
    epochs on every rank with the EMA model if any, else the plain model, in eval mode
    (it decides itself about ``torch.no_grad``), ``on_step(trainer)`` after every optimiser
    step and ``on_epoch_end(trainer)`` after each epoch. After :meth:`fit`, ``history``,
    ``ema`` (a :class:`ModelEMA` or None), ``step`` and ``epoch`` describe the run; a
    callback may call :meth:`request_stop`.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_set: Dataset, step_fn: StepFn,
                 config: TrainConfig, device: torch.device, *,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 collate_fn: Callable[[list[Any]], Any] | None = None, eval_fn: EvalFn | None = None,
                 on_step: Callback | None = None, on_epoch_end: Callback | None = None) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_set, self.step_fn, self.config, self.device = train_set, step_fn, config, torch.device(device)
        self.collate_fn, self.eval_fn = collate_fn, eval_fn
        self.on_step, self.on_epoch_end = on_step, on_epoch_end
        self.history = History()
        self.ema: ModelEMA | None = None
        self.step = 0          # optimiser steps completed
        self.epoch = 0         # 0-based index of the current epoch
        self.step_in_epoch = 0
        self.steps_per_epoch = 0
        self.total_steps = 0
        self._stop = False
        self._elapsed_before = 0.0
        self._t0 = time.perf_counter()

    def request_stop(self) -> None:
        """Stop after the current step (a checkpoint is written if ``checkpoint_dir`` is set)."""
        self._stop = True

    @property
    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t0

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, device = self.config, self.device
        self.cuda = device.type == "cuda"
        self.amp = cfg.amp and self.cuda
        self.channels_last = cfg.channels_last and self.cuda
        self.rank, self.world = get_rank(), get_world_size()
        self.main = self.rank == 0
        self.model.to(device)
        if cfg.sync_batchnorm and self.cuda and self.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # same Parameters: optimizer stays valid
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ddp_model = wrap_ddp(self.model, device, cfg.ddp_find_unused_parameters)  # broadcasts rank 0's params
        if cfg.ema_decay is not None:
            self.ema = ModelEMA(self.model, cfg.ema_decay)
        self.train_model = torch.compile(self.ddp_model) if cfg.compile else self.ddp_model
        self.sampler = GlobalBatchSampler(len(self.train_set), cfg.batch_size, seed=cfg.seed, shuffle=cfg.shuffle,
                                          drop_last=cfg.drop_last, rank=self.rank, world_size=self.world,
                                          grad_accum=cfg.grad_accum)
        self.steps_per_epoch = self.sampler.steps_per_epoch
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set has {len(self.train_set)} samples: not one batch of "
                             f"{cfg.batch_size} (drop_last={cfg.drop_last})")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        # the DataLoader draws its workers' base seed from here, not from the global RNG (exact resume)
        self.loader_generator = torch.Generator().manual_seed(cfg.seed)
        self.loader = DataLoader(SeededDataset(self.train_set), batch_sampler=self.sampler, num_workers=cfg.num_workers,
                                 collate_fn=self.collate_fn, pin_memory=self.cuda,
                                 persistent_workers=cfg.num_workers > 0, generator=self.loader_generator)
        self.check_every_step = not self.cuda and not is_distributed()
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_value = torch.zeros((), dtype=torch.float64, device=device)
        self.window = _Window(device)
        self._saved_step = -1
        self._last_lr = float("nan")

    # ------------------------------------------------------------ checkpoints
    def _resume(self) -> dict[str, Any] | None:
        """Load the newest checkpoint (``resume``) and return its RNG states, or refuse to overwrite one."""
        directory = self.config.checkpoint_dir
        if directory is None:
            return None
        path = latest_checkpoint(directory)
        if path is None:
            return None
        if not self.config.resume:
            raise CheckpointError(path, "exists in checkpoint_dir; set resume=True to continue that run, "
                                        "or use an empty checkpoint_dir for a fresh one")
        state = load_checkpoint(path)
        mismatch = fingerprint_mismatch(state["config"], self.config)
        if mismatch:
            raise ConfigMismatchError(path, mismatch)
        if (state["scheduler"] is None) != (self.scheduler is None):
            has = "has" if state["scheduler"] is not None else "has no"
            raise CheckpointError(path, f"{has} LR scheduler state but the current run "
                                        f"{'has none' if self.scheduler is None else 'has one'}")
        try:
            unwrap(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise CheckpointError(path, f"does not fit the current model/optimizer/scheduler: {err}") from err
        self.history.load_state_dict(state["history"])
        self.step, self.epoch, self.step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        self._elapsed_before = float(state["elapsed"])
        self._saved_step = self.step
        rngs = state["rng"]
        return rngs[self.rank] if len(rngs) == self.world else rngs[self.rank % len(rngs)]

    def _save(self, epoch: int, step_in_epoch: int) -> None:
        """Checkpoint at the current step; the position is where training continues."""
        if self.config.checkpoint_dir is None or self._saved_step == self.step:
            return
        rngs = all_gather_object(rng_state(self.device))
        if self.main:
            state = {
                "format": FORMAT_VERSION, "model": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "step": self.step, "epoch": epoch, "step_in_epoch": step_in_epoch, "rng": rngs,
                "history": self.history.state_dict(), "config": fingerprint(self.config), "elapsed": self.elapsed,
            }
            save_checkpoint(checkpoint_path(self.config.checkpoint_dir, self.step), state)
            prune_checkpoints(self.config.checkpoint_dir, self.config.keep_checkpoints)
        self._saved_step = self.step

    # ------------------------------------------------------------ recording
    def _flush(self) -> None:
        """Materialise the window (one sync, reduced over ranks) and raise on a recorded non-finite loss."""
        bad = torch.stack([self.bad_step.to(torch.float64), self.bad_value])
        all_bad = torch.stack(all_gather_object(bad.cpu())) if is_distributed() else bad.cpu().unsqueeze(0)
        if self.window.steps:
            names = ["loss", *self.window.sums]
            means = all_reduce_mean(self.window.means()).tolist()
            seconds = time.perf_counter() - self.window.started
            record = {"step": self.step, "epoch": self.epoch + 1, "lr": self._last_lr, **dict(zip(names, means)),
                      "steps": self.window.steps, "time": self.elapsed,
                      "it_s": self.window.steps / seconds if seconds > 0 else None}
            self.history.train.append(record)
            self.progress.report(record)
            self.window.reset()
        flagged = [(int(s), v) for s, v in all_bad.tolist() if s >= 0]
        if flagged:
            step, value = min(flagged)
            raise NonFiniteLossError(step, (step - 1) // self.steps_per_epoch + 1, value)

    def _evaluate(self) -> None:
        target = self.ema.module if self.ema is not None else unwrap(self.model)
        was_training = target.training
        target.eval()
        result = self.eval_fn(target)
        target.train(was_training)
        record = {"step": self.step, "epoch": self.epoch + 1, "time": self.elapsed,
                  **{k: plain_value(k, v) for k, v in dict(result).items()}}
        self.history.eval.append(record)
        shown = " ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "time")
        self.progress.message(f"eval epoch {self.epoch + 1} step {self.step}: {shown}")

    # ------------------------------------------------------------------ loop
    def _train_step(self, loader_iter: Any, micro_batches: list[Any]) -> None:
        cfg, model = self.config, self.train_model
        total = sum(len(m) for m in micro_batches)
        step_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        step_metrics: dict[str, torch.Tensor] = {}
        for i, indices in enumerate(micro_batches):
            batch = to_device(next(loader_iter), self.device, self.channels_last)
            weight = len(indices) / total
            last = i == len(micro_batches) - 1
            no_sync = self.ddp_model.no_sync() if self.world > 1 and not last else contextlib.nullcontext()
            with no_sync:
                with torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext():
                    loss, metrics = self.step_fn(model, batch)
                if self.check_every_step and not math.isfinite(value := float(loss.detach())):
                    raise NonFiniteLossError(self.step + 1, self.epoch + 1, value)
                (loss * weight if len(micro_batches) > 1 else loss).backward()
            step_loss += loss.detach().to(torch.float64) * weight
            for name, value in metrics.items():
                value = torch.as_tensor(value, device=self.device).detach()
                if value.numel() != 1:
                    raise ValueError(f"step_fn metric {name!r} has shape {tuple(value.shape)}; metrics must be scalars")
                weighted = value.reshape(()).to(torch.float64) * weight
                step_metrics[name] = step_metrics[name] + weighted if name in step_metrics else weighted
        if cfg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            step_metrics["grad_norm"] = norm.detach().to(torch.float64)
        self._last_lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.step_in_epoch += 1
        first_bad = ~torch.isfinite(step_loss) & (self.bad_step < 0)
        self.bad_step.masked_fill_(first_bad, self.step)
        self.bad_value.copy_(torch.where(first_bad, step_loss, self.bad_value))
        self.window.add(step_loss, step_metrics)

    def fit(self) -> History:
        """Train until ``epochs`` (or ``max_steps``) are done; resume first when configured."""
        cfg = self.config
        self._setup()
        rng = self._resume()
        self.progress = ProgressReporter(cfg.progress, self.total_steps, self.step, enabled=self.main)
        if rng is not None:
            self.progress.message(f"resumed from step {self.step} (epoch {self.epoch + 1})")
            set_rng_state(rng, self.device)
        self._t0 = time.perf_counter()
        self.window.reset()
        try:
            while self.epoch < cfg.epochs and self.step < self.total_steps and not self._stop:
                self._run_epoch()
        finally:
            self.progress.close()
        return self.history

    def _run_epoch(self) -> None:
        cfg = self.config
        plan = self.sampler.set_epoch(self.epoch, self.step_in_epoch)
        self.train_model.train()
        loader_iter = iter(self.loader)
        for micro_batches in plan:
            self._train_step(loader_iter, micro_batches)
            self.progress.advance()
            epoch_done = self.step_in_epoch == self.steps_per_epoch
            finished = self.step >= self.total_steps
            save = not epoch_done and (finished or bool(cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0))
            if save or epoch_done or finished or self.step % cfg.log_every == 0:
                self._flush()  # raises on a recorded non-finite loss before anything is written
            if save:
                self._save(self.epoch, self.step_in_epoch)
            if self.on_step is not None:
                self.on_step(self)
            if self._stop and not epoch_done:
                self._flush()
                self._save(self.epoch, self.step_in_epoch)
            if (finished or self._stop) and not epoch_done:
                return
        self._end_epoch()

    def _end_epoch(self) -> None:
        cfg = self.config
        last_epoch = self.epoch + 1 == cfg.epochs or self.step >= self.total_steps
        if self.eval_fn is not None and ((self.epoch + 1) % cfg.eval_every == 0 or last_epoch):
            self._evaluate()
        self.epoch += 1
        self.step_in_epoch = 0
        self._save(self.epoch, 0)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self)


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train_set: Dataset, step_fn: StepFn,
        config: TrainConfig, device: torch.device, *, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None, eval_fn: EvalFn | None = None,
        on_step: Callback | None = None, on_epoch_end: Callback | None = None) -> History:
    """Train with :class:`Trainer` and return its :class:`History` (use ``Trainer`` to keep the EMA model)."""
    return Trainer(model, optimizer, train_set, step_fn, config, device, scheduler=scheduler, collate_fn=collate_fn,
                   eval_fn=eval_fn, on_step=on_step, on_epoch_end=on_epoch_end).fit()

