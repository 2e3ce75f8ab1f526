"""Training and evaluation entry points of the G-softmax chapter (single- and multi-label).

* :class:`GSoftmaxConfig`: one run (data set, backbone, method, optimisation, execution);
  build it from a mapping with :func:`thesislib.config.from_mapping` (unknown keys are rejected).
* :func:`experiment_id`: the run's id; the ids of ``thesislib/replication/gsoftmax.yaml`` exactly
  when the run follows the paper's protocol on the paper's data, descriptive ids otherwise.
* :func:`train`: trains with the shared engine (:func:`thesislib.engine.fit` machinery), then
  :func:`evaluate`; returns a :class:`GSoftmaxResult`.
* :func:`main` / ``python -m thesislib.methods.gsoftmax.train --config cfg.json --output DIR``: one
  run, the unit that ``torchrun`` launches (DDP across processes; rank 0 writes
  ``DIR/result.json`` and ``DIR/outputs.npz``); :func:`run` does it in-process (``nproc == 1``) or
  through :func:`thesislib.engine.launch` and loads the outputs back.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from thesislib.config import ConfigError, from_mapping, load_yaml, to_dict
from thesislib.device import resolve_device
from thesislib.engine import (
    TrainConfig,
    Trainer,
    all_gather_object,
    build_schedule,
    cleanup,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    launch,
    make_scheduler,
    steps_per_epoch,
    unwrap,
)
from thesislib.engine import evaluate as engine_evaluate
from thesislib.methods.gsoftmax.analysis import multilabel_evaluation, single_label_evaluation
from thesislib.methods.gsoftmax.experiments import (
    DATASETS,
    MULTI_LABEL_DATASETS,
    ExperimentData,
    GSoftmaxNet,
    backbone_compatible,
    build_model,
    make_step_fn,
    parse_backbone,
    prepare_data,
)
from thesislib.methods.gsoftmax.losses import MULTILABEL_READINGS
from thesislib.methods.gsoftmax.transform import SIGMA_PARAMS, gsoftmax_param_groups
from thesislib.repro import seed_everything, write_json

METHODS: tuple[str, ...] = ("softmax", "gsoftmax", "lsoftmax")
SCHEDULE_NAMES: tuple[str, ...] = ("constant", "multistep", "malleable", "cosine")
PAPER_MALLEABLE = ((1000, 0.0, -8.0), (100, -8.0, -9.0))


@dataclass(frozen=True)
class GSoftmaxConfig:
    """One training run. Defaults are the digits smoke setting; the paper's are in ``configs/gsoftmax/``.

    Method: ``method`` softmax | gsoftmax | lsoftmax (single-label only); ``lam`` (fixed weight of the
    distribution term), ``mu_init``/``sigma_init`` (Table II-IV initialisations), ``learn_gaussians``,
    ``sigma_param`` (exp | softplus | raw), ``gaussian_lr`` (None: the network's LR; the Gaussians never
    get weight decay), ``multilabel_reading`` (pairwise | eq16 | eq15, see ``losses``),
    ``lsoftmax_margin`` and ``lsoftmax_beta`` = (base, gamma, power, minimum) of its annealing.
    Data: ``dataset``, ``backbone``, ``hidden`` (MLP widths), ``test_fraction`` and ``split_seed``
    (digits/mosaics split; None = ``seed``), ``mosaic_train``/``mosaic_test``, ``image_size`` (COCO),
    ``weights_path`` (ImageNet ResNet file, '' = random init), ``data_root`` ('' = $THESISLIB_DATA).
    Optimisation: SGD(``lr``, ``momentum``, ``nesterov``, ``weight_decay``), ``epochs`` of ``batch_size``
    (global), ``schedule`` constant | multistep (``milestones`` in epochs, x``gamma``) | malleable
    (Eq. 17: ``malleable_pieces`` = (epochs, a, b) exponents of ``malleable_base``) | cosine;
    ``max_steps`` caps the run (tests). Execution: ``num_workers``, ``amp``/``channels_last``/``compile``
    (CUDA only), ``checkpoint_dir`` ('' = none; a run there is resumed), ``progress``, ``log_every``.
    """

    dataset: str = "digits"
    backbone: str = "mlp"
    method: str = "gsoftmax"
    lam: float = 1.0
    mu_init: float = 0.0
    sigma_init: float = 1.0
    learn_gaussians: bool = True
    sigma_param: str = "exp"
    gaussian_lr: float | None = None
    multilabel_reading: str = "pairwise"
    lsoftmax_margin: int = 2
    lsoftmax_beta: tuple[float, float, float, float] = (1000.0, 2e-3, 45.0, 0.0)
    hidden: tuple[int, ...] = (128, 64)
    test_fraction: float = 0.3
    split_seed: int | None = None
    mosaic_train: int = 2000
    mosaic_test: int = 1000
    image_size: int = 448
    weights_path: str = ""
    data_root: str = ""
    epochs: int = 30
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    malleable_pieces: tuple[tuple[int, float, float], ...] = PAPER_MALLEABLE
    malleable_base: float = 10.0
    seed: int = 0
    num_workers: int = 0
    eval_batch_size: int = 256
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    checkpoint_dir: str = ""
    progress: str = "auto"
    log_every: int = 50

    def __post_init__(self) -> None:
        def choice(name: str, options: tuple[str, ...]) -> None:
            if getattr(self, name) not in options:
                raise ConfigError(f"GSoftmaxConfig.{name} must be one of {', '.join(options)}, "
                                  f"got {getattr(self, name)!r}")

        choice("dataset", DATASETS)
        choice("method", METHODS)
        choice("sigma_param", SIGMA_PARAMS)
        choice("multilabel_reading", MULTILABEL_READINGS)
        choice("schedule", SCHEDULE_NAMES)
        try:
            parse_backbone(self.backbone)
        except ValueError as err:
            raise ConfigError(f"GSoftmaxConfig.backbone: {err}") from None
        if not backbone_compatible(self.dataset, self.backbone):
            raise ConfigError(f"backbone {self.backbone!r} does not fit dataset {self.dataset!r} "
                              "(digits/mosaics: mlp; cifar10/100: wrn-D-K or mlp; coco: resnet*-gmp)")
        if self.multilabel and self.method == "lsoftmax":
            raise ConfigError("L-softmax is a single-label loss (it singles out the true class); "
                              f"dataset {self.dataset!r} is multi-label")
        if not (self.sigma_init > 0 or (self.sigma_param == "raw" and self.sigma_init != 0)):
            raise ConfigError(f"sigma_init must be > 0 (non-zero with sigma_param='raw'), got {self.sigma_init}")
        if self.schedule == "multistep" and not self.milestones:
            raise ConfigError("schedule 'multistep' needs milestones (epochs), e.g. [60, 120, 160, 220, 260]")
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every", "mosaic_train", "mosaic_test",
                     "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"GSoftmaxConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not (math.isfinite(self.lam) and self.lr > 0 and self.weight_decay >= 0 and 0 <= self.momentum < 1):
            raise ConfigError("need a finite lam, lr > 0, weight_decay >= 0 and momentum in [0, 1)")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0")

    @property
    def multilabel(self) -> bool:
        return self.dataset in MULTI_LABEL_DATASETS

    @property
    def data_seed(self) -> int:
        """Seed of the digits/mosaics train/test split."""
        return self.seed if self.split_seed is None else self.split_seed


def load_config(path: str | Path, **overrides: Any) -> GSoftmaxConfig:
    """A config from a JSON or YAML file (unknown keys rejected by name)."""
    path = Path(path)
    mapping = json.loads(path.read_text()) if path.suffix == ".json" else load_yaml(path)
    return from_mapping(GSoftmaxConfig, mapping, **overrides)


# --------------------------------------------------------------------------------------------
# experiment ids and the paper's protocol
# --------------------------------------------------------------------------------------------

PAPER_LAM: dict[str, float] = {"cifar10": 0.5, "cifar100": 1.0, "coco": 1.0}
#: (train, test) images of the paper's data (COCO: images with at least one label, as in SRN)
PAPER_DATA_SIZES: dict[str, tuple[int, int]] = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
                                                "coco": (82_081, 40_137)}
_WRN_PROTOCOL = dict(epochs=300, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep",
                     milestones=(60, 120, 160, 220, 260), gamma=0.2)
_MALLEABLE_PROTOCOL = dict(epochs=1100, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                           schedule="malleable", malleable_pieces=PAPER_MALLEABLE, malleable_base=10.0)
_COCO_PROTOCOL = dict(epochs=8, batch_size=16, lr=1e-5, momentum=0.9, weight_decay=1e-4, schedule="constant")


def paper_protocol(config: GSoftmaxConfig) -> dict[str, Any]:
    """The optimisation settings the paper states for ``config.dataset`` (empty for digits/mosaics).

    CIFAR: WRN (Sec. IV-A; the malleable run when ``schedule == "malleable"``); COCO: Sec. IV-B.
    Nesterov momentum is not stated by the paper and is not part of the protocol.
    """
    if config.dataset in ("cifar10", "cifar100"):
        return dict(_MALLEABLE_PROTOCOL if config.schedule == "malleable" else _WRN_PROTOCOL)
    if config.dataset == "coco":
        return dict(_COCO_PROTOCOL)
    return {}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def protocol_deviations(config: GSoftmaxConfig, num_train: int | None = None,
                        num_test: int | None = None) -> list[str]:
    """``"key=value"`` for every way ``config`` (and the loaded data sizes, if given) departs from
    the paper's protocol on a paper data set; empty for digits/mosaics and for faithful runs."""
    protocol = paper_protocol(config)
    if not protocol:
        return []
    schedule_keys = {"multistep": ("milestones", "gamma"), "malleable": ("malleable_pieces", "malleable_base")}
    keys = ["epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule"]
    if config.schedule == protocol["schedule"]:
        keys += schedule_keys.get(config.schedule, ())
    out = [f"{k}={_fmt(getattr(config, k))}" for k in keys if getattr(config, k) != protocol[k]]
    if config.max_steps is not None:
        out.append(f"max_steps={config.max_steps}")
    if config.dataset == "coco" and not config.weights_path:
        out.append("init=random")
    if num_train is not None and num_test is not None:
        full_train, full_test = PAPER_DATA_SIZES[config.dataset]
        tolerance = 0.99 if config.dataset == "coco" else 1.0       # COCO: label-filter counts vary a little
        if num_train < tolerance * full_train or num_test < tolerance * full_test:
            out.append(f"data={num_train}/{num_test}")
    return out


