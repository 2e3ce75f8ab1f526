"""SEC's parameters, declared once (:class:`SECParams`), and everything derived from them.

:class:`SECParams` is the notebook's ``parameters`` cell, the validated ``thesislib run``
parameters (``configs/sec/{smoke,full}.yaml`` plus ``-p``) and the configuration of one
training run, all at once: a run of configuration ``name`` in replicate ``seed`` is
:func:`config_for` ``(params, name, seed)``, the same dataclass with the ablation's loss switches
(:data:`ABLATIONS`) and the replicate's seed filled in. Derived values (mask side, the GWRP
decays, the training and test CRF, the loss, the localizer's and the engine's training
configs, the experiment id) are functions of it here.

Run bookkeeping that reaches no training config: ``n_seeds`` (replicates), ``scale``,
``output_dir``, ``device``, ``threads`` (the notebook's setup), ``nproc`` (how many torchrun
processes train each configuration, :func:`thesislib.methods.sec.train.run`), ``ablations``
(which configurations the notebook trains) and ``data_root`` (where VOC / SBD live).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, replace
from thesislib.crf import DenseCRFParams
from thesislib.data.roots import dataset_dir
from thesislib.engine import TrainConfig, train_config
from thesislib.methods.sec.localization import CueConfig
from thesislib.methods.sec.losses import expansion_decays, training_crf_scale
from thesislib.methods.sec.objective import SECLossConfig
from thesislib.nn.cam_training import CAMTrainConfig
from thesislib.nn.deeplab import largefov_output_size
from thesislib.params import RunParams, param

VOC_MASK_SIDE = 41
VOC_TRAIN_CRF_SCALE = 12.0

ABLATIONS: dict[str, dict[str, Any]] = {
    "seed": {"seed_loss": True, "expand_loss": False, "constrain_loss": False, "pooling": "gwrp"},
    "seed+expand": {"seed_loss": True, "expand_loss": True, "constrain_loss": False, "pooling": "gwrp"},
    "seed+constrain": {"seed_loss": True, "expand_loss": False, "constrain_loss": True, "pooling": "gwrp"},
    "expand+constrain": {"seed_loss": False, "expand_loss": True, "constrain_loss": True, "pooling": "gwrp"},
    "sec": {"seed_loss": True, "expand_loss": True, "constrain_loss": True, "pooling": "gwrp"},
    "sec-gmp": {"seed_loss": True, "expand_loss": True, "constrain_loss": True, "pooling": "gmp"},
    "sec-gap": {"seed_loss": True, "expand_loss": True, "constrain_loss": True, "pooling": "gap"},
}
"""The configurations of thesis section 2.4.3 (Figs. 2.6, 2.7): loss switches and pooling."""
LOSS_ABLATIONS = ("seed", "seed+expand", "seed+constrain", "expand+constrain", "sec")
POOLING_ABLATIONS = ("sec-gmp", "sec-gap", "sec")

PAPER_PROTOCOL = {"iterations": 8000, "batch_size": 15, "image_size": 321, "network": "deeplab_largefov",
                  "optimizer": "sgd", "lr": 1e-3, "lr_step": 2000, "lr_gamma": 0.1, "momentum": 0.9,
                  "weight_decay": 5e-4, "caffe_lr_mult": True, "dropout": 0.5, "train_split": "trainaug",
                  "eval_split": "val"}
"""The thesis's training protocol (section 2.4.1); a VOC run that differs gets an id naming it."""

_CRF = ("auto", "exact", "permutohedral", "hybrid")


