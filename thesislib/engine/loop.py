"""The training loop every chapter uses: :class:`Trainer` and its one-call form :func:`fit`.

Two ways to describe a step, one loop:

* one network: ``Trainer(model, optimizer, train_set, step_fn, config, device)`` with
  ``step_fn(model, batch) -> (loss, metrics)``; the engine accumulates ``grad_accum`` micro-batches
  (weighted by their sample counts, DDP reduction on the last one), clips to ``grad_clip``, steps
  the optimiser, the scheduler and the EMA;
* several networks and optimisers: ``Trainer({"gen": G, "disc": D}, {"gen": OptimizerSlot(...),
  "disc": OptimizerSlot(...)}, train_set, update_fn, config, device)`` with
  ``update_fn(u, batches) -> metrics`` running as many phases, backward passes and optimiser steps
  as the method prescribes (:mod:`thesislib.engine.update`).

Either way: batches are moved to the device (non-blocking, channels_last for 4-D float tensors on
CUDA), the step runs under bf16 autocast (CUDA with ``amp``), losses and metrics are summed ON
DEVICE and only brought to the host every ``log_every`` steps, at checkpoints and at epoch ends;
a non-finite loss is recorded on device (its first step, value and network) and raised as
:class:`NonFiniteLossError` before any checkpoint is written. On a single CPU process the loss is
checked every step, before its backward pass, since a sync costs nothing there. Every network,
optimiser, scheduler, EMA and RNG state goes into the checkpoint; resuming continues bit for bit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from thesislib.engine.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    ConfigMismatchError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from thesislib.engine.config import TrainConfig, fingerprint, fingerprint_mismatch
from thesislib.engine.distributed import (
    all_gather_object,
    all_reduce_mean,
    get_rank,
    get_world_size,
    is_distributed,
    unwrap,
    wrap_ddp,
)
from thesislib.engine.ema import ModelEMA
from thesislib.engine.history import History, plain_value
from thesislib.engine.progress import ProgressReporter
from thesislib.engine.sampler import GlobalBatchSampler, SeededDataset
from thesislib.engine.update import OptimizerSlot, Update, UpdateFn, single_model_update

StepFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]
EvalFn = Callable[[Any], Mapping[str, Any]]
Callback = Callable[["Trainer"], None]

SINGLE = "model"  # the network / optimiser name of a one-network run


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; ``step`` and ``epoch`` are 1-based, ``name`` is the
    optimiser (network) whose loss it was (``None`` in a one-network run)."""

    def __init__(self, step: int, epoch: int, value: float, name: str | None = None) -> None:
        self.step, self.epoch, self.value, self.name = step, epoch, value, name
        what = "loss" if name is None else f"loss of {name!r}"
        super().__init__(f"{what} became {value} at step {step} (epoch {epoch})")


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
    """Device-side sums of the losses and metrics over the steps since the last record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, metrics: Mapping[str, torch.Tensor]) -> None:
        for name, value in metrics.items():
            if name in self.sums:
                self.sums[name] += value
            else:
                self.sums[name] = value.to(torch.float64).clone()
            self.counts[name] = self.counts.get(name, 0) + 1
        self.steps += 1

    def means(self) -> torch.Tensor:
        """Every metric averaged over the steps that recorded it (in ``self.sums`` order), on device."""
        return torch.stack([s / self.counts[k] for k, s in self.sums.items()])


class Trainer:
    """Trains one network (``step_fn``) or several (``update_fn``) on ``train_set``; see :meth:`fit`.

    One network: ``model`` an ``nn.Module``, ``optimizer`` built over its parameters, ``scheduler``
    stepped once per optimiser step (e.g. :func:`thesislib.engine.make_scheduler`),
    ``step_fn(model, batch) -> (loss, metrics)``; records hold ``loss``, ``lr`` (and ``grad_norm``
    when clipping). Several: ``model`` a dict of named modules, ``optimizer`` a dict of named
    :class:`~thesislib.engine.OptimizerSlot` (each with its networks, scheduler and ``grad_clip``;
    ``scheduler`` and ``TrainConfig.grad_clip`` must then be unset), ``step_fn`` an update function
    ``update_fn(u, batches) -> metrics`` (:mod:`thesislib.engine.update`); records hold
    ``loss_<name>``, ``lr_<name>`` (and ``grad_norm_<name>``) per optimiser.

    ``ema_models``: the networks whose exponential moving average is kept when
    ``TrainConfig.ema_decay`` is set (default: all). ``collate_fn`` for the engine's DataLoader;
    ``eval_fn(model_for_eval) -> dict`` called every ``eval_every`` epochs on every rank, in eval
    mode, with the EMA network where there is one, else the live one (a dict of them in the
    several-network case); it decides itself about ``torch.no_grad``. ``on_step(trainer)`` runs
    after every optimiser step and ``on_epoch_end(trainer)`` after each epoch. ``generators``: named
    ``torch.Generator`` s the step draws from besides the global RNGs (e.g. a per-rank stream of random
    masks); their states go into each checkpoint per rank, next to the global RNG states, and are
    restored on resume, so that resuming stays exact. After :meth:`fit`,
    ``history``, ``ema`` / ``emas``, ``step`` and ``epoch`` describe the run; a callback may call
    :meth:`request_stop`.
    """

    def __init__(self, model: nn.Module | Mapping[str, nn.Module],
                 optimizer: torch.optim.Optimizer | Mapping[str, OptimizerSlot], train_set: Dataset,
                 step_fn: StepFn | UpdateFn, config: TrainConfig, device: torch.device, *,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 collate_fn: Callable[[list[Any]], Any] | None = None, eval_fn: EvalFn | None = None,
                 on_step: Callback | None = None, on_epoch_end: Callback | None = None,
                 ema_models: tuple[str, ...] | None = None,
                 generators: Mapping[str, torch.Generator] | None = None) -> None:
        self.single = isinstance(model, nn.Module)
        self.generators: dict[str, torch.Generator] = dict(generators or {})
        if self.single:
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise TypeError("one network takes one torch.optim.Optimizer; several networks take a dict "
                                "of OptimizerSlot")
            self.models: dict[str, nn.Module] = {SINGLE: model}
            self.slots: dict[str, OptimizerSlot] = {
                SINGLE: OptimizerSlot(optimizer, (SINGLE,), scheduler, config.grad_clip)}
            self.update_fn: UpdateFn = single_model_update(step_fn, SINGLE)  # type: ignore[arg-type]
        else:
            self.models = dict(model)
            if not isinstance(optimizer, Mapping) or not all(isinstance(s, OptimizerSlot) for s in optimizer.values()):
                raise TypeError("several networks take optimizer={name: OptimizerSlot(...)}")
            if scheduler is not None:
                raise ValueError("several networks: give each OptimizerSlot its own scheduler")
            if config.grad_clip is not None:
                raise ValueError("several networks: set grad_clip per OptimizerSlot, not in TrainConfig")
            self.slots = dict(optimizer)
            for name, slot in self.slots.items():
                unknown = [m for m in slot.models if m not in self.models]
                if unknown:
                    raise KeyError(f"optimizer {name!r} names unknown networks {unknown}; networks are: "
                                   f"{', '.join(self.models)}")
            self.update_fn = step_fn  # type: ignore[assignment]
        names = ema_models if ema_models is not None else tuple(self.models)
        unknown = [m for m in names if m not in self.models]
        if unknown:
            raise KeyError(f"ema_models names unknown networks {unknown}; networks are: {', '.join(self.models)}")
        self.ema_names = tuple(names)
        self.train_set, self.step_fn, self.config, self.device = train_set, step_fn, config, torch.device(device)
        self.collate_fn, self.eval_fn = collate_fn, eval_fn
        self.on_step, self.on_epoch_end = on_step, on_epoch_end
        self.history = History()
        self.emas: dict[str, ModelEMA] = {}
        self.step = 0          # optimiser steps completed
        self.epoch = 0         # 0-based index of the current epoch
        self.step_in_epoch = 0
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.last_lr: dict[str, float] = {name: float("nan") for name in self.slots}
        self._stop = False
        self._elapsed_before = 0.0
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------ accessors
    @property
    def model(self) -> nn.Module:
        """The network of a one-network run (``models[name]`` otherwise)."""
        return self.models[SINGLE] if self.single else self._need_single("model")

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.slots[SINGLE].optimizer if self.single else self._need_single("optimizer")

    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        return self.slots[SINGLE].scheduler if self.single else self._need_single("scheduler")

    @property
    def ema(self) -> ModelEMA | None:
        """The EMA of a one-network run (``emas[name]`` otherwise), or ``None`` without EMA."""
        return self.emas.get(SINGLE) if self.single else self._need_single("ema")

    def _need_single(self, what: str) -> Any:
        raise AttributeError(f"Trainer.{what} exists for one network; this run has {sorted(self.models)}: "
                             f"use Trainer.{'models' if what == 'model' else 'slots' if what != 'ema' else 'emas'}")

    def metric_name(self, base: str, slot: str) -> str:
        """``loss`` / ``lr`` / ``grad_norm`` for one network, ``<base>_<slot>`` for several."""
        return base if self.single else f"{base}_{slot}"

    def nonfinite_error(self, step: int, value: float, slot: str | None) -> NonFiniteLossError:
        """The :class:`NonFiniteLossError` for 1-based ``step``, naming ``slot`` when there are several networks."""
        epoch = (step - 1) // self.steps_per_epoch + 1 if self.steps_per_epoch else self.epoch + 1
        return NonFiniteLossError(step, epoch, value, None if self.single else slot)

    def request_stop(self) -> None:
        """Stop after the current step (a checkpoint is written if ``checkpoint_dir`` is set)."""
        self._stop = True

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, across resumes."""
        return self._elapsed_before + time.perf_counter() - self._t0

    def eval_models(self) -> nn.Module | dict[str, nn.Module]:
        """What evaluation sees: each network's EMA where kept, else the live network."""
        chosen = {name: self.emas[name].module if name in self.emas else unwrap(self.models[name])
                  for name in self.models}
        return chosen[SINGLE] if self.single else chosen

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, device = self.config, self.device
        self.cuda = device.type == "cuda"
        self.amp = cfg.amp and self.cuda
        self.channels_last = cfg.channels_last and self.cuda
        self.rank, self.world = get_rank(), get_world_size()
        self.main = self.rank == 0
        for name, module in self.models.items():
            module.to(device)
            if cfg.sync_batchnorm and self.cuda and self.world > 1:
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)  # same Parameters: optimizers stay valid
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            self.models[name] = module
        # broadcasts rank 0's parameters
        self.ddp_models = {name: wrap_ddp(m, device, cfg.ddp_find_unused_parameters) for name, m in self.models.items()}
        if cfg.ema_decay is not None:
            self.emas = {name: ModelEMA(self.models[name], cfg.ema_decay) for name in self.ema_names}
        self.train_models = {name: torch.compile(m) if cfg.compile else m for name, m in self.ddp_models.items()}
        self.slot_params = {}
        self.slot_inputs: dict[str, list[torch.Tensor] | None] = {}
        for name, slot in self.slots.items():
            seen: dict[int, torch.Tensor] = {}
            for group in slot.optimizer.param_groups:
                for p in group["params"]:
                    seen.setdefault(id(p), p)
            for model_name in slot.models:
                for p in self.models[model_name].parameters():
                    if p.requires_grad:
                        seen.setdefault(id(p), p)
            self.slot_params[name] = list(seen.values())
            # one network: a plain backward (every parameter of the model gets its gradient, as DDP expects)
            self.slot_inputs[name] = None if self.single else self.slot_params[name]
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
        self.slot_order = list(self.slots)
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_value = torch.zeros((), dtype=torch.float64, device=device)
        self.bad_slot = torch.zeros((), dtype=torch.int64, device=device)
        self.window = _Window(device)
        self._saved_step = -1

    # ------------------------------------------------------------ checkpoints
    def _structure(self) -> dict[str, Any]:
        return {"models": sorted(self.models), "optimizers": {n: list(s.models) for n, s in self.slots.items()},
                "schedulers": sorted(n for n, s in self.slots.items() if s.scheduler is not None),
                "ema": sorted(self.emas)}

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
        clips = {n: s.grad_clip for n, s in self.slots.items()}
        if state["clips"] != clips:
            mismatch.append(f"per-optimizer grad_clip: checkpoint={state['clips']!r}, now={clips!r}")
        if mismatch:
            raise ConfigMismatchError(path, mismatch)
        stored = {"models": sorted(state["models"]),
                  "optimizers": {n: list(o["models"]) for n, o in state["optimizers"].items()},
                  "schedulers": sorted(n for n, v in state["schedulers"].items() if v is not None),
                  "ema": sorted(state["ema"])}
        if stored != self._structure():
            raise CheckpointError(path, f"holds networks/optimizers/schedulers/EMA {stored}, but the current run "
                                        f"has {self._structure()}")
        try:
            for name, module in self.models.items():
                unwrap(module).load_state_dict(state["models"][name])
            for name, slot in self.slots.items():
                slot.optimizer.load_state_dict(state["optimizers"][name]["state"])
                if slot.scheduler is not None:
                    slot.scheduler.load_state_dict(state["schedulers"][name])
            for name, ema in self.emas.items():
                ema.load_state_dict(state["ema"][name])
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise CheckpointError(path, f"does not fit the current networks/optimizers/schedulers: {err}") from err
        self.history.load_state_dict(state["history"])
        self.step, self.epoch, self.step_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        self._elapsed_before = float(state["elapsed"])
        self._saved_step = self.step
        rngs = state["rng"]
        rng = rngs[self.rank] if len(rngs) == self.world else rngs[self.rank % len(rngs)]
        missing = [name for name in self.generators if name not in rng.get("generators", {})]
        if missing:
            raise CheckpointError(path, f"holds no state of the generator(s) {missing} this run draws from")
        return rng

    def _save(self, epoch: int, step_in_epoch: int) -> None:
        """Checkpoint at the current step; the position is where training continues."""
        if self.config.checkpoint_dir is None or self._saved_step == self.step:
            return
        rngs = all_gather_object({**rng_state(self.device),
                                  "generators": {name: g.get_state() for name, g in self.generators.items()}})
        if self.main:
            state = {
                "format": FORMAT_VERSION,
                "models": {name: unwrap(m).state_dict() for name, m in self.models.items()},
                "optimizers": {name: {"models": list(s.models), "state": s.optimizer.state_dict()}
                               for name, s in self.slots.items()},
                "schedulers": {name: s.scheduler.state_dict() if s.scheduler is not None else None
                               for name, s in self.slots.items()},
                "ema": {name: ema.state_dict() for name, ema in self.emas.items()},
                "clips": {name: s.grad_clip for name, s in self.slots.items()},
                "step": self.step, "epoch": epoch, "step_in_epoch": step_in_epoch, "rng": rngs,
                "history": self.history.state_dict(), "config": fingerprint(self.config), "elapsed": self.elapsed,
            }
            save_checkpoint(checkpoint_path(self.config.checkpoint_dir, self.step), state)
            prune_checkpoints(self.config.checkpoint_dir, self.config.keep_checkpoints)
        self._saved_step = self.step

    # ------------------------------------------------------------ recording
    def _flush(self) -> None:
        """Materialise the window (one sync, reduced over ranks) and raise on a recorded non-finite loss."""
        bad = torch.stack([self.bad_step.to(torch.float64), self.bad_value, self.bad_slot.to(torch.float64)])
        all_bad = torch.stack(all_gather_object(bad.cpu())) if is_distributed() else bad.cpu().unsqueeze(0)
        if self.window.steps:
            names = list(self.window.sums)
            means = all_reduce_mean(self.window.means()).tolist()
            seconds = time.perf_counter() - self.window.started
            lrs = {self.metric_name("lr", n): lr for n, lr in self.last_lr.items()}
            record = {"step": self.step, "epoch": self.epoch + 1, **lrs, **dict(zip(names, means)),
                      "steps": self.window.steps, "time": self.elapsed,
                      "it_s": self.window.steps / seconds if seconds > 0 else None}
            self.history.train.append(record)
            self.progress.report(record)
            self.window.reset()
        flagged = [(int(s), v, int(k)) for s, v, k in all_bad.tolist() if s >= 0]
        if flagged:
            step, value, slot = min(flagged)
            raise self.nonfinite_error(step, value, self.slot_order[slot])

    def _evaluate(self) -> None:
        targets = self.eval_models()
        modules = [targets] if isinstance(targets, nn.Module) else list(targets.values())
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        result = self.eval_fn(targets)
        for m, mode in zip(modules, modes):
            m.train(mode)
        record = {"step": self.step, "epoch": self.epoch + 1, "time": self.elapsed,
                  **{k: plain_value(k, v) for k, v in dict(result).items()}}
        self.history.eval.append(record)
        shown = " ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float) and k != "time")
        self.progress.message(f"eval epoch {self.epoch + 1} step {self.step}: {shown}")

    # ------------------------------------------------------------------ loop
    def _train_step(self, loader_iter: Any, micro_batches: list[Any]) -> None:
        batches = [to_device(next(loader_iter), self.device, self.channels_last) for _ in micro_batches]
        update = Update(self, batches, [len(m) for m in micro_batches])
        with torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext():
            returned = self.update_fn(update, batches)
        losses = update.finish()
        if not losses:
            raise RuntimeError("the update function stepped no optimizer: call u.step(name) for each network trained")
        step_metrics: dict[str, torch.Tensor] = dict(losses)
        step_metrics.update(update.metrics)
        for name, value in (returned or {}).items():
            value = torch.as_tensor(value, device=self.device).detach()
            if value.numel() != 1:
                raise ValueError(f"metric {name!r} has shape {tuple(value.shape)}; metrics must be scalars")
            step_metrics[name] = value.reshape(()).to(torch.float64)
        self.step += 1
        self.step_in_epoch += 1
        for index, slot in enumerate(self.slot_order):
            key = self.metric_name("loss", slot)
            if key not in losses:
                continue
            first_bad = ~torch.isfinite(losses[key]) & (self.bad_step < 0)
            self.bad_step.masked_fill_(first_bad, self.step)
            self.bad_value.copy_(torch.where(first_bad, losses[key], self.bad_value))
            self.bad_slot.masked_fill_(first_bad, index)
        self.window.add(step_metrics)

    def fit(self) -> History:
        """Train until ``epochs`` (or ``max_steps``) are done; resume first when configured."""
        cfg = self.config
        self._setup()
        rng = self._resume()
        self.progress = ProgressReporter(cfg.progress, self.total_steps, self.step, enabled=self.main)
        if rng is not None:
            self.progress.message(f"resumed from step {self.step} (epoch {self.epoch + 1})")
            set_rng_state(rng, self.device)
            for name, gen in self.generators.items():
                gen.set_state(rng["generators"][name])
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
        for module in self.train_models.values():
            module.train()
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


def fit(model: nn.Module | Mapping[str, nn.Module], optimizer: torch.optim.Optimizer | Mapping[str, OptimizerSlot],
        train_set: Dataset, step_fn: StepFn | UpdateFn, config: TrainConfig, device: torch.device, *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None, eval_fn: EvalFn | None = None,
        on_step: Callback | None = None, on_epoch_end: Callback | None = None,
        ema_models: tuple[str, ...] | None = None) -> History:
    """Train with :class:`Trainer` and return its :class:`History` (use ``Trainer`` to keep the EMA networks)."""
    return Trainer(model, optimizer, train_set, step_fn, config, device, scheduler=scheduler, collate_fn=collate_fn,
                   eval_fn=eval_fn, on_step=on_step, on_epoch_end=on_epoch_end, ema_models=ema_models).fit()
