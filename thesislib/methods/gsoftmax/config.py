"""The G-softmax chapter's parameters, declared once, and the per-run configurations derived from them.

* :class:`GSoftmaxParams`: the frozen :class:`~thesislib.params.RunParams` subclass behind the
  notebook's ``parameters`` cell, ``configs/gsoftmax/*.yaml`` and every ``-p key=value``.
* :class:`RunSpec`: ONE training run = the chapter's parameters + which part (``single`` or
  ``multi``), method, replicate seed and (mu, sigma) initialisation. It declares nothing else: the
  run's data set, network, optimisation and execution settings are properties read from
  :class:`GSoftmaxParams` (the ``single_*`` fields for the single-label part, ``multi_*`` for the
  multi-label part), so there is no second list of fields to keep in step.
* :func:`single_label_runs` / :func:`multilabel_runs`: the runs the notebook trains.
* :func:`parse_backbone` / :func:`backbone_compatible`: backbone names (validated here, built in
  :mod:`~thesislib.methods.gsoftmax.model`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, load_params_file, to_dict
from thesislib.methods.gsoftmax.losses import MULTILABEL_READINGS
from thesislib.methods.gsoftmax.transform import SIGMA_PARAMS
from thesislib.params import RunParams, param

SINGLE_LABEL_DATASETS: tuple[str, ...] = ("digits", "cifar10", "cifar100")
MULTI_LABEL_DATASETS: tuple[str, ...] = ("mosaics", "coco")
DATASETS: tuple[str, ...] = SINGLE_LABEL_DATASETS + MULTI_LABEL_DATASETS
METHODS: tuple[str, ...] = ("softmax", "gsoftmax", "lsoftmax")
SCHEDULE_NAMES: tuple[str, ...] = ("constant", "multistep", "malleable", "cosine")
#: Eq. 17's two log-linear pieces (epochs, a, b) of the paper's 1100-epoch malleable run
PAPER_MALLEABLE: tuple[tuple[int, float, float], ...] = ((1000, 0.0, -8.0), (100, -8.0, -9.0))
#: Table III's (mu, sigma) initialisations of the multi-label G-softmax
TABLE3_INITS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.0, 0.5), (0.0, 5.0), (-0.1, 1.0), (0.1, 1.0))

_WRN = re.compile(r"^wrn-(\d+)-(\d+)$")
_RESNET = re.compile(r"^(resnet(?:18|34|50|101|152))-gmp$")


# --------------------------------------------------------------------------------------------
# backbones by name
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackboneSpec:
    """A parsed backbone name: ``"mlp"``, ``"wrn-<depth>-<widen>"`` or ``"<resnet arch>-gmp"``."""

    kind: str                 # "mlp" | "wrn" | "resnet-gmp"
    depth: int = 0
    widen: int = 0
    arch: str = ""


def parse_backbone(name: str) -> BackboneSpec:
    """``"wrn-40-14"`` -> ``BackboneSpec("wrn", 40, 14)``; unknown names raise ValueError listing the forms."""
    if name == "mlp":
        return BackboneSpec("mlp")
    if match := _WRN.match(name):
        depth, widen = int(match[1]), int(match[2])
        if depth < 10 or (depth - 4) % 6 or widen < 1:
            raise ValueError(f"backbone {name!r}: a WRN needs depth = 6n + 4 >= 10 and widen >= 1")
        return BackboneSpec("wrn", depth, widen)
    if match := _RESNET.match(name):
        return BackboneSpec("resnet-gmp", arch=match[1])
    raise ValueError(f"unknown backbone {name!r}; use 'mlp', 'wrn-<depth>-<widen>' (e.g. wrn-40-14) or "
                     "'resnet<18|34|50|101|152>-gmp' (e.g. resnet101-gmp)")


def backbone_compatible(dataset: str, backbone: str) -> bool:
    """Which backbones each data set can feed: MLPs for the 8x8 / 16x16 digit data, WRNs (or an MLP)
    for CIFAR, ResNet-GMP for COCO."""
    kind = parse_backbone(backbone).kind
    return {"digits": kind == "mlp", "mosaics": kind == "mlp", "cifar10": kind in ("wrn", "mlp"),
            "cifar100": kind in ("wrn", "mlp"), "coco": kind == "resnet-gmp"}[dataset]


def _check_sigma(sigma: float, sigma_param: str, where: str) -> None:
    if not (sigma > 0 or (sigma_param == "raw" and sigma != 0)):
        raise ConfigError(f"{where}: sigma must be > 0 (non-zero with sigma_param='raw'), got {sigma}")


# --------------------------------------------------------------------------------------------
# the chapter's parameters
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GSoftmaxParams(RunParams):
    """Parameters of ``notebooks/luo2020/01_gsoftmax`` (its ``parameters`` cell is generated from this).

    Defaults are the smoke scale (2-core CPU, under two minutes); ``configs/gsoftmax/full*.yaml``
    hold the paper's settings. Replicate ``i`` uses seed ``seed + i`` for every method of both parts,
    so the runs of one seed form a matched set. ``single_*`` and the unprefixed optimisation fields
    set the single-label part, ``multi_*`` the multi-label part (the softmax baseline and one
    G-softmax run per (mu, sigma) of ``multi_inits``, per replicate).
    """

    n_seeds: int = param(5, help="replicates (paired seeds) of every run of both parts", min=1)
    nproc: int = param(1, help="> 1: every run as nproc DDP processes through torchrun", min=1)
    data_root: str = param("", help="data root (empty: $THESISLIB_DATA)")
    num_workers: int = param(0, help="DataLoader workers (COCO decoding)", min=0)
    checkpoint_root: str = param("", help="resumable checkpoints per run under this directory (empty: none)")
    amp: bool = param(True, help="bf16 autocast (CUDA only)")
    channels_last: bool = param(True, help="channels_last memory format (CUDA only)")
    compile: bool = param(False, help="torch.compile the network")
    log_every: int = param(50, help="engine log interval in optimiser steps", min=1)
    eval_batch_size: int = param(256, help="test-set batch size", min=1)
    max_steps: int = param(0, help="cap on optimiser steps per run (0: none; for quick checks)", min=0)
    figure_class: int = param(0, help="the class shown in the Fig. 3 / Fig. 5 style plots", min=0)
    test_fraction: float = param(0.3, help="digits/mosaics: test share of the split drawn per seed",
                                 min=0.01, max=0.99)
    # single-label part
    single_dataset: str = param("digits", help="single-label data set",
                                choices=(*SINGLE_LABEL_DATASETS, "none"))
    single_backbone: str = param("mlp", help="mlp | wrn-<depth>-<widen>")
    single_methods: tuple[str, ...] = param(METHODS, help="methods compared (softmax is the baseline)",
                                            choices=METHODS)
    hidden: tuple[int, ...] = param((128, 64), help="MLP hidden widths (single-label)")
    lam: float = param(1.0, help="lambda, fixed weight of the Gaussian term (single-label)")
    single_init: tuple[float, float] = param((0.0, 1.0), help="(mu, sigma) initialisation of single-label G-softmax")
    sigma_param: str = param("exp", help="how sigma is parametrised", choices=SIGMA_PARAMS)
    learn_gaussians: bool = param(True, help="learn mu and sigma (False: keep the initialisation)")
    gaussian_lr: float = param(0.0, help="learning rate of mu, sigma (0: the network's)", min=0.0)
    lsoftmax_margin: int = param(2, help="L-softmax margin m", min=1, max=4)
    lsoftmax_beta: tuple[float, float, float, float] = param(
        (1000.0, 2e-3, 45.0, 0.0), help="(base, gamma, power, min) of L-softmax's annealing")
    epochs: int = param(30, help="single-label epochs", min=1)
    batch_size: int = param(128, help="single-label global batch size", min=1)
    lr: float = param(0.1, help="single-label SGD learning rate", min=0.0)
    momentum: float = param(0.9, help="single-label SGD momentum", min=0.0, max=0.999)
    nesterov: bool = param(False, help="single-label Nesterov momentum")
    weight_decay: float = param(5e-4, help="single-label weight decay (never on mu, sigma)", min=0.0)
    schedule: str = param("constant", help="single-label LR schedule", choices=SCHEDULE_NAMES)
    milestones: tuple[int, ...] = param((), help="multistep: epochs where the LR is multiplied by gamma")
    gamma: float = param(0.2, help="multistep LR factor", min=0.0)
    malleable_pieces: tuple[tuple[int, float, float], ...] = param(
        PAPER_MALLEABLE, help="malleable LR (Eq. 17): (epochs, a, b) exponent pieces")
    malleable_base: float = param(10.0, help="malleable LR: base of the exponents", min=1.0)
    # multi-label part
    multi_dataset: str = param("mosaics", help="multi-label data set", choices=(*MULTI_LABEL_DATASETS, "none"))
    multi_backbone: str = param("mlp", help="mlp | resnet<18|34|50|101|152>-gmp")
    multi_hidden: tuple[int, ...] = param((256, 128), help="MLP hidden widths (multi-label)")
    multi_lam: float = param(1.0, help="lambda of the multi-label G-softmax")
    multi_inits: tuple[tuple[float, float], ...] = param(TABLE3_INITS, help="Table III (mu, sigma) initialisations")
    multi_reading: str = param("pairwise", help="pairwise (released code) | eq16 | eq15 (the printed equations)",
                               choices=MULTILABEL_READINGS)
    mosaic_train: int = param(2000, help="training mosaics", min=1)
    mosaic_test: int = param(1000, help="test mosaics", min=1)
    multi_epochs: int = param(15, help="multi-label epochs", min=1)
    multi_batch_size: int = param(64, help="multi-label global batch size", min=1)
    multi_lr: float = param(0.05, help="multi-label SGD learning rate", min=0.0)
    multi_momentum: float = param(0.9, help="multi-label SGD momentum", min=0.0, max=0.999)
    multi_nesterov: bool = param(False, help="multi-label Nesterov momentum")
    multi_weight_decay: float = param(5e-4, help="multi-label weight decay", min=0.0)
    image_size: int = param(448, help="COCO: square input size", min=16)
    weights_path: str = param("", help="COCO: the torchvision ImageNet ResNet state dict (empty: random init)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for part, dataset, backbone in (("single", self.single_dataset, self.single_backbone),
                                        ("multi", self.multi_dataset, self.multi_backbone)):
            if dataset == "none":
                continue
            try:
                parse_backbone(backbone)
            except ValueError as err:
                raise ConfigError(f"{part}_backbone: {err}") from None
            if not backbone_compatible(dataset, backbone):
                raise ConfigError(f"{part}_backbone {backbone!r} does not fit {part}_dataset {dataset!r} "
                                  "(digits/mosaics: mlp; cifar10/100: wrn-D-K or mlp; coco: resnet*-gmp)")
        if self.single_dataset != "none" and "softmax" not in self.single_methods:
            raise ConfigError("single_methods must include 'softmax', the baseline every comparison is against")
        if self.schedule == "multistep" and not self.milestones:
            raise ConfigError("schedule 'multistep' needs milestones (epochs), e.g. [60, 120, 160, 220, 260]")
        if not (math.isfinite(self.lam) and math.isfinite(self.multi_lam)):
            raise ConfigError("lam and multi_lam must be finite")
        if (self.nesterov and self.momentum == 0) or (self.multi_nesterov and self.multi_momentum == 0):
            raise ConfigError("nesterov=True needs momentum > 0 (and multi_nesterov multi_momentum > 0)")
        if not (self.lr > 0 and self.multi_lr > 0):
            raise ConfigError("lr and multi_lr must be > 0")
        _check_sigma(self.single_init[1], self.sigma_param, "single_init")
        for mu_sigma in self.multi_inits:
            _check_sigma(mu_sigma[1], self.sigma_param, "multi_inits")
        if self.multi_dataset == "coco" and self.scale != "smoke" and not self.weights_path:
            raise ConfigError("multi_dataset='coco' needs weights_path: the torchvision ImageNet ResNet-101 "
                              "state dict (resnet101-63fe2227.pth), as the paper fine-tunes a pretrained network; "
                              "pass -p weights_path=/path/to/resnet101-63fe2227.pth")


# --------------------------------------------------------------------------------------------
# one run, derived from the parameters
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    """One training run: ``params`` plus the part (``task``), ``method``, replicate ``seed`` and the
    (``mu_init``, ``sigma_init``) of the G-softmax transform. What differs between the parts is read
    from ``params`` by the properties below (multi-label runs: the ``multi_*`` fields and a constant LR,
    as in Sec. IV-B); settings both parts share (``sigma_param``, ``lsoftmax_beta``, ``data_root``,
    ``amp``, ``progress``...) are read as ``spec.params.<name>``."""

    params: GSoftmaxParams
    task: Literal["single", "multi"] = "single"
    method: str = "gsoftmax"
    seed: int = 0
    mu_init: float = 0.0
    sigma_init: float = 1.0

    def __post_init__(self) -> None:
        if self.task not in ("single", "multi"):
            raise ConfigError(f"RunSpec.task must be 'single' or 'multi', got {self.task!r}")
        if self.method not in METHODS:
            raise ConfigError(f"RunSpec.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.dataset == "none":
            raise ConfigError(f"the {self.task}-label part is switched off ({self.task}_dataset='none')")
        if self.multilabel and self.method == "lsoftmax":
            raise ConfigError("L-softmax is a single-label loss (it singles out the true class); "
                              f"dataset {self.dataset!r} is multi-label")
        _check_sigma(self.sigma_init, self.params.sigma_param, "RunSpec.sigma_init")

    def _pick(self, single: str, multi: str) -> Any:
        return getattr(self.params, multi if self.multilabel else single)

    # what is trained
    @property
    def multilabel(self) -> bool:
        return self.task == "multi"

    @property
    def dataset(self) -> str:
        return self._pick("single_dataset", "multi_dataset")

    @property
    def backbone(self) -> str:
        return self._pick("single_backbone", "multi_backbone")

    @property
    def hidden(self) -> tuple[int, ...]:
        return self._pick("hidden", "multi_hidden")

    @property
    def lam(self) -> float:
        return self._pick("lam", "multi_lam")

    @property
    def multilabel_reading(self) -> str:
        return self.params.multi_reading

    @property
    def gaussian_lr(self) -> float | None:
        return self.params.gaussian_lr or None

    @property
    def data_seed(self) -> int:
        """Seed of the digits/mosaics train/test split (the replicate seed)."""
        return self.seed

    # optimisation
    @property
    def epochs(self) -> int:
        return self._pick("epochs", "multi_epochs")

    @property
    def batch_size(self) -> int:
        return self._pick("batch_size", "multi_batch_size")

    @property
    def lr(self) -> float:
        return self._pick("lr", "multi_lr")

    @property
    def momentum(self) -> float:
        return self._pick("momentum", "multi_momentum")

    @property
    def nesterov(self) -> bool:
        return self._pick("nesterov", "multi_nesterov")

    @property
    def weight_decay(self) -> float:
        return self._pick("weight_decay", "multi_weight_decay")

    @property
    def schedule(self) -> str:
        return "constant" if self.multilabel else self.params.schedule

    @property
    def max_steps(self) -> int | None:
        return self.params.max_steps or None


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    """A JSON-able view of ``spec`` (the params in full), read back by :func:`spec_from_mapping`."""
    return to_dict(spec)


def spec_from_mapping(mapping: dict[str, Any]) -> RunSpec:
    """A :class:`RunSpec` from :func:`spec_to_dict`'s output (unknown keys rejected by name)."""
    return from_mapping(RunSpec, mapping)


def load_spec(path: str | Path) -> RunSpec:
    """A run from a JSON or YAML file written by :func:`spec_to_dict`."""
    mapping = load_params_file(path)
    return spec_from_mapping(mapping)


def single_label_runs(p: GSoftmaxParams) -> list[RunSpec]:
    """Every method of ``single_methods`` for each replicate seed (seed-major order)."""
    if p.single_dataset == "none":
        return []
    mu, sigma = p.single_init
    return [RunSpec(p, "single", method, seed, mu, sigma) for seed in p.seeds for method in p.single_methods]


def multilabel_runs(p: GSoftmaxParams) -> list[RunSpec]:
    """Per replicate seed: the softmax baseline, then G-softmax with each (mu, sigma) of ``multi_inits``."""
    if p.multi_dataset == "none":
        return []
    runs = []
    for seed in p.seeds:
        runs.append(RunSpec(p, "multi", "softmax", seed))
        runs += [RunSpec(p, "multi", "gsoftmax", seed, mu, sigma) for mu, sigma in p.multi_inits]
    return runs