@dataclass(frozen=True)
class SECParams(RunParams):
    """Every parameter of the SEC chapter (defaults: the smoke scale; ``configs/sec/full.yaml``:
    the thesis's setting). Groups: run, data, network, cues, loss, CRF, optimisation, evaluation.

    The loss switches (``seed_loss``, ``expand_loss``, ``constrain_loss``, ``pooling``) describe
    one configuration; the notebook trains every configuration named in ``ablations``, each with
    the switches of :data:`ABLATIONS` (:func:`config_for`).
    """

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); paired verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) per training run; 1: in this process", min=1)
    # data
    data: Literal["scenes", "voc"] = param("scenes", help="scenes (procedural) | voc (VOC 2012 + SBD)")
    data_root: str = param("", help="directory holding voc/ and sbd/ (empty: $THESISLIB_DATA)")
    voc_root: str = param("", help="VOC root overriding data_root/voc (empty: from data_root)")
    sbd_root: str = param("", help="SBD root overriding data_root/sbd (empty: from data_root)")
    n_train: int = param(160, help="scenes: training images (image-level labels only)", min=1)
    n_test: int = param(60, help="scenes: evaluation images (with masks)", min=1)
    image_size: int = param(32, help="network input side (VOC: 321)", min=8)
    train_split: str = param("trainaug", help="VOC training split")
    eval_split: str = param("val", help="VOC evaluation split")
    max_eval_images: int = param(0, help="positive: evaluate on the first images only", min=0)
    normalization: Literal["imagenet", "caffe"] = param("imagenet", help="input normalisation")
    # network
    network: Literal["fcn", "deeplab_largefov"] = param("fcn", help="segmentation network")
    width: int = param(16, help="fcn: channels of the small FCN", min=1)
    dropout: float = param(0.1, help="dropout of the segmentation network", min=0.0, max=1.0)
    weights_path: str = param("", help="DeepLab: local torchvision VGG16 state dict (empty: random init)")
    # cues
    cue_source: Literal["cam", "file"] = param("cam", help="cam (train a localizer) | file (released cues)")
    cue_path: str = param("", help="file: localization_cues.pickle[.gz] of the released code")
    cue_list: str = param("", help="file: the released training/input_list.txt")
    foreground_cue_file: str = param("", help="VOC: .npz of foreground cue maps per image id (chapter 3)")
    localizer: Literal["small", "vgg16"] = param("small", help="CAM localizer: small | vgg16 (released net)")
    localizer_iterations: int = param(120, help="localizer training steps", min=1)
    localizer_batch_size: int = param(32, help="localizer batch size", min=1)
    localizer_optimizer: Literal["adam", "sgd"] = param("adam", help="localizer optimiser")
    localizer_lr: float = param(3e-3, help="localizer learning rate", min=0.0)
    cam_tau: float = param(0.5, help="foreground cue: CAM > cam_tau * max (released: 0.2)", min=0.0, max=1.0)
    bg_fraction: float = param(0.1, help="background cue: least salient fraction of locations", min=0.0, max=1.0)
    saliency_layer: str = param("input", help="saliency w.r.t. 'input' or a module, e.g. trunk.conv4_1")
    saliency_classes: Literal["all", "present"] = param("all", help="classes summed for the saliency")
    saliency_median: bool = param(True, help="3x3 median filter on the saliency")
    # loss
    seed_loss: bool = param(True, help="L_seed on (overridden per configuration by ablations)")
    expand_loss: bool = param(True, help="L_expand on (overridden per configuration by ablations)")
    constrain_loss: bool = param(True, help="L_constrain on (overridden per configuration by ablations)")
    pooling: Literal["gwrp", "gmp", "gap"] = param("gwrp", help="pooling of present classes (ablations override)")
    d_plus: float = param(0.0, help="GWRP decay of present classes; 0: solved for the mask", min=0.0, max=1.0)
    d_minus: float = param(0.0, help="GWRP decay of absent classes (0: GMP)", min=0.0, max=1.0)
    d_bg: float = param(0.0, help="GWRP decay of the background; 0: solved for the mask", min=0.0, max=1.0)
    fg_mass_fraction: float = param(0.1, help="rule of thumb: top fraction carrying half of G_c", min=0.0, max=1.0)
    bg_mass_fraction: float = param(0.3, help="the same for the background", min=0.0, max=1.0)
    prob_floor: float = param(1e-4, help="floor of the probabilities inside the logs (0: off)", min=0.0)
    q_floor: float = param(1e-4, help="floor of the CRF target Q (0: off)", min=0.0)
    seed_normalization: Literal["image", "batch"] = param("image", help="seeding loss normalisation")
    seed_background: bool = param(True, help="seed the background channel too (released code)")
    crf_method: Literal["auto", "exact", "permutohedral", "hybrid"] = param("hybrid", help="training CRF")
    crf_unary: Literal["logits", "log_probs"] = param("logits", help="training CRF unary")
    crf_grad: Literal["stop", "unrolled"] = param("stop", help="stop (Q constant) | unrolled (through mean field)")
    crf_iterations: int = param(10, help="mean-field iterations", min=1)
    crf_scale: float = param(0.0, help="divisor of the training CRF's spatial thetas; 0: auto", min=0.0)
    # optimisation
    optimizer: Literal["sgd", "adam"] = param("adam", help="sgd (thesis) | adam")
    iterations: int = param(100, help="SEC training steps", min=1)
    batch_size: int = param(16, help="SEC batch size (global over torchrun processes)", min=1)
    lr: float = param(3e-3, help="learning rate", min=0.0)
    lr_step: int = param(2000, help="lr times lr_gamma every lr_step iterations", min=1)
    lr_gamma: float = param(0.1, help="step decay factor", min=0.0, max=1.0)
    momentum: float = param(0.9, help="SGD momentum", min=0.0, max=1.0)
    weight_decay: float = param(1e-4, help="weight decay", min=0.0)
    caffe_lr_mult: bool = param(True, help="Caffe lr multipliers (DeepLab fc8 x10 / x20; FCN classifier x10)")
    # evaluation
    test_crf: bool = param(True, help="also evaluate after the test-time CRF")
    test_crf_method: Literal["auto", "exact", "permutohedral", "hybrid"] = param("auto", help="test-time CRF")
    test_crf_scale: float = param(1.0, help="divisor of the test CRF's spatial thetas", min=0.0)
    eval_batch_size: int = param(50, help="evaluation batch size (VOC: 1, sizes differ)", min=1)
    # run
    ablations: tuple[str, ...] = param(tuple(ABLATIONS), help="configurations to train",
                                       choices=tuple(ABLATIONS))
    amp: bool = param(True, help="bf16 autocast on CUDA")
    num_workers: int = param(0, help="data loader workers", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.seed_loss or self.expand_loss or self.constrain_loss):
            raise ConfigError("SECParams: switch on at least one of seed_loss, expand_loss, constrain_loss")
        if self.data == "voc" and self.network == "fcn" and self.image_size < 64:
            raise ConfigError("SECParams: the VOC path needs image_size >= 64")
        if self.cue_source == "file" and not (self.cue_path and self.cue_list):
            raise ConfigError("SECParams: cue_source='file' needs cue_path (localization_cues.pickle[.gz]) "
                              "and cue_list (input_list.txt)")
        if self.foreground_cue_file and self.data != "voc":
            raise ConfigError("SECParams: foreground_cue_file (maps keyed by VOC image ids) needs data='voc'")
        if not self.ablations:
            raise ConfigError("SECParams: ablations names no configuration")

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
        """Divisor of the training CRF's spatial thetas: ``crf_scale``, or 12 x 41 / mask side for
        VOC, image side / mask side for scenes."""
        if self.crf_scale > 0:
            return self.crf_scale
        if self.data == "voc":
            return VOC_TRAIN_CRF_SCALE * VOC_MASK_SIDE / self.mask_side
        return training_crf_scale(self.image_size, self.mask_side)

    def loss_config(self) -> SECLossConfig:
        """Eq. 2.1's configuration: switches, decays, floors and the training CRF."""
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

    def roots(self) -> tuple[str, str]:
        """(VOC root, SBD root): explicit, else by the one root rule of
        :func:`thesislib.data.roots.dataset_dir` (``data_root/voc``; empty ``data_root``: ``$THESISLIB_DATA``)."""
        voc = self.voc_root or str(dataset_dir("voc", data_root=self.data_root))
        sbd = self.sbd_root or str(dataset_dir("sbd", data_root=self.data_root))
        return voc, sbd