def id_slug(eid: str) -> str:
    """An experiment id as one directory name (``/``, brackets, commas and the like become ``_``)."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", eid).strip("_")


def backbone_tag(config: GSoftmaxConfig) -> str:
    """``wrn-40-14``, ``wrn-40-14-malleable`` (CIFAR with the malleable LR), ``resnet101-gmp-448``, ``mlp``."""
    spec = parse_backbone(config.backbone)
    if spec.kind == "resnet-gmp":
        return f"{spec.arch}-gmp-{config.image_size}"
    if config.dataset in ("cifar10", "cifar100") and config.schedule == "malleable":
        return f"{config.backbone}-malleable"
    return config.backbone


def method_tag(config: GSoftmaxConfig) -> str:
    """``softmax``, ``lsoftmax``, ``gsoftmax`` or e.g. ``gsoftmax(mu=-0.1,sigma=1)``, ``gsoftmax(lam=1)``.

    On the paper's data sets lam is named only when it differs from the paper's value there (CIFAR-10
    0.5, CIFAR-100 and COCO 1) and the margin of L-softmax only when it is not 2; on the smoke data
    sets both are always named. (mu, sigma) are named when they differ from (0, 1).
    """
    paper = config.dataset in PAPER_LAM
    args: list[str] = []
    if config.method == "gsoftmax":
        if not paper or config.lam != PAPER_LAM[config.dataset]:
            args.append(f"lam={config.lam:g}")
        if (config.mu_init, config.sigma_init) != (0.0, 1.0):
            args += [f"mu={config.mu_init:g}", f"sigma={config.sigma_init:g}"]
        if config.sigma_param != "exp":
            args.append(f"sigma_param={config.sigma_param}")
        if not config.learn_gaussians:
            args.append("frozen")
    elif config.method == "lsoftmax" and (not paper or config.lsoftmax_margin != 2):
        args.append(f"m={config.lsoftmax_margin}")
    if config.multilabel and config.multilabel_reading != "pairwise":
        args.append(f"reading={config.multilabel_reading}")
    return config.method + (f"({','.join(args)})" if args else "")


def experiment_id(config: GSoftmaxConfig, num_train: int | None = None, num_test: int | None = None) -> str:
    """``<dataset>/<backbone tag>/<method tag>`` plus ``[deviations]`` from the paper's protocol.

    A faithful run on the paper's data gets exactly its id in ``replication/gsoftmax.yaml``
    (e.g. ``cifar10/wrn-40-14/gsoftmax``, ``coco/resnet101-gmp-448/gsoftmax(mu=-0.1,sigma=1)``); a
    shortened or otherwise changed one gets e.g. ``cifar10/wrn-40-14/softmax[epochs=30]``, so it can
    never be mistaken for the paper's experiment. Pass the loaded data sizes to also check that the
    full data set was used. The seed is not part of the id (seeds are aggregated under it).
    """
    base = f"{config.dataset}/{backbone_tag(config)}/{method_tag(config)}"
    deviations = protocol_deviations(config, num_train, num_test)
    return base + (f"[{','.join(deviations)}]" if deviations else "")


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------

@dataclass
class GSoftmaxResult:
    """A finished run. ``metrics``: scalars (errors and mAP in %); ``per_class``: (m,) lists;
    ``outputs``: test-set arrays (single-label ``x``, ``z`` (N, m), ``labels`` (N,); multi-label
    ``x``, ``z`` (N, 2m), ``scores``, ``targets`` (N, m)); ``gaussians``: ``epoch`` (E+1,), ``mu`` and
    ``sigma`` (E+1, outputs) of the G-softmax transform at the start and after every epoch;
    ``history``: the engine's training records."""

    experiment_id: str
    config: GSoftmaxConfig
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
        record = {"experiment_id": self.experiment_id, "config": to_dict(self.config), "metrics": self.metrics,
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
        return cls(record["experiment_id"], from_mapping(GSoftmaxConfig, record["config"]), record["metrics"],
                   record["per_class"], outputs, tuple(record["class_names"]), record["gaussians"],
                   record["history"], record["seconds"], record["world_size"])


# --------------------------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------------------------

def _schedule(config: GSoftmaxConfig, spe: int) -> Any:
    args: dict[str, Any] = {}
    if config.schedule == "multistep":
        args = {"milestones": config.milestones, "gamma": config.gamma}
    elif config.schedule == "malleable":
        args = {"pieces": config.malleable_pieces, "base": config.malleable_base}
    elif config.schedule == "cosine":
        args = {"total_steps": config.epochs}
    return build_schedule(config.schedule, steps_per_epoch=spe, **args)


def _gaussian_snapshot(model: GSoftmaxNet) -> dict[str, Any]:
    """The transform's mu and sigma (lists, for the trajectories) and their means (shown in the log)."""
    t = unwrap(model).transform
    mu, sigma = t.mu.detach().double().cpu(), t.sigma.detach().double().cpu()
    return {"mu": mu.tolist(), "sigma": sigma.tolist(), "mu_mean": float(mu.mean()), "sigma_mean": float(sigma.mean())}


def _collect(model: GSoftmaxNet, data: ExperimentData, config: GSoftmaxConfig,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Test-set (x, z, targets) on the CPU in test-set order; under DDP each rank runs a strided
    shard and the shards are gathered (every rank gets the whole)."""
    world, rank = get_world_size(), get_rank()
    test_set = data.test_set if world == 1 else Subset(data.test_set, range(rank, len(data.test_set), world))

    def fn(net: GSoftmaxNet, batch: Any) -> tuple[torch.Tensor, ...]:
        inputs, targets = data.test_batch(batch)
        x, z = net(inputs)
        return x, z, targets

    x, z, targets = engine_evaluate(model, test_set, fn, device, batch_size=config.eval_batch_size,
                                    collate_fn=data.collate_fn, num_workers=config.num_workers, amp=config.amp,
                                    channels_last=config.channels_last)
    if world == 1:
        return x, z, targets
    shards = all_gather_object((x, z, targets))
    n = len(data.test_set)
    out = []
    for part in range(3):
        full = torch.empty((n, *shards[0][part].shape[1:]), dtype=shards[0][part].dtype)
        for r, shard in enumerate(shards):
            full[r::world] = shard[part]
        out.append(full)
    return out[0], out[1], out[2]


def evaluate(model: GSoftmaxNet, data: ExperimentData, config: GSoftmaxConfig,
             device: torch.device) -> tuple[dict[str, float], dict[str, list[float]], dict[str, np.ndarray]]:
    """Evaluate on the test set: ``(metrics, per_class, outputs)``.

    Single-label: top-1 error (%) of ``argmax z``, test loss, empirical measures of the logits ``x``;
    multi-label: mAP (VOC and Eq. 21), C-P/C-R/C-F1 (``cf1`` = mean per-class F1 as in the tables,
    ``cf1_eq22`` = Eq. 22), O-P/O-R/O-F1 at 0.5, per-class AP, empirical measures of ``x^+``. For
    G-softmax also the measures of the learned Gaussians. See :mod:`~thesislib.methods.gsoftmax.analysis`.
    """
    net = unwrap(model)
    x, z, targets = _collect(net, data, config, device)
    transform = net.transform
    gaussians = None if transform is None else (transform.mu.detach().double().cpu(),
                                                transform.sigma.detach().double().cpu())
    if data.multilabel:
        return multilabel_evaluation(x, z, targets, config.multilabel_reading, gaussians)
    return single_label_evaluation(x, z, targets, gaussians)


def train(config: GSoftmaxConfig, device: str | torch.device = "auto") -> GSoftmaxResult:
    """Train ``config`` on ``device`` with the shared engine, evaluate, return the result.

    Seeds every generator with ``config.seed`` first, so a run is reproducible in-process. The
    optimiser is SGD over :func:`gsoftmax_param_groups` (mu/sigma without weight decay); the
    schedule is stepped per optimiser step. Under ``torchrun`` (process group initialised) the
    engine trains with DDP; ``batch_size`` is global.
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    seed_everything(config.seed)
    data = prepare_data(config, device)
    model = build_model(config, data)
    groups = gsoftmax_param_groups(model, config.weight_decay, config.gaussian_lr)
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    engine_config = TrainConfig(epochs=config.epochs, max_steps=config.max_steps, batch_size=config.batch_size,
                                num_workers=config.num_workers, seed=config.seed, amp=config.amp,
                                channels_last=config.channels_last, compile=config.compile,
                                log_every=config.log_every, checkpoint_dir=config.checkpoint_dir or None,
                                resume=bool(config.checkpoint_dir), progress=config.progress)
    spe = steps_per_epoch(len(data.train_set), engine_config.batch_size, engine_config.drop_last, get_world_size())
    scheduler = make_scheduler(optimizer, _schedule(config, spe))
    track = model.transform is not None
    start = _gaussian_snapshot(model) if track else None
    trainer = Trainer(model, optimizer, data.train_set, make_step_fn(config, data), engine_config, device,
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


def run(config: GSoftmaxConfig, device: str | torch.device = "auto", nproc: int = 1,
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
        cfg_path = write_json(out / "config.json", to_dict(config))
        launch("thesislib.methods.gsoftmax.train",
               ["--config", str(cfg_path), "--output", str(out), "--device", device_type], nproc=nproc,
               timeout=timeout)
        return GSoftmaxResult.load(out)


def run_many(configs: Sequence[GSoftmaxConfig], device: str | torch.device = "auto", nproc: int = 1,
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
    parser.add_argument("--config", required=True, help="a JSON or YAML file of GSoftmaxConfig fields")
    parser.add_argument("--output", required=True, help="directory for result.json and outputs.npz")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (ConfigError, OSError, json.JSONDecodeError) as err:
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return 2
    device = init_distributed(args.device)
    try:
        result = train(config, device)
        if is_main_process():
            result.save(args.output)
            print(f"{result.experiment_id}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()
                                                          if k in ("top1_error", "map")), flush=True)
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
