"""The chapter's parameters, declared once (:class:`PixelCNNAuxParams`), and what is derived from them.

One dataclass is the notebook's ``parameters`` cell, the validated ``thesislib run`` parameters
(``configs/pixelcnn_aux/{smoke,full,full_celeba}.yaml`` plus ``-p``) and the configuration of every
training run. A *part* is one separately trained factor of Eq. 4.2 (the thesis trains the two
terms of Eq. 4.4 separately, and every pyramid level is its own model):

* ``plain``: the single-scale baseline p(X) (the Fig. 4.1 / PixelCNN++ row of Table 4.1);
* ``gray``: p(X̂) over the 4-bit grayscale image (16-way softmax per pixel, §4.3.1);
* ``color``: p(X | X̂), the conditional PixelCNN with f_w(X̂) added into every block;
* ``base``: the pyramid's lowest resolution p(X_L); ``level<k>``: p(X_k | X_{k+1}), X_{k+1} = the
  image at half the resolution of X_k (Eq. 8 of the shared colour module), k = L-1 .. 0.

:func:`part_spec` gives each part's network sizes and :func:`engine_config` its engine training
configuration (Adam, exponential lr decay after every iteration as in the thesis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, replace
from thesislib.engine import TrainConfig, train_config
from thesislib.params import RunParams, param

EXPERIMENTS = ("grayscale", "pyramid")
GRAY_PARTS = ("plain", "gray", "color")
GRAY_LEVELS = 16  # the 4-bit X̂ of §4.3.1

PAPER_GRAYSCALE = {"nr_resnet": 24, "lr": 1e-3, "batch_size": 64, "lr_decay": 0.99999,
                   "gray_epochs": 30, "color_epochs": 200}
PAPER_PYRAMID = {"levels": 4, "nr_resnet": 3, "embed_blocks": 15, "nr_filters": 100, "lr": 1e-3,
                 "batch_size": 16, "lr_decay": 0.999995, "epochs": 60}
"""The thesis's hyperparameters (§4.4.1, §4.4.2; study note 001 §3.2)."""


