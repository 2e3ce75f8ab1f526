"""Training and evaluating SEC (thesis section 2.4.1): configuration, entry points and a CLI.

Pipeline: :func:`load_data` -> cues (:func:`get_cues`: train a CAM localizer with
:func:`train_localizer_for` and run :func:`~thesislib.methods.sec.localization.compute_cues`, or
read the released cue file) -> :func:`train_sec` (SGD on Eq. 2.1 through the engine) ->
:func:`evaluate_config` (mIoU on the evaluation set without and with the test-time dense CRF,
Fig. 2.3; :mod:`thesislib.methods.sec.inference`).

The thesis's settings (``configs/sec/full.yaml``): DeepLab-LargeFOV from ImageNet VGG16, input
321 x 321 (41 x 41 masks), 8000 iterations of batch 15, SGD with momentum 0.9, lr 1e-3 divided
by 10 every 2000 iterations, weight decay 5e-4, Caffe's lr multipliers (fc8 x10 / x20), dropout
0.5; d+ = 0.996, d- = 0, d_bg = 0.999; training CRF with spatial thetas / 12, test CRF at full
resolution. Full scale::

    python -m thesislib.methods.sec.train --config cfg.yaml --output runs/sec-full
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError, from_mapping, load_yaml, to_dict
from thesislib.crf import DenseCRFParams
from thesislib.data.transforms import denormalize
from thesislib.engine import History, StepDecay, TrainConfig, Trainer, fit, make_scheduler
from thesislib.methods.sec.cue_file import load_cues, read_foreground_cues
from thesislib.methods.sec.cues import cue_statistics, downsample_masks, replace_foreground
from thesislib.methods.sec.data import SECData, load_scenes, load_voc
from thesislib.methods.sec.inference import evaluate
from thesislib.methods.sec.localization import CueConfig, CueMaps, build_localizer, compute_cues
from thesislib.methods.sec.losses import expansion_decays, training_crf_scale
from thesislib.methods.sec.objective import SECLoss, SECLossConfig
from thesislib.nn.cam_training import CAMTrainConfig, train_cam_classifier
from thesislib.nn.deeplab import deeplab_largefov, largefov_output_size
from thesislib.nn.fcn import small_fcn
from thesislib.nn.vgg import check_vgg16_file

VOC_MASK_SIDE = 41
VOC_TRAIN_CRF_SCALE = 12.0


@dataclass(frozen=True)
class SECConfig:
    """Everything one SEC run depends on (build from a mapping with :func:`sec_config`).

    Data: ``data`` ``"scenes"`` (``n_train`` / ``n_test`` procedural images of ``image_size``
    pixels, drawn from ``data_seed``) or ``"voc"`` (``train_split`` / ``eval_split`` under
    ``voc_root`` / ``sbd_root`` or ``$THESISLIB_DATA``; ``image_size`` = network input side;
    ``max_eval_images`` > 0 evaluates on the first images only).
    Network: ``"fcn"`` (:class:`~thesislib.nn.fcn.SmallFCN` of ``width``) or
    ``"deeplab_largefov"`` (``weights_path``: local torchvision VGG16 file; empty: random init,
    with a warning).
    Cues: ``cue_source`` ``"cam"`` (train a localizer: ``localizer`` ``"small"`` / ``"vgg16"``
    for ``localizer_iterations``) or ``"file"`` (``cue_path`` + ``cue_list``: the released
    pickle and input list); ``cam_tau``, ``bg_fraction``, ``saliency_*``. ``foreground_cue_file``
    (VOC only): an ``.npz`` of foreground cue maps per image id (the micro-annotated cues of
    thesis section 3.4) that replaces the foreground of those cues, keeping their background
    (:func:`~thesislib.methods.sec.cues.replace_foreground`).
    Loss: ``seed_loss`` / ``expand_loss`` / ``constrain_loss`` switches, ``pooling``; decays
    ``d_plus`` / ``d_bg`` (0 = solve the thesis's rule for the mask size with ``fg_mass_fraction``
    / ``bg_mass_fraction``), ``d_minus``; ``prob_floor`` / ``q_floor`` (0 = off); CRF:
    ``crf_method``, ``crf_unary``, ``crf_grad``, ``crf_iterations``, ``crf_scale`` (0 = auto:
    12 x 41 / mask side for VOC, image side / mask side for scenes).
    Optimisation: ``optimizer``, ``iterations``, ``batch_size``, ``lr`` (divided by 1 /
    ``lr_gamma`` every ``lr_step`` iterations), ``momentum``, ``weight_decay``,
    ``caffe_lr_mult`` (DeepLab: fc8 x10 weights, x20 bias, other biases x2; the FCN: classifier
    x10, the rest x1).
    Evaluation: ``test_crf`` (run the test-time CRF as well), ``test_crf_method``.
    """

    # data
    data: Literal["scenes", "voc"] = "scenes"
    n_train: int = 300
    n_test: int = 100
    image_size: int = 32
    data_seed: int = 0
    voc_root: str = ""
    sbd_root: str = ""
    train_split: str = "trainaug"
    eval_split: str = "val"
    max_eval_images: int = 0
    normalization: Literal["imagenet", "caffe"] = "imagenet"
    # network
    network: Literal["fcn", "deeplab_largefov"] = "fcn"
    width: int = 16
    dropout: float = 0.1
    weights_path: str = ""
    # cues
    cue_source: Literal["cam", "file"] = "cam"
    cue_path: str = ""
    cue_list: str = ""
    foreground_cue_file: str = ""
    localizer: Literal["small", "vgg16"] = "small"
    localizer_iterations: int = 150
    localizer_batch_size: int = 32
    localizer_lr: float = 3e-3
    localizer_optimizer: Literal["adam", "sgd"] = "adam"
    cam_tau: float = 0.2
    bg_fraction: float = 0.1
    saliency_layer: str = "input"
    saliency_classes: Literal["all", "present"] = "all"
    saliency_median: bool = True
    # loss
    seed_loss: bool = True
    expand_loss: bool = True
    constrain_loss: bool = True
    pooling: Literal["gwrp", "gmp", "gap"] = "gwrp"
    d_plus: float = 0.0
    d_minus: float = 0.0
    d_bg: float = 0.0
    fg_mass_fraction: float = 0.1
    bg_mass_fraction: float = 0.3
    prob_floor: float = 1e-4
    q_floor: float = 1e-4
    seed_normalization: Literal["image", "batch"] = "image"
    seed_background: bool = True
    crf_method: Literal["auto", "exact", "permutohedral", "hybrid"] = "permutohedral"
    crf_unary: Literal["logits", "log_probs"] = "logits"
    crf_grad: Literal["stop", "unrolled"] = "stop"
    crf_iterations: int = 10
    crf_scale: float = 0.0
    # optimisation
    optimizer: Literal["sgd", "adam"] = "sgd"
    iterations: int = 8000
    batch_size: int = 15
    lr: float = 1e-3
    lr_step: int = 2000
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    caffe_lr_mult: bool = True
    # evaluation
    test_crf: bool = True
    test_crf_method: Literal["auto", "exact", "permutohedral", "hybrid"] = "auto"
    test_crf_scale: float = 1.0
    eval_batch_size: int = 50
    # run
    seed: int = 0
    amp: bool = True
    num_workers: int = 0
    progress: str = "none"

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "image_size", "iterations", "batch_size", "lr_step", "width",
                     "localizer_iterations", "localizer_batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SECConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.seed_loss or self.expand_loss or self.constrain_loss):
            raise ConfigError("SECConfig: switch on at least one of seed_loss, expand_loss, constrain_loss")
        if self.data == "voc" and self.network == "fcn" and self.image_size < 64:
            raise ConfigError("SECConfig: the VOC path needs image_size >= 64")
        if self.cue_source == "file" and not (self.cue_path and self.cue_list):
            raise ConfigError("SECConfig: cue_source='file' needs cue_path (localization_cues.pickle[.gz]) "
                              "and cue_list (input_list.txt)")
        if self.foreground_cue_file and self.data != "voc":
            raise ConfigError("SECConfig: foreground_cue_file (maps keyed by VOC image ids) needs data='voc'")
        for name in ("d_plus", "d_minus", "d_bg"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"SECConfig.{name} must lie in [0, 1], got {getattr(self, name)}")

    # derived values -----------------------------------------------------------------------
    @property
    def mask_side(self) -> int:
        """Side of the network's output for ``image_size`` inputs (41 for DeepLab at 321)."""
        if self.network == "deeplab_largefov":
            return largefov_output_size(self.image_size)
        return -(-self.image_size // 2)

    def decays(self) -> tuple[float, float, float]:
        """(d+, d-, d_bg): explicit values, or (0 for d+ / d_bg) solved for the mask size."""
        auto_plus, auto_bg = expansion_decays(self.mask_side ** 2, self.fg_mass_fraction, self.bg_mass_fraction)
        return (self.d_plus or auto_plus, self.d_minus, self.d_bg or auto_bg)

    def train_crf_scale(self) -> float:
        if self.crf_scale > 0:
            return self.crf_scale
        if self.data == "voc":
            return VOC_TRAIN_CRF_SCALE * VOC_MASK_SIDE / self.mask_side
        return training_crf_scale(self.image_size, self.mask_side)

    def loss_config(self) -> SECLossConfig:
        d_plus, d_minus, d_bg = self.decays()
        crf = DenseCRFParams.sec_train(self.crf_iterations).scaled(self.train_crf_scale())
        return SECLossConfig(seed=self.seed_loss, expand=self.expand_loss, constrain=self.constrain_loss,
                             pooling=self.pooling, d_plus=d_plus, d_minus=d_minus, d_bg=d_bg,
                             prob_floor=self.prob_floor, seed_background=self.seed_background,
                             seed_normalization=self.seed_normalization, crf=crf, crf_method=self.crf_method,
                             crf_unary=self.crf_unary, crf_grad=self.crf_grad, q_floor=self.q_floor)

    def test_crf_params(self) -> DenseCRFParams:
        """The test-time CRF: SEC's parameters on the image at its own resolution (scale 1)."""
        return DenseCRFParams.sec_test(self.crf_iterations).scaled(self.test_crf_scale)


def sec_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> SECConfig:
    """:class:`SECConfig` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(SECConfig, mapping, **overrides)


# ---------------------------------------------------------------------------------------------
# data and cues
# ---------------------------------------------------------------------------------------------

def load_data(config: SECConfig) -> SECData:
    """The run's data (see :mod:`thesislib.methods.sec.data`); a missing VOC / SBD raises
    :class:`~thesislib.data.DatasetNotFoundError` before anything heavy runs."""
    if config.data == "scenes":
        return load_scenes(config.n_train, config.n_test, config.image_size, config.data_seed, config.normalization)
    return load_voc(config.image_size, config.normalization, config.voc_root or None, config.sbd_root or None,
                    config.train_split, config.eval_split, config.max_eval_images)


def check_inputs(config: SECConfig) -> None:
    """Fail early on missing files named by the config (weights, cue file and list)."""
    if config.weights_path:
        check_vgg16_file(config.weights_path)
    if config.cue_source == "file":
        for name in ("cue_path", "cue_list"):
            path = Path(getattr(config, name)).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"SECConfig.{name} = {path} does not exist (the released code ships "
                                        "training/localization_cues/localization_cues.pickle.gz and "
                                        "training/input_list.txt)")
    if config.foreground_cue_file and not Path(config.foreground_cue_file).expanduser().is_file():
        raise FileNotFoundError(f"SECConfig.foreground_cue_file = {config.foreground_cue_file} does not exist "
                                "(cues_after.npz or cues_before.npz of a micro-annotation VOC run, written to "
                                "runs/micro_annotation/<stamp>-full_voc/ by thesislib run micro_annotation "
                                "--scale full_voc)")


def localizer_config(config: SECConfig) -> CAMTrainConfig:
    """The localizer's training: BCE on the image-level labels, ``localizer_iterations`` steps of
    ``localizer_optimizer`` (Adam, or SGD with momentum 0.9) at ``localizer_lr``, weight decay 1e-4."""
    return CAMTrainConfig(iterations=config.localizer_iterations, batch_size=config.localizer_batch_size,
                          loss="bce", optimizer=config.localizer_optimizer, lr=config.localizer_lr,
                          weight_decay=1e-4, seed=config.seed, amp=config.amp, progress=config.progress,
                          num_workers=config.num_workers)


def cue_config(config: SECConfig) -> CueConfig:
    return CueConfig(config.cam_tau, config.bg_fraction, config.saliency_layer, config.saliency_classes,
                     config.saliency_median)


def train_localizer_for(config: SECConfig, data: SECData, device: torch.device) -> tuple[nn.Module, History]:
    """Build and train the run's CAM localizer on the training images' labels (BCE)."""
    torch.manual_seed(config.seed)
    model = build_localizer(config.localizer, data.num_labels - 1, config.weights_path or None)
    history = train_cam_classifier(model, data.train, localizer_config(config), device)
    return model, history


def get_cues(config: SECConfig, data: SECData, device: torch.device,
             localizer: nn.Module | None = None) -> CueMaps:
    """Cue maps for ``data.train``: from the released file (``cue_source="file"``) or from a CAM
    localizer (trained here unless given); with ``foreground_cue_file``, their foreground replaced by
    that file's maps."""
    cues = _source_cues(config, data, device, localizer)
    if not config.foreground_cue_file:
        return cues
    if data.train_ids is None:
        raise ConfigError("foreground_cue_file needs VOC data (the file is keyed by VOC image ids)")
    foreground = read_foreground_cues(config.foreground_cue_file, data.train_ids, size=config.mask_side)
    return CueMaps(replace_foreground(cues.cues, torch.from_numpy(foreground)), cues.conflicts)


def _source_cues(config: SECConfig, data: SECData, device: torch.device, localizer: nn.Module | None) -> CueMaps:
    size = (config.mask_side, config.mask_side)
    if config.cue_source == "file":
        ids = data.train_ids
        if ids is None:
            raise ConfigError("cue_source='file' needs VOC data (the file is keyed by VOC image ids)")
        cue_set = load_cues(config.cue_path, config.cue_list, ids, size=config.mask_side)
        return CueMaps(torch.from_numpy(cue_set.cues), torch.zeros(len(ids), dtype=torch.int64))
    if localizer is None:
        localizer, _ = train_localizer_for(config, data, device)
    return compute_cues(localizer, data.train, size, cue_config(config), device)


def cue_stats(cues: CueMaps, data: SECData, limit: int = 500) -> dict[str, float]:
    """:func:`~thesislib.methods.sec.cues.cue_statistics` against the training masks (scenes:
    all images; VOC: the first ``limit``), downsampled to the mask by nearest neighbour."""
    n = len(cues) if data.kind == "scenes" else min(limit, len(cues))
    side = cues.cues.shape[-1]
    if data.kind == "scenes":
        masks = downsample_masks(data.train_masks(), (side, side))
    else:
        masks = torch.stack([downsample_masks(m[None], (side, side))[0] for m in data.train_masks(range(n))])
    return cue_statistics(cues.cues[:n], masks[:n])


class CuedItems(Dataset):
    """Training items with their cue label map under ``"cues"``."""

    def __init__(self, base: Dataset, cues: Tensor) -> None:
        if len(base) != len(cues):
            raise ValueError(f"{len(base)} training items but {len(cues)} cue maps")
        self.base, self.cues = base, cues

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = dict(self.base[index])
        item["cues"] = self.cues[index]
        return item


# ---------------------------------------------------------------------------------------------
# network and training
# ---------------------------------------------------------------------------------------------

def build_network(config: SECConfig, num_labels: int) -> nn.Module:
    """The segmentation network; DeepLab without ``weights_path`` warns that the run is no
    replication (random initialisation)."""
    if config.network == "fcn":
        return small_fcn(num_labels, width=config.width, dropout=config.dropout)
    if not config.weights_path:
        warnings.warn("DeepLab-LargeFOV starts from random weights (no weights_path): the thesis initialises "
                      "it from ImageNet VGG16, so this run is NOT a replication of its numbers", stacklevel=2)
    return deeplab_largefov(num_labels, config.dropout, config.weights_path or None)


def param_groups(model: nn.Module, config: SECConfig) -> list[dict[str, Any]]:
    """Caffe lr multipliers (``caffe_lr_mult``) or one group with weight decay on everything."""
    if config.caffe_lr_mult and hasattr(model, "param_groups"):
        if config.network == "fcn":
            return model.param_groups(config.lr, config.weight_decay, head_lr_mult=10.0)
        return model.param_groups(config.lr, config.weight_decay)
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr,
             "weight_decay": config.weight_decay}]


