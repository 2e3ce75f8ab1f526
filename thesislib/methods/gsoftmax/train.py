"""Training entry points of the G-softmax chapter (single- and multi-label).

* :func:`train`: one :class:`~thesislib.methods.gsoftmax.config.RunSpec` with the shared engine
  (its :class:`~thesislib.engine.TrainConfig` from :func:`engine_config`, i.e.
  :func:`thesislib.engine.train_config`), then :func:`~thesislib.methods.gsoftmax.evaluate.evaluate`;
  returns a :class:`GSoftmaxResult`. The replicate's seed is set once, by
  :func:`thesislib.repro.seed_everything`, before the data and the network are drawn.
* :func:`main` / ``python -m thesislib.methods.gsoftmax.train --config run.json --output DIR``: one
  run, the unit that ``torchrun`` launches (DDP across processes; rank 0 writes
  ``DIR/result.json`` and ``DIR/outputs.npz``); :func:`run` does it in-process (``nproc == 1``) or
  through :func:`thesislib.engine.launch` and loads the outputs back; :func:`run_many` runs a list.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.config import ConfigError
from thesislib.device import resolve_device
from thesislib.engine import (
    TrainConfig,
    Trainer,
    build_schedule,
    distributed_session,
    get_world_size,
    is_main_process,
    launch,
    make_scheduler,
    steps_per_epoch,
    train_config,
    unwrap,
)
from thesislib.methods.gsoftmax.config import RunSpec, load_spec, spec_from_mapping, spec_to_dict
from thesislib.methods.gsoftmax.data import ExperimentData, prepare_data
from thesislib.methods.gsoftmax.evaluate import evaluate
from thesislib.methods.gsoftmax.losses import gsoftmax_multilabel_loss
from thesislib.methods.gsoftmax.model import GSoftmaxNet, build_model
from thesislib.methods.gsoftmax.protocol import experiment_id, id_slug
from thesislib.methods.gsoftmax.transform import gsoftmax_param_groups
from thesislib.repro import seed_everything, write_json


@dataclass
class GSoftmaxResult:
    """A finished run. ``metrics``: scalars (errors and mAP in %); ``per_class``: (m,) lists;
    ``outputs``: test-set arrays (single-label ``x``, ``z`` (N, m), ``labels`` (N,); multi-label
    ``x``, ``z`` (N, 2m), ``scores``, ``targets`` (N, m)); ``gaussians``: ``epoch`` (E+1,), ``mu`` and
    ``sigma`` (E+1, outputs) of the G-softmax transform at the start and after every epoch;
    ``history``: the engine's training records."""

    experiment_id: str
    config: RunSpec
    metrics: dict[str, float]
    per_class: dict[str, list[float]]
    outputs: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    gaussians: dict[str, list] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    world_size: int = 1

    def save(self, directory: str | Path) -> Path:
        """Write ``result.json`` and ``outputs.npz`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        record = {"experiment_id": self.experiment_id, "config": spec_to_dict(self.config), "metrics": self.metrics,
                  "per_class": self.per_class, "class_names": list(self.class_names), "gaussians": self.gaussians,
                  "history": self.history, "seconds": self.seconds, "world_size": self.world_size}
        write_json(directory / "result.json", record)
        np.savez_compressed(directory / "outputs.npz", **self.outputs)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> GSoftmaxResult:
        directory = Path(directory)
        record = json.loads((directory / "result.json").read_text())
        with np.load(directory / "outputs.npz") as npz:
            outputs = {k: npz[k] for k in npz.files}
        return cls(record["experiment_id"], spec_from_mapping(record["config"]), record["metrics"],
                   record["per_class"], outputs, tuple(record["class_names"]), record["gaussians"],
                   record["history"], record["seconds"], record["world_size"])


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------

def checkpoint_dir(config: RunSpec) -> str | None:
    """``<checkpoint_root>/<experiment id as a directory name>/seed<seed>``, or None without a root."""
    root = config.params.checkpoint_root
    return str(Path(root) / id_slug(experiment_id(config)) / f"seed{config.seed}") if root else None


def engine_config(config: RunSpec) -> TrainConfig:
    """The engine's :class:`TrainConfig` of one run, through :func:`thesislib.engine.train_config`:
    the part's epochs and (global) batch size, the replicate seed, the execution settings of the
    params, resumable checkpoints when ``checkpoint_root`` is set."""
    p = config.params
    return train_config(p, batch_size=config.batch_size, epochs=config.epochs, checkpoint_dir=checkpoint_dir(config),
                        seed=config.seed, max_steps=config.max_steps, channels_last=p.channels_last,
                        log_every=p.log_every)


def _schedule(config: RunSpec, spe: int) -> Any:
    args: dict[str, Any] = {}
    if config.schedule == "multistep":
        args = {"milestones": config.params.milestones, "gamma": config.params.gamma}
    elif config.schedule == "malleable":
        args = {"pieces": config.params.malleable_pieces, "base": config.params.malleable_base}
    elif config.schedule == "cosine":
        args = {"total_steps": config.epochs}
    return build_schedule(config.schedule, steps_per_epoch=spe, **args)


def _gaussian_snapshot(model: GSoftmaxNet) -> dict[str, Any]:
    """The transform's mu and sigma (lists, for the trajectories) and their means (shown in the log)."""
    t = unwrap(model).transform
    mu, sigma = t.mu.detach().double().cpu(), t.sigma.detach().double().cpu()
    return {"mu": mu.tolist(), "sigma": sigma.tolist(), "mu_mean": float(mu.mean()), "sigma_mean": float(sigma.mean())}


