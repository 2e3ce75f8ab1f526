"""The chapter notebook's parameters, its ablation runs and the statements computed from them.

One *replicate* (a seed) is the whole pipeline: data (scenes drawn from the seed), localizer,
cues, then every configuration of ``ablations`` trained on those same cues, so the comparisons
within a replicate are paired. The configurations (thesis section 2.4.3, Figs. 2.6 and 2.7):

=================  ==========================================================
name               loss
=================  ==========================================================
seed               L_seed
seed+expand        L_seed + L_expand
seed+constrain     L_seed + L_constrain
expand+constrain   L_expand + L_constrain (no seeds)
sec                L_seed + L_expand + L_constrain, GWRP (the method)
sec-gmp            all three, global max pooling for the present classes
sec-gap            all three, global average pooling for the present classes
=================  ==========================================================

Metrics follow the thesis's protocol: ``miou``, ``fg_fraction`` and ``iou_<class>`` (in %) are
measured *after* the test-time CRF (Fig. 2.3); ``miou_nocrf`` / ``fg_fraction_nocrf`` before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from thesislib.config import from_mapping
from thesislib.data.roots import dataset_dir
from thesislib.engine import History
from thesislib.methods.sec.data import SECData
from thesislib.methods.sec.localization import CueMaps
from thesislib.methods.sec.train import (
    SECConfig,
    check_inputs,
    cue_stats,
    evaluate_config,
    get_cues,
    load_data,
    train_localizer_for,
    train_sec,
)
from thesislib.replication import format_mean_sd, summarize_seeds

ABLATIONS: dict[str, dict[str, Any]] = {
    "seed": {"expand_loss": False, "constrain_loss": False},
    "seed+expand": {"constrain_loss": False},
    "seed+constrain": {"expand_loss": False},
    "expand+constrain": {"seed_loss": False},
    "sec": {},
    "sec-gmp": {"pooling": "gmp"},
    "sec-gap": {"pooling": "gap"},
}
LOSS_ABLATIONS = ("seed", "seed+expand", "seed+constrain", "expand+constrain", "sec")
POOLING_ABLATIONS = ("sec-gmp", "sec-gap", "sec")

PAPER_PROTOCOL = {"iterations": 8000, "batch_size": 15, "image_size": 321, "network": "deeplab_largefov",
                  "optimizer": "sgd", "lr": 1e-3, "lr_step": 2000, "lr_gamma": 0.1, "momentum": 0.9,
                  "weight_decay": 5e-4, "caffe_lr_mult": True, "dropout": 0.5, "train_split": "trainaug",
                  "eval_split": "val"}
"""The thesis's training protocol (section 2.4.1); a VOC run that differs gets an id naming it."""


@dataclass(frozen=True)
class SECNotebookParams:
    """The notebook's ``parameters`` cell (smoke defaults; ``configs/sec/*.yaml`` for others).

    Every field maps onto :class:`~thesislib.methods.sec.train.SECConfig` (same names) except
    ``n_seeds`` (replicates ``seed .. seed + n_seeds - 1``), ``ablations`` (configuration names
    of :data:`ABLATIONS`), ``data_root`` (VOC / SBD root; empty: ``$THESISLIB_DATA``), and the
    run bookkeeping (``scale``, ``output_dir``, ``device``, ``threads``).
    """

    seed: int = 0
    n_seeds: int = 2
    scale: str = "smoke"
    output_dir: str = ""
    device: str = "auto"
    threads: int = 1
    progress: str = "none"
    data: Literal["scenes", "voc"] = "scenes"
    data_root: str = ""
    n_train: int = 200
    n_test: int = 100
    image_size: int = 32
    max_eval_images: int = 0
    network: Literal["fcn", "deeplab_largefov"] = "fcn"
    width: int = 16
    dropout: float = 0.1
    weights_path: str = ""
    cue_source: Literal["cam", "file"] = "cam"
    cue_path: str = ""
    cue_list: str = ""
    foreground_cue_file: str = ""
    localizer: Literal["small", "vgg16"] = "small"
    localizer_iterations: int = 150
    localizer_batch_size: int = 32
    localizer_optimizer: Literal["adam", "sgd"] = "adam"
    localizer_lr: float = 3e-3
    cam_tau: float = 0.5
    saliency_layer: str = "input"
    optimizer: Literal["sgd", "adam"] = "adam"
    iterations: int = 100
    batch_size: int = 16
    lr: float = 3e-3
    lr_step: int = 2000
    momentum: float = 0.9
    weight_decay: float = 1e-4
    caffe_lr_mult: bool = True
    d_plus: float = 0.0
    d_bg: float = 0.0
    prob_floor: float = 1e-4
    q_floor: float = 1e-4
    crf_method: Literal["auto", "exact", "permutohedral", "hybrid"] = "hybrid"
    crf_unary: Literal["logits", "log_probs"] = "logits"
    crf_grad: Literal["stop", "unrolled"] = "stop"
    crf_scale: float = 0.0
    test_crf_scale: float = 1.0
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    amp: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ValueError(f"unknown ablation(s) {unknown}; choose from {list(ABLATIONS)}")
        if self.n_seeds < 1:
            raise ValueError("n_seeds must be >= 1")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n_seeds))