def sec_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> SECParams:
    """:class:`SECParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(SECParams, mapping, **overrides)


def config_for(params: SECParams, name: str = "sec", seed: int | None = None) -> SECParams:
    """The parameters of configuration ``name`` (:data:`ABLATIONS`) in replicate ``seed``
    (default: ``params.seed``): one replicate, the configuration's loss switches."""
    if name not in ABLATIONS:
        raise ConfigError(f"unknown SEC configuration {name!r}; choose from {list(ABLATIONS)}")
    return replace(params, seed=params.seed if seed is None else seed, n_seeds=1, **ABLATIONS[name])


def engine_config(params: SECParams) -> TrainConfig:
    """The engine's :class:`~thesislib.engine.TrainConfig` of one SEC training run."""
    return train_config(params, batch_size=params.batch_size, iterations=params.iterations,
                        log_every=max(1, min(100, params.iterations // 50)))


def localizer_config(params: SECParams) -> CAMTrainConfig:
    """The localizer's training: BCE on the image-level labels, ``localizer_iterations`` steps of
    ``localizer_optimizer`` (Adam, or SGD with momentum 0.9) at ``localizer_lr``, weight decay 1e-4."""
    return CAMTrainConfig(iterations=params.localizer_iterations, batch_size=params.localizer_batch_size,
                          loss="bce", optimizer=params.localizer_optimizer, lr=params.localizer_lr,
                          weight_decay=1e-4, seed=params.seed, amp=params.amp, progress=params.progress,
                          num_workers=params.num_workers)


def cue_config(params: SECParams) -> CueConfig:
    """Thresholds of the weak localization (foreground CAM threshold, background fraction, saliency)."""
    return CueConfig(params.cam_tau, params.bg_fraction, params.saliency_layer, params.saliency_classes,
                     params.saliency_median)


def ablation_name(params: SECParams) -> str:
    """The :data:`ABLATIONS` name whose loss switches and pooling ``params`` has (``"custom"`` if none)."""
    for name, switches in ABLATIONS.items():
        if all(getattr(params, k) == v for k, v in switches.items()):
            return name
    return "custom"


def deviations(params: SECParams) -> list[str]:
    """How a VOC configuration departs from the thesis's protocol (empty: it follows it)."""
    out = [f"{k}={getattr(params, k)}" for k, v in PAPER_PROTOCOL.items() if getattr(params, k) != v]
    if not params.weights_path:
        out.append("random-init")
    if params.max_eval_images:
        out.append(f"max_eval_images={params.max_eval_images}")
    if not params.test_crf:
        out.append("no-test-crf")
    if params.foreground_cue_file:
        out.append(f"foreground={Path(params.foreground_cue_file).stem}")
    return out


def experiment_id(params: SECParams, name: str | None = None) -> str:
    """``voc12-val/deeplab-largefov/<name>`` for a run that follows the thesis's protocol (the ids
    of ``thesislib/replication/sec.yaml``), with ``[deviations]`` appended otherwise; smoke runs:
    ``scenes/small-fcn/<name>``. ``name`` defaults to :func:`ablation_name`."""
    name = name or ablation_name(params)
    if params.data == "scenes":
        return f"scenes/small-fcn/{name}"
    dev = deviations(params)
    split = "voc12-val" if params.eval_split == "val" else f"voc12-{params.eval_split}"
    return f"{split}/{params.network.replace('_', '-')}/{name}" + (f"[{','.join(dev)}]" if dev else "")
