"""The training configuration shared by every chapter, and its optimisation fingerprint.

A checkpoint stores :func:`fingerprint` of the config that wrote it. Resuming with a
config that differs in a field that changes the optimisation (batch size, data order,
precision, clipping, accumulation, EMA) is refused, naming the fields; fields that only
change how the run is executed or reported (workers, logging, checkpoint cadence, the
number of epochs, so that a finished run can be extended) may differ freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError

Progress = Literal["auto", "bar", "log", "none"]

#: Fields whose change alters the sequence of parameter updates.
OPTIMISATION_FIELDS = ("batch_size", "shuffle", "drop_last", "seed", "amp", "grad_clip",
                       "grad_accum", "ema_decay")


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`thesislib.engine.fit` trains.

    ``batch_size`` is the GLOBAL batch: under DDP with ``W`` processes each rank loads
    ``batch_size / W`` samples per optimiser step (and ``batch_size / (W * grad_accum)``
    per micro-batch). ``amp`` (bf16 autocast) and ``channels_last`` only act on CUDA;
    CPU runs are fp32. ``max_steps`` caps the total number of optimiser steps over all
    epochs. ``checkpoint_every`` is in optimiser steps; a checkpoint is also written at
    every epoch end and when training stops, whenever ``checkpoint_dir`` is set.
    ``sync_batchnorm``: under DDP on CUDA, BatchNorm layers become ``SyncBatchNorm``, so their
    batch statistics are those of the global batch and a W-GPU run optimises what a 1-GPU run
    does (gloo on CPU has no SyncBatchNorm: each process then normalises over its own share).
    ``ddp_find_unused_parameters`` is passed to ``DistributedDataParallel`` for models whose
    forward pass leaves some parameters out of the loss (e.g. a head used on alternate steps);
    it costs an extra graph traversal per step, so it is off by default.
    """

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = False
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    grad_clip: float | None = None
    grad_accum: int = 1
    ema_decay: float | None = None
    log_every: int = 50
    eval_every: int = 1
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    keep_checkpoints: int = 2
    resume: bool = False
    progress: Progress = "auto"
    sync_batchnorm: bool = True
    ddp_find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "log_every": self.log_every, "eval_every": self.eval_every,
                    "keep_checkpoints": self.keep_checkpoints}
        for name in ("max_steps", "checkpoint_every"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if self.num_workers < 0:
            raise ConfigError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"TrainConfig.grad_clip must be positive or None, got {self.grad_clip}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"TrainConfig.ema_decay must be in [0, 1) or None, got {self.ema_decay}")
        if self.progress not in ("auto", "bar", "log", "none"):
            raise ConfigError(f"TrainConfig.progress must be auto, bar, log or none, got {self.progress!r}")
        if self.resume and self.checkpoint_dir is None:
            raise ConfigError("TrainConfig.resume=True needs a checkpoint_dir")


def fingerprint(config: TrainConfig) -> dict[str, Any]:
    """The optimisation-relevant fields of ``config``, as stored in checkpoints."""
    return {name: getattr(config, name) for name in OPTIMISATION_FIELDS}


def fingerprint_mismatch(stored: dict[str, Any], config: TrainConfig) -> list[str]:
    """``"field: checkpoint=A, now=B"`` for every optimisation field that differs."""
    current = fingerprint(config)
    return [f"{name}: checkpoint={stored.get(name)!r}, now={current[name]!r}"
            for name in OPTIMISATION_FIELDS if stored.get(name) != current[name]]


#: The run-bookkeeping fields of a chapter's parameters that :func:`train_config` carries over.
RUN_FIELDS = ("seed", "amp", "compile", "progress", "num_workers")


def train_config(run: Any, *, batch_size: int, iterations: int | None = None, epochs: int | None = None,
                 checkpoint_dir: str | None = None, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of one training run of a chapter, in one call.

    ``run`` is the chapter's parameters (a :class:`thesislib.params.RunParams` subclass, or any
    object with the attributes of :data:`RUN_FIELDS`; missing ones keep TrainConfig's defaults).
    Give exactly one of ``iterations`` (optimiser steps: the run lasts that many steps, however
    many epochs that takes) or ``epochs``. ``checkpoint_dir`` turns on resumable checkpoints
    (``resume=True``). ``overrides`` set any other TrainConfig field (``grad_clip``, ``ema_decay``...);
    an unknown name is a :class:`ConfigError` listing the valid ones.
    """
    if (iterations is None) == (epochs is None):
        raise ConfigError("train_config needs exactly one of iterations= or epochs=")
    values: dict[str, Any] = {name: getattr(run, name) for name in RUN_FIELDS if hasattr(run, name)}
    if iterations is not None:
        if not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
        values.update(epochs=10**9, max_steps=iterations)
    else:
        values.update(epochs=epochs)
    values.update(batch_size=batch_size)
    if checkpoint_dir:
        values.update(checkpoint_dir=str(checkpoint_dir), resume=True)
    valid = [f for f in TrainConfig.__dataclass_fields__]
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        raise ConfigError(f"unknown TrainConfig field(s) {unknown}; valid names are: {', '.join(valid)}")
    values.update(overrides)
    return TrainConfig(**values)