_NOT_CONFIG = {"n_seeds", "scale", "output_dir", "device", "threads", "ablations", "data_root"}


def config_for(params: SECNotebookParams, name: str = "sec", seed: int | None = None) -> SECConfig:
    """The :class:`SECConfig` of configuration ``name`` in replicate ``seed``."""
    mapping = {f: getattr(params, f) for f in params.__dataclass_fields__ if f not in _NOT_CONFIG}
    seed = params.seed if seed is None else seed
    mapping.update(seed=seed, data_seed=seed)
    if params.data_root:
        mapping.update(voc_root=str(dataset_dir("voc", data_root=params.data_root)),
                       sbd_root=str(dataset_dir("sbd", data_root=params.data_root)))
    mapping.update(ABLATIONS[name])
    return from_mapping(SECConfig, mapping)


def ablation_name(config: SECConfig) -> str:
    """The :data:`ABLATIONS` name whose loss switches and pooling ``config`` has ("custom" if none)."""
    keys = ("seed_loss", "expand_loss", "constrain_loss", "pooling")
    defaults = SECConfig()
    for name, overrides in ABLATIONS.items():
        if all(getattr(config, k) == overrides.get(k, getattr(defaults, k)) for k in keys):
            return name
    return "custom"


def deviations(config: SECConfig) -> list[str]:
    """How a VOC configuration departs from the thesis's protocol (empty: it follows it)."""
    out = [f"{k}={getattr(config, k)}" for k, v in PAPER_PROTOCOL.items() if getattr(config, k) != v]
    if not config.weights_path:
        out.append("random-init")
    if config.max_eval_images:
        out.append(f"max_eval_images={config.max_eval_images}")
    if not config.test_crf:
        out.append("no-test-crf")
    if config.foreground_cue_file:
        out.append(f"foreground={Path(config.foreground_cue_file).stem}")
    return out


def experiment_id(config: SECConfig, name: str) -> str:
    """``voc12-val/deeplab-largefov/<name>`` for a run that follows the thesis's protocol (the ids
    of ``thesislib/replication/sec.yaml``), with ``[deviations]`` appended otherwise; smoke runs:
    ``scenes/small-fcn/<name>``."""
    if config.data == "scenes":
        return f"scenes/small-fcn/{name}"
    dev = deviations(config)
    split = "voc12-val" if config.eval_split == "val" else f"voc12-{config.eval_split}"
    return f"{split}/{config.network.replace('_', '-')}/{name}" + (f"[{','.join(dev)}]" if dev else "")


def flat_metrics(evaluation: dict[str, Any], class_names: Sequence[str]) -> dict[str, float]:
    """Metrics of one run in the results schema (module doc)."""
    crf = "_crf" if "miou_crf" in evaluation else ""
    out = {"miou": evaluation[f"miou{crf}"], "fg_fraction": evaluation[f"fg_fraction{crf}"],
           "pixel_acc": evaluation[f"pixel_acc{crf}"], "miou_nocrf": evaluation["miou"],
           "fg_fraction_nocrf": evaluation["fg_fraction"]}
    for name, value in zip(class_names, evaluation[f"iou{crf}"]):
        if not math.isnan(value):
            out[f"iou_{name}"] = value
    return out


@dataclass(eq=False)
class Replicate:
    """The shared part of one seed: data, localizer, cues and their statistics."""

    seed: int
    data: SECData
    cues: CueMaps
    cue_stats: dict[str, float]
    localizer: nn.Module | None
    localizer_history: History | None


@dataclass(eq=False)
class RunResult:
    """One trained configuration of one replicate."""

    name: str
    seed: int
    experiment: str
    metrics: dict[str, float]
    seconds: float
    history: History
    model: nn.Module | None = field(default=None, repr=False)