def make_optimizer(model: nn.Module, config: SECConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(groups, lr=config.lr)


def sec_step_fn(loss_fn: SECLoss, normalization: str) -> Callable[[nn.Module, dict[str, Tensor]],
                                                                  tuple[Tensor, dict[str, Tensor]]]:
    """The engine step: forward, Eq. 2.1, and the enabled terms as metrics (no host sync)."""
    def step(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = model(batch["image"])
        rgb = denormalize(batch["image"].float(), normalization, scale=255.0)
        out = loss_fn(logits, batch["labels"], batch["cues"], rgb)
        metrics = {name: value.detach() for name, value in
                   (("seed", out.seed), ("expand", out.expand), ("constrain", out.constrain)) if value is not None}
        return out.loss, metrics
    return step


def train_sec(config: SECConfig, cues: CueMaps | Tensor, device: torch.device, data: SECData | None = None,
              on_step: Callable[[Trainer], None] | None = None) -> tuple[nn.Module, History]:
    """Train the segmentation network with the SEC loss; returns (model, history).

    ``cues``: cue maps aligned with ``data.train`` (loaded from ``config`` when ``data`` is None).
    ``on_step(trainer)`` is called after every optimiser step (e.g. to snapshot Q).
    """
    data = data or load_data(config)
    cue_maps = cues.cues if isinstance(cues, CueMaps) else cues
    if tuple(cue_maps.shape[-2:]) != (config.mask_side, config.mask_side):
        raise ValueError(f"cues are {tuple(cue_maps.shape[-2:])} but the network gives "
                         f"{config.mask_side} x {config.mask_side} masks")
    torch.manual_seed(config.seed)
    model = build_network(config, data.num_labels)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, StepDecay(config.lr_step, config.lr_gamma))
    train_set = CuedItems(data.train, cue_maps)
    steps_per_epoch = max(1, -(-len(train_set) // config.batch_size))
    train_config = TrainConfig(epochs=math.ceil(config.iterations / steps_per_epoch), max_steps=config.iterations,
                               batch_size=config.batch_size, seed=config.seed, amp=config.amp,
                               num_workers=config.num_workers, progress=config.progress,  # type: ignore[arg-type]
                               log_every=max(1, min(100, config.iterations // 50)))
    step = sec_step_fn(SECLoss(config.loss_config()), config.normalization)
    history = fit(model, optimizer, train_set, step, train_config, device, scheduler=scheduler, on_step=on_step)
    return model, history


# ---------------------------------------------------------------------------------------------
# evaluation (the test-time functions live in thesislib.methods.sec.inference)
# ---------------------------------------------------------------------------------------------

def evaluate_config(model: nn.Module, data: SECData, config: SECConfig, device: torch.device) -> dict[str, Any]:
    """:func:`evaluate` with the config's test-time CRF settings."""
    return evaluate(model, data.test, device, config.test_crf_params() if config.test_crf else None,
                    num_labels=data.num_labels, batch_size=config.eval_batch_size, crf_method=config.test_crf_method)


# ---------------------------------------------------------------------------------------------
# CLI: one full run
# ---------------------------------------------------------------------------------------------

def run(config: SECConfig, device: torch.device, output: Path | None = None,
        data: SECData | None = None) -> dict[str, Any]:
    """Cues, training and evaluation of one configuration (``data``: loaded unless given).

    Returns the ``metrics.json`` record the notebook writes for one replicate, in the results
    schema (``{"chapter", "scale", "experiments": {id: metrics}}``, the id naming the ablation and
    any departure from the thesis's protocol, :func:`~thesislib.methods.sec.experiments.experiment_id`),
    plus ``cue_stats``, ``seconds`` and ``final_loss``; with ``output``, writes it there with
    ``provenance.json`` and ``model.pt`` (``thesislib record`` reads the directory).
    """
    from thesislib.methods.sec.experiments import ablation_name, experiment_id, flat_metrics
    from thesislib.repro import provenance, write_json

    data = data if data is not None else load_data(config)
    started = time.perf_counter()
    cues = get_cues(config, data, device)
    stats = cue_stats(cues, data)
    model, history = train_sec(config, cues, device, data)
    metrics = flat_metrics(evaluate_config(model, data, config, device), data.class_names)
    name = ablation_name(config)
    record = {"chapter": "sec", "scale": "full" if config.data == "voc" else "smoke",
              "experiments": {experiment_id(config, name): metrics}, "cue_stats": stats,
              "seconds": time.perf_counter() - started, "final_loss": history.last().get("loss")}
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        write_json(output / "metrics.json", record)
        write_json(output / "provenance.json", provenance(config=to_dict(config), device=device))
        torch.save(model.state_dict(), output / "model.pt")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m thesislib.methods.sec.train --config cfg.(json|yaml) [--output DIR] [--device D]``."""
    from thesislib.data.errors import DatasetNotFoundError
    from thesislib.device import resolve_device

    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.sec.train", description=main.__doc__)
    parser.add_argument("--config", required=True, help="JSON or YAML mapping of SECConfig fields")
    parser.add_argument("--output", help="directory for metrics.json, provenance.json and model.pt")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:  # everything that can be wrong with the inputs fails here, before training
        path = Path(args.config)
        mapping = json.loads(path.read_text()) if path.suffix == ".json" else load_yaml(path)
        config = sec_config(mapping)
        check_inputs(config)
        device = resolve_device(args.device)
        data = load_data(config)
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"sec: error: {err}", file=sys.stderr)
        return 2
    record = run(config, device, Path(args.output) if args.output else None, data)
    print(json.dumps(record["experiments"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