def make_step_fn(config: RunSpec, data: ExperimentData) -> Callable[[nn.Module, Any], tuple[Tensor, dict]]:
    """The engine's ``step_fn(model, batch) -> (loss, metrics)``.

    Single-label: cross-entropy of ``z`` (Eq. 13; plain softmax when ``z = x``), train accuracy on
    ``argmax z``. Multi-label: :func:`~thesislib.methods.gsoftmax.losses.gsoftmax_multilabel_loss`
    of ``z`` with ``config.multilabel_reading`` (the transform was already applied by the model).
    """
    needs_target = config.method == "lsoftmax"

    def single(model: nn.Module, batch: Any) -> tuple[Tensor, dict]:
        inputs, targets = data.train_batch(batch)
        _, z = model(inputs, targets if needs_target else None)
        z = z.float()
        return F.cross_entropy(z, targets), {"acc": (z.argmax(1) == targets).float().mean()}

    def multi(model: nn.Module, batch: Any) -> tuple[Tensor, dict]:
        inputs, targets = data.train_batch(batch)
        _, z = model(inputs)
        return gsoftmax_multilabel_loss(z.float(), targets, None, reading=config.multilabel_reading), {}

    return multi if data.multilabel else single


def train(config: RunSpec, device: str | torch.device = "auto") -> GSoftmaxResult:
    """Train ``config`` on ``device`` with the shared engine, evaluate, return the result.

    Seeds every generator with ``config.seed`` first (the one place a replicate's seed is set),
    so a run is reproducible in-process. The
    optimiser is SGD over :func:`gsoftmax_param_groups` (mu/sigma without weight decay); the
    schedule is stepped per optimiser step. Under ``torchrun`` (process group initialised) the
    engine trains with DDP; ``batch_size`` is global.
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    seed_everything(config.seed)
    data = prepare_data(config, device)
    model = build_model(config, data.num_outputs, data.in_features)
    groups = gsoftmax_param_groups(model, config.weight_decay, config.gaussian_lr)
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    settings = engine_config(config)
    spe = steps_per_epoch(len(data.train_set), settings.batch_size, settings.drop_last, get_world_size())
    scheduler = make_scheduler(optimizer, _schedule(config, spe))
    track = model.transform is not None
    start = _gaussian_snapshot(model) if track else None
    trainer = Trainer(model, optimizer, data.train_set, make_step_fn(config, data), settings, device,
                      scheduler=scheduler, collate_fn=data.collate_fn, eval_fn=_gaussian_snapshot if track else None)
    began = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - began
    metrics, per_class, outputs = evaluate(model, data, config, device)
    gaussians: dict[str, list] = {}
    if track:
        records = history.eval
        gaussians = {"epoch": [0] + [r["epoch"] for r in records], "mu": [start["mu"]] + [r["mu"] for r in records],
                     "sigma": [start["sigma"]] + [r["sigma"] for r in records]}
    eid = experiment_id(config, len(data.train_set), len(data.test_set))
    return GSoftmaxResult(eid, config, metrics, per_class, outputs, data.class_names, gaussians,
                          [dict(r) for r in history.train], seconds, get_world_size())


def run(config: RunSpec, device: str | torch.device = "auto", nproc: int = 1,
        output_dir: str | Path | None = None, timeout: float | None = None) -> GSoftmaxResult:
    """Train one config: in this process (``nproc == 1``; written to ``output_dir`` if given) or as
    ``nproc`` DDP processes through ``torchrun`` (:func:`thesislib.engine.launch`), whose rank 0
    writes ``output_dir`` (a temporary directory if None), loaded back here."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        result = train(config, device)
        if output_dir:
            result.save(output_dir)
        return result
    device_type = resolve_device(device).type
    with tempfile.TemporaryDirectory(prefix="gsoftmax-") as tmp:
        out = Path(output_dir) if output_dir else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = write_json(out / "config.json", spec_to_dict(config))
        launch("thesislib.methods.gsoftmax.train",
               ["--config", str(cfg_path), "--output", str(out), "--device", device_type], nproc=nproc,
               timeout=timeout)
        return GSoftmaxResult.load(out)


def run_many(configs: Sequence[RunSpec], device: str | torch.device = "auto", nproc: int = 1,
             output_root: str | Path | None = None, verbose: bool = True) -> list[GSoftmaxResult]:
    """:func:`run` every config in order; with ``output_root`` each run is written to
    ``<output_root>/<experiment id as a path>/seed<seed>/``. Prints one line per run when ``verbose``."""
    results = []
    for config in configs:
        out = None
        if output_root:
            out = Path(output_root) / id_slug(experiment_id(config)) / f"seed{config.seed}"
        result = run(config, device, nproc, out)
        results.append(result)
        if verbose:
            key = "map" if config.multilabel else "top1_error"
            print(f"{result.experiment_id} seed {config.seed}: {key} {result.metrics[key]:.2f} "
                  f"({result.seconds:.1f} s)", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: train one config (JSON or YAML), write ``result.json`` + ``outputs.npz`` (rank 0)."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.gsoftmax.train",
                                     description="Train and evaluate one G-softmax configuration.")
    parser.add_argument("--config", required=True, help="a JSON or YAML file of one RunSpec (spec_to_dict)")
    parser.add_argument("--output", required=True, help="directory for result.json and outputs.npz")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        config = load_spec(args.config)
    except (ConfigError, OSError, json.JSONDecodeError) as err:
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        result = train(config, device)
        if is_main_process():
            result.save(args.output)
            print(f"{result.experiment_id}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()
                                                          if k in ("top1_error", "map")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