def load_replicate_data(params: SECNotebookParams, seed: int | None = None) -> SECData:
    """Check the inputs named by ``params`` and load the data of replicate ``seed``: a missing
    VOC / SBD, weights file or cue file fails here, before anything is trained."""
    config = config_for(params, "sec", seed)
    check_inputs(config)
    return load_data(config)


def prepare_replicate(params: SECNotebookParams, seed: int, device: torch.device,
                      data: SECData | None = None) -> Replicate:
    """Data (loaded unless given), localizer and cues of replicate ``seed``."""
    config = config_for(params, "sec", seed)
    data = data if data is not None else load_replicate_data(params, seed)
    localizer = history = None
    if config.cue_source == "cam":
        localizer, history = train_localizer_for(config, data, device)
    cues = get_cues(config, data, device, localizer)
    return Replicate(seed, data, cues, cue_stats(cues, data), localizer, history)


def run_configuration(params: SECNotebookParams, name: str, replicate: Replicate, device: torch.device,
                      keep_model: bool = False) -> RunResult:
    """Train and evaluate configuration ``name`` on a replicate's cues."""
    config = config_for(params, name, replicate.seed)
    started = time.perf_counter()
    model, history = train_sec(config, replicate.cues, device, replicate.data)
    metrics = flat_metrics(evaluate_config(model, replicate.data, config, device), replicate.data.class_names)
    return RunResult(name, replicate.seed, experiment_id(config, name), metrics, time.perf_counter() - started,
                     history, model if keep_model else None)


def run_ablations(params: SECNotebookParams, device: torch.device, first: Replicate | None = None,
                  done: Sequence[RunResult] = (), keep_models_of: int | None = None,
                  report: Callable[[str], None] | None = print) -> tuple[list[Replicate], list[RunResult]]:
    """Every configuration of ``params.ablations`` in every replicate.

    ``first``: an already prepared replicate (reused when its seed comes up); ``done``: results
    already computed (not run again, returned with the others); models are kept for the
    replicate ``keep_models_of`` (for figures).
    """
    replicates, results = [], list(done)
    finished = {(r.name, r.seed) for r in done}
    for seed in params.seeds:
        rep = first if first is not None and first.seed == seed else prepare_replicate(params, seed, device)
        replicates.append(rep)
        for name in params.ablations:
            if (name, seed) in finished:
                continue
            result = run_configuration(params, name, rep, device, keep_model=seed == keep_models_of)
            results.append(result)
            if report is not None:
                m = result.metrics
                report(f"seed {seed} {name:<17} mIoU {m['miou_nocrf']:5.1f} -> {m['miou']:5.1f} with CRF, "
                       f"fg {m['fg_fraction_nocrf']:4.1f}% -> {m['fg_fraction']:4.1f}%  ({result.seconds:.1f} s)")
    order = {name: i for i, name in enumerate(params.ablations)}
    results.sort(key=lambda r: (r.seed, order.get(r.name, len(order))))
    return replicates, results


# ---------------------------------------------------------------------------------------------
# aggregation and the statements
# ---------------------------------------------------------------------------------------------

def by_name(results: Sequence[RunResult]) -> dict[str, dict[int, RunResult]]:
    out: dict[str, dict[int, RunResult]] = {}
    for r in results:
        out.setdefault(r.name, {})[r.seed] = r
    return out


def aggregate(results: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {metric: {"mean", "std", "n"}}}`` over replicates (a plain value for one),
    the ``experiments`` part of ``metrics.json``."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.experiment, []).append(r)
    return summarize_seeds({eid: [r.metrics for r in runs] for eid, runs in groups.items()})


def summary_rows(results: Sequence[RunResult], names: Sequence[str],
                 metrics: Sequence[str] = ("miou_nocrf", "miou", "fg_fraction_nocrf", "fg_fraction"),
                 ) -> list[list[str]]:
    """One row per configuration: name, replicates, then ``mean ± sd`` of each metric."""
    groups = by_name(results)
    return [[name, str(len(groups[name])), *(format_mean_sd([r.metrics[m] for r in groups[name].values()], ".1f")
                                            for m in metrics)] for name in names if name in groups]


def _paired(groups: dict[str, dict[int, RunResult]], a: str, b: str, metric: str) -> list[float]:
    """Per-replicate differences ``a - b`` of ``metric`` (replicates that ran both)."""
    seeds = sorted(set(groups.get(a, {})) & set(groups.get(b, {})))
    return [groups[a][s].metrics[metric] - groups[b][s].metrics[metric] for s in seeds]