@dataclass(frozen=True)
class PixelCNNAuxParams(RunParams):
    """Every parameter of the chapter (defaults: smoke scale; ``configs/pixelcnn_aux/full*.yaml``:
    the thesis's settings). Groups: run, data, networks, optimisation, sampling."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) per training run; 1: in this process", min=1)
    experiments: tuple[str, ...] = param(EXPERIMENTS, help="which models to train", choices=EXPERIMENTS)
    # data
    data: Literal["smoke", "cifar10", "celeba"] = param(
        "smoke", help="smoke (coloured digits + procedural faces) | cifar10 | celeba (pyramid only)")
    data_root: str = param("", help="directory holding cifar10/ or celeba/ (empty: $THESISLIB_DATA)")
    gray_size: int = param(8, help="smoke: side of the coloured digits (8, 16 or 32)", min=8)
    pyramid_size: int = param(16, help="side of the pyramid's full-resolution images (CelebA: 128)", min=4)
    pyramid_levels: int = param(2, help="number of x2 upscaling models above the base (CelebA: 4)", min=1)
    n_train: int = param(1500, help="training images (0: the whole split)", min=0)
    n_test: int = param(297, help="test images (0: the whole split)", min=0)
    pyramid_train: int = param(400, help="smoke: procedural faces for training", min=1)
    pyramid_test: int = param(64, help="smoke: procedural faces for testing", min=1)
    flip: bool = param(True, help="random horizontal flips during training (the thesis on CIFAR-10)")
    # networks
    nr_resnet: int = param(1, help="gated blocks per stream of the p(X), p(X̂), p(X|X̂) PixelCNNs", min=1)
    nr_filters: int = param(16, help="channels of every PixelCNN", min=1)
    n_mix: int = param(5, help="logistic mixture components (thesis: 10)", min=1)
    dropout: float = param(0.0, help="dropout in the gated blocks (thesis: 0.5)", min=0.0, max=1.0)
    updown: bool = param(False, help="grayscale models with PixelCNN++ down/up-sampling (side divisible by 4)")
    embed_blocks: int = param(1, help="gated blocks of f_w (grayscale; pyramid: per stage)", min=0)
    embed_width: int = param(16, help="channels of f_w", min=1)
    embed_channels: int = param(16, help="channels of f_w's output map, added into every block", min=1)
    pyramid_resnet: int = param(1, help="blocks per stream of each pyramid PixelCNN (thesis: 3)", min=1)
    pyramid_embed: Literal["small", "thesis"] = param(
        "small", help="pyramid f_w: small (embed_blocks, then a x2 up stage) | thesis (15 blocks: down "
        "after 3, up after 9 and 12)")
    single_resnet: int = param(3, help="speed table: blocks of the single-scale PixelCNN it is compared to", min=1)
    # optimisation
    iterations: int = param(50, help="training steps of every part (0: train by epochs)", min=0)
    epochs: int = param(0, help="epochs of every part when iterations is 0", min=0)
    gray_epochs: int = param(0, help="epochs of p(X̂) when iterations is 0 (0: as epochs)", min=0)
    batch_size: int = param(32, help="batch size (global over torchrun processes)", min=1)
    lr: float = param(5e-3, help="Adam learning rate", min=0.0)
    lr_decay: float = param(0.995, help="lr multiplied by this after every iteration", min=0.0, max=1.0)
    eval_batch_size: int = param(256, help="evaluation batch size", min=1)
    amp: bool = param(False, help="bf16 autocast on CUDA (off: the likelihood wants fp32)")
    num_workers: int = param(0, help="data loader workers", min=0)
    checkpoint_dir: str = param("", help="resumable checkpoints under this directory (empty: none)")
    # sampling
    n_samples: int = param(32, help="samples of p(X) and p(X̂) per replicate for the recognisability score",
                           min=1)
    recognisable_p: float = param(0.9, help="a sample is recognised when the classifier's top probability "
                                  "exceeds this", min=0.0, max=1.0)
    variance_reductions: tuple[float, ...] = param((0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                                                   help="the Fig. 4.4 sweep (subtracted from the log-scales)")
    speed_batches: tuple[int, ...] = param((1, 16), help="batch sizes of the sampling-speed table")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.experiments:
            raise ConfigError("PixelCNNAuxParams: experiments names no model")
        if self.data == "celeba" and "grayscale" in self.experiments:
            raise ConfigError("PixelCNNAuxParams: the thesis trains the grayscale PixelCNN on CIFAR-10 only; "
                              "with data='celeba' set experiments=[pyramid]")
        if self.iterations == 0 and self.epochs == 0:
            raise ConfigError("PixelCNNAuxParams: set iterations > 0 or epochs > 0")
        if self.pyramid_size % (2 ** self.pyramid_levels):
            raise ConfigError(f"PixelCNNAuxParams: pyramid_size {self.pyramid_size} must be divisible by "
                              f"2^pyramid_levels = {2 ** self.pyramid_levels}")
        if self.gray_size not in (8, 16, 32):
            raise ConfigError(f"PixelCNNAuxParams: gray_size must be 8, 16 or 32, got {self.gray_size}")

    # derived values ---------------------------------------------------------------------
    @property
    def gray_side(self) -> int:
        """Side of the grayscale experiment's images (32 for CIFAR-10)."""
        return 32 if self.data == "cifar10" else self.gray_size

    @property
    def pyramid_sides(self) -> list[int]:
        """Resolutions of the pyramid from the base up, e.g. [4, 8, 16] (CelebA: [8, ..., 128])."""
        top = 32 if self.data == "cifar10" else self.pyramid_size
        return [top // 2 ** k for k in range(self.pyramid_levels, -1, -1)]

    def pyramid_parts(self) -> list[str]:
        """``["base", "level<side>", ...]`` from the base up (the part names of the pyramid)."""
        return ["base"] + [f"level{s}" for s in self.pyramid_sides[1:]]


@dataclass(frozen=True)
class PartSpec:
    """Network sizes of one part. ``in_channels``/``out_kind``: the modelled image (3 RGB with a
    DMOL, or 1 gray with a ``GRAY_LEVELS``-way softmax); ``cond``: None, ``"gray"`` (f_w on X̂ at the
    same resolution) or ``"coarse"`` (f_w on the half-resolution image, upsampling x2)."""

    name: str
    in_channels: int
    out_kind: Literal["dmol", "categorical"]
    nr_resnet: int
    nr_filters: int
    updown: bool
    cond: Literal["gray", "coarse"] | None
    side: int


def part_spec(params: PixelCNNAuxParams, name: str) -> PartSpec:
    """The :class:`PartSpec` of part ``name`` (see the module docstring)."""
    f = params.nr_filters
    if name in GRAY_PARTS:
        side = params.gray_side
        updown = params.updown
        if name == "plain":
            return PartSpec(name, 3, "dmol", params.nr_resnet, f, updown, None, side)
        if name == "gray":
            return PartSpec(name, 1, "categorical", params.nr_resnet, f, updown, None, side)
        return PartSpec(name, 3, "dmol", params.nr_resnet, f, updown, "gray", side)
    if name == "base":
        return PartSpec(name, 3, "dmol", params.pyramid_resnet, f, False, None, params.pyramid_sides[0])
    if name.startswith("level") and name in params.pyramid_parts():
        return PartSpec(name, 3, "dmol", params.pyramid_resnet, f, False, "coarse", int(name[len("level"):]))
    raise ConfigError(f"unknown part {name!r}; parts are {list(GRAY_PARTS)} and {params.pyramid_parts()}")


def engine_config(params: PixelCNNAuxParams, name: str, n_train: int = 0) -> TrainConfig:
    """The engine's :class:`~thesislib.engine.TrainConfig` of part ``name``: ``iterations`` steps,
    or epochs (``gray_epochs`` for p(X̂), as the thesis trains it for 30 epochs and p(X|X̂) for 200)."""
    checkpoint = f"{params.checkpoint_dir}/{name}" if params.checkpoint_dir else None
    common = {"batch_size": params.batch_size, "checkpoint_dir": checkpoint, "log_every": 50,
              "channels_last": False}
    if params.iterations:
        return train_config(params, iterations=params.iterations, **common)
    epochs = params.gray_epochs if name == "gray" and params.gray_epochs else params.epochs
    return train_config(params, epochs=epochs, **common)


def pixelcnn_aux_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> PixelCNNAuxParams:
    """:class:`PixelCNNAuxParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(PixelCNNAuxParams, mapping, **overrides)


def replicate(params: PixelCNNAuxParams, seed: int) -> PixelCNNAuxParams:
    """The parameters of one replicate (seed filled in, one seed)."""
    return replace(params, seed=seed, n_seeds=1)


def experiment_id(params: PixelCNNAuxParams, experiment: str) -> str:
    """Ids of ``thesislib/replication/pixelcnn_aux.yaml`` for the thesis's data
    (``cifar10/grayscale-pixelcnn``, ``cifar10/pyramid-pixelcnn``, ``celeba128/pyramid-pixelcnn``);
    smoke ids (``digits8/...``, ``faces16/...``) cannot collide with them."""
    if params.data == "cifar10":
        return f"cifar10/{experiment}-pixelcnn"
    if params.data == "celeba":
        return f"celeba{params.pyramid_sides[-1]}/{experiment}-pixelcnn"
    if experiment == "grayscale":
        return f"digits{params.gray_side}/{experiment}-pixelcnn"
    return f"faces{params.pyramid_sides[-1]}/{experiment}-pixelcnn"