def verdict(diffs: Sequence[float]) -> str:
    """``"yes"`` when every replicate's difference is positive, ``"no"`` when none is, else
    ``"mixed"``; ``"not run"`` without data."""
    if not diffs:
        return "not run"
    positive = sum(d > 0 for d in diffs)
    return "yes" if positive == len(diffs) else ("no" if positive == 0 else f"mixed ({positive}/{len(diffs)})")


def _fmt(diffs: Sequence[float]) -> str:
    return "–" if not diffs else format_mean_sd(diffs, ".1f") + f" (n={len(diffs)})"


def claims(results: Sequence[RunResult], metric: str = "miou") -> list[list[str]]:
    """The thesis's conclusions of section 2.4.3 checked on ``results``: rows of (statement in
    the thesis, what is compared, mean ± sd of the paired difference over replicates, reproduced?).

    "yes" means the difference has the thesis's sign in every replicate. ``metric`` is ``"miou"``
    (after the test-time CRF) or ``"miou_nocrf"``; the foreground fractions follow the same choice."""
    g = by_name(results)
    fg = "fg_fraction_nocrf" if metric.endswith("_nocrf") else "fg_fraction"
    rows: list[list[str]] = []
    for subset in ("seed", "seed+expand", "seed+constrain", "expand+constrain"):
        d = _paired(g, "sec", subset, metric)
        rows.append(["all three terms beat every subset", f"sec − {subset}", _fmt(d), verdict(d)])
    d = _paired(g, "seed", "expand+constrain", metric)
    rows.append(["without L_seed the network fails to localize", "seed − expand+constrain", _fmt(d), verdict(d)])
    d = _paired(g, "seed", "seed+expand", metric)
    rows.append(["seed+expand is worse than seed alone", "seed − seed+expand", _fmt(d), verdict(d)])
    for other in ("sec-gmp", "sec-gap"):
        d = _paired(g, "sec", other, metric)
        rows.append([f"GWRP beats {other[4:].upper()}", f"sec − {other}", _fmt(d), verdict(d)])
    d1 = _paired(g, "sec", "sec-gmp", fg)
    d2 = _paired(g, "sec-gap", "sec", fg)
    rows.append(["GMP under-, GAP over-estimates sizes", "fg%: GWRP − GMP", _fmt(d1), verdict(d1)])
    rows.append(["", "fg%: GAP − GWRP", _fmt(d2), verdict(d2)])
    return rows


def crf_gain_row(results: Sequence[RunResult], name: str = "sec") -> list[str]:
    """mIoU after minus before the test-time CRF for configuration ``name``, over replicates."""
    runs = by_name(results).get(name, {})
    d = [r.metrics["miou"] - r.metrics["miou_nocrf"] for r in runs.values()]
    return [f"the test-time CRF improves {name} (Fig. 2.3)", f"{name}: with − without CRF", _fmt(d), verdict(d)]


# ---------------------------------------------------------------------------------------------
# the dense-CRF benchmark files written by benchmarks/crf_benchmark.py
# ---------------------------------------------------------------------------------------------

BENCHMARK_COLUMNS = ("workload", "implementation", "device", "method", "median s", "pydensecrf / torch",
                     "argmax agreement", "max |dQ|")


def crf_benchmarks(root: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The benchmark records under ``<results>/crf/benchmark_*.json`` (each: ``file``,
    ``hardware``, ``rows`` as :data:`BENCHMARK_COLUMNS` tuples) and the device kinds ("CPU",
    "GPU") that have no file."""
    import json

    from thesislib.paths import results_root

    directory = (root or results_root()) / "crf"
    records, kinds = [], set()
    for file in sorted(directory.glob("benchmark_*.json")) if directory.is_dir() else []:
        data = json.loads(file.read_text())
        rows = []
        for r in data.get("results", []):
            def num(key: str, fmt: str, r: dict[str, Any] = r) -> str:
                return "–" if r.get(key) is None else format(r[key], fmt)
            rows.append((r.get("workload", "?"), r.get("impl", "?"), r.get("device", "?"), r.get("method", "?"),
                         num("seconds", ".4f"), num("speedup", ".2f"), num("agreement", ".5f"),
                         num("max_abs_diff", ".1e")))
            kinds.add("GPU" if "cuda" in str(r.get("device", "")) else "CPU")
        records.append({"file": file.name, "hardware": data.get("hardware") or "unknown", "rows": rows,
                        "goals": data.get("goals", [])})
    return records, [k for k in ("CPU", "GPU") if k not in kinds]
