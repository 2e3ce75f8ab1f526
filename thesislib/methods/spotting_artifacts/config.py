"""The chapter's parameters, declared once (:class:`SpottingArtifactsParams`), and what derives from them.

One frozen dataclass is the notebook's ``parameters`` cell, the validated ``thesislib run`` parameters
(``configs/spotting_artifacts/{smoke,full_stl10,full_stl10_ablations,full,full_places,full_voc07,full_voc07_det,
full_voc12_seg}.yaml`` plus ``-p``), the configuration of both training stages and of the transfer evaluations
(``transfer``):

1. the autoencoder {E, D}, ``ae_iterations`` Adam steps on L_auto (Eq. 3.3);
2. damage & repair: the repair network R and the discriminator C alternate (``iterations`` steps),
   E and D frozen.

Both use Adam(lr, β1 = 0.5) with the learning rate decayed linearly from ``lr`` to ``lr_end``
(thesis: 3e-4 -> 3e-6) and L2 weight decay ``weight_decay`` ([code]: 5e-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, replace
from thesislib.engine import TrainConfig, train_config
from thesislib.eval.streaming_probe import check_probe_data, probe_data_param
from thesislib.eval.voc_transfer import VOC_TASKS, VocTransferParams
from thesislib.params import param

PROBE_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
TRANSFER_TASKS = (*VOC_TASKS, "stl10_folds", "stl10_frozen")
"""The transfer evaluations of C's conv layers a run can add (Tables 3.1-3.3; none at smoke scale)."""
STL10_TASKS = ("stl10_folds", "stl10_frozen")
"""The STL-10 transfer protocols: Table 3.2's ten folds, Table 3.1's frozen-conv transfer on all 5,000 labelled
images."""
FOLD_VARIANTS = ("frozen", "finetuned")
"""Table 3.2's two rows: a linear classifier on frozen conv1-5, and conv1-5 fine-tuned."""
PAPER = {"encoder": (32, 64, 128, 256, 512), "image_size": 128, "drop_rate": 0.7, "lr": 3e-4, "lr_end": 3e-6,
         "beta1": 0.5, "ae_epochs": 80, "epochs": 150}
"""The thesis's ImageNet settings (§3.3-3.4; study note 004 §3.2)."""


@dataclass(frozen=True)
class SpottingArtifactsParams(VocTransferParams):
    """Every parameter of the chapter (defaults: smoke scale on the scikit-learn digits; the
    ``full_*`` configs: the thesis's settings). Groups: run, data, networks, method, optimisation,
    evaluation; the VOC transfer protocol's fields come from :class:`thesislib.eval.voc_transfer.VocTransferParams`."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) for the two training stages; 1: in this process",
                       min=1)
    # data
    data: Literal["smoke", "shapes", "stl10", "imagenet"] = param(
        "smoke", help="smoke (scikit-learn digits upscaled) | shapes (grey procedural one-shape scenes) | "
                      "stl10 (unlabelled + train) | imagenet")
    data_root: str = param("", help="directory holding stl10/ or imagenet/ (empty: $THESISLIB_DATA)")
    image_size: int = param(16, help="side of the training crops (STL-10: 96, ImageNet: 128)", min=8)
    n_unlabelled: int = param(0, help="images for self-supervised training (0: the whole split)", min=0)
    # networks
    encoder_channels: tuple[int, ...] = param((16, 32, 64), help="E: (c0)3c1 then (c_i)2c2 layers; "
                                              "thesis (32, 64, 128, 256, 512)")
    encoder_kernel: int = param(2, help="kernel of E's stride-2 layers (2; 3 is ablation d)", min=2, max=3)
    disc_width: float = param(0.0625, help="AlexNet channel multiplier of C (1: the paper's widths)", min=0.01)
    disc_hidden: int = param(64, help="width of C's fc layer before the real/corrupt logit (paper 4096)", min=1)
    conv1_kernel: int = param(3, help="C's conv1 kernel (paper 11)", min=1)
    conv1_stride: int = param(1, help="C's conv1 stride (paper 4)", min=1)
    # method
    drop_rate: float = param(0.7, help="θ: probability that a latent position is dropped", min=0.0, max=1.0)
    repair: Literal["distributed", "local", "none"] = param(
        "distributed", help="repair blocks before every decoder layer | on the latent code only | none")
    gated: bool = param(True, help="repair output gated by the drop mask (False: ablation e)")
    history: bool = param(True, help="replace half of the corrupted examples by past ones (False: ablation f)")
    history_size: int = param(512, help="corrupted images kept in the history buffer", min=1)
    real_source: Literal["autoencoded", "input"] = param(
        "autoencoded", help="real images shown to C: D(E(x)) | x itself (ablation a)")
    mask_head: bool = param(True, help="C predicts the drop mask (False: ablation b)")
    mask_weight: float = param(0.1, help="weight of the mask loss ([code])", min=0.0)
    repair_mse_weight: float = param(30.0, help="weight of R's masked reconstruction loss ([code])", min=0.0)
    ae_mse_weight: float = param(30.0, help="weight of the autoencoder's MSE ([code])", min=0.0)
    # optimisation
    ae_iterations: int = param(150, help="Adam steps of the autoencoder", min=1)
    iterations: int = param(150, help="Adam steps of damage & repair (each: one C step, one R step)", min=1)
    batch_size: int = param(32, help="images per step (global over torchrun processes)", min=2)
    lr: float = param(2e-3, help="initial Adam learning rate, both stages (thesis 3e-4)", min=0.0)
    lr_end: float = param(2e-5, help="end of the linear decay, reached after the last step (step s of T, from 0, "
                          "uses lr + (lr_end - lr) s / T) (thesis 3e-6)", min=0.0)
    beta1: float = param(0.5, help="Adam β1", min=0.0, max=1.0)
    weight_decay: float = param(5e-5, help="L2 weight decay of every network ([code])", min=0.0)
    num_workers: int = param(0, help="data loader workers", min=0)
    amp: bool = param(True, help="bf16 autocast on CUDA")
    checkpoint_dir: str = param("", help="resumable checkpoints under this directory (empty: none)")
    # evaluation
    probe_layers: tuple[str, ...] = param(PROBE_LAYERS, help="conv layers of C read by the linear probes",
                                          choices=PROBE_LAYERS)
    probe_dims: int = param(1024, help="features per probed layer after pooling (protocol: 9216)", min=1)
    probe_per_class: int = param(3, help="labelled training images per class for the probes, smoke and cached "
                                 "ImageNet probes (all 1.28M would need ~49 GB of conv1 features; probe_mode "
                                 "streaming uses all); STL-10 uses all 5,000. With 20, a random C's probes already "
                                 "reach ~90% on the digits", min=1)
    probe_epochs: int = param(60, help="epochs of each linear probe", min=1)
    probe_weight_decay: float = param(5e-4, help="the probes' weight decay ([code] 5e-4)", min=0.0)
    probe_mode: Literal["cached", "streaming"] = param(
        "cached", help="cached (each layer's features extracted once into memory; smoke, and ImageNet on "
        "probe_per_class images per class: a reduced probe) | streaming (thesislib.eval.streaming_probe: one trunk "
        "forward per batch for all layers, a fresh random crop each epoch, all of ImageNet train; Table 3.4)",
        choices=("cached", "streaming"))
    probe_data: Literal["same", "places205"] = probe_data_param("Table 3.5")
    probe_size: int = param(0, help="streaming ImageNet probes: side of the probe crops (224: Table 3.4's "
                            "protocol; 0: image_size)", min=0)
    probe_schedule: Literal["cosine", "official"] = param(
        "cosine", help="streaming probes' learning rate: cosine (0.1 to 0 per step, as the cached probe) | official "
        "(the LCI code's staircase 0.1, 0.01, 0.002, 4e-4, 8e-5 after 8/40/70/90 percent of the steps, Nesterov)",
        choices=("cosine", "official"))
    probe_batch_size: int = param(0, help="the linear probes' training batch (0: eval_batch_size, the smoke "
                                  "setting); the full configs use the protocol's 64 (official LCI code "
                                  "--batch_size_ftune 64, Zhang et al.'s prototxt batch_size 64)", min=0)
    eval_batch_size: int = param(256, help="evaluation batch size", min=1)
    figure_drop_rates: tuple[float, ...] = param((0.1, 0.3, 0.5, 0.7, 0.9),
                                                 help="drop rates rendered in the Fig. 3.6 figure")
    # transfer (full scale: Tables 3.1-3.3; see configs/spotting_artifacts/full_voc07.yaml, full_stl10.yaml,
    # full_stl10_ablations.yaml)
    transfer: tuple[str, ...] = param((), help="transfer evaluations of C's conv layers after training: voc07_cls "
                                      "(VOC07 classification mAP) | voc07_det (VOC07 detection mAP, torchvision "
                                      "Faster R-CNN) | voc12_seg (VOC12 mIoU, FCN head) | stl10_folds (Table 3.2) | "
                                      "stl10_frozen (Table 3.1: conv1-5 kept fixed, new fc6 / fc7 / classifier "
                                      "trained on all 5,000 labelled images)", choices=TRANSFER_TASKS)
    # (the VOC protocol's fields, voc_* and transfer_*: thesislib.eval.voc_transfer.VocTransferParams)
    fold_variants: tuple[str, ...] = param(FOLD_VARIANTS, help="Table 3.2 rows run on the STL-10 folds",
                                           choices=FOLD_VARIANTS)
    fold_epochs: int = param(200, help="supervised epochs per STL-10 fold and of Table 3.1's stl10_frozen transfer "
                             "(thesis 200)", min=1)
    fold_batch_size: int = param(128, help="batch of the STL-10 supervised training (folds, stl10_frozen)", min=1)
    fold_lr: float = param(1e-3, help="Adam learning rate (cosine-decayed) of the STL-10 supervised training "
                           "(folds, stl10_frozen)", min=0.0)
    fold_limit: int = param(0, help="run only the first this many folds (0: all ten)", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        n_down = len(self.encoder_channels) - 1
        if n_down < 1:
            raise ConfigError("SpottingArtifactsParams: encoder_channels needs at least two entries")
        if self.image_size % (2 ** n_down):
            raise ConfigError(f"SpottingArtifactsParams: image_size {self.image_size} must be divisible by "
                              f"2^{n_down} (one halving per stride-2 encoder layer)")
        if self.lr_end > self.lr:
            raise ConfigError("SpottingArtifactsParams: lr_end must not exceed lr")
        if not self.probe_layers:
            raise ConfigError("SpottingArtifactsParams: probe_layers names no layer")
        if self.transfer and self.in_channels != 3:
            raise ConfigError(f"SpottingArtifactsParams: transfer {list(self.transfer)} needs an RGB C (data stl10 or "
                              f"imagenet), not data={self.data!r}")
        if self.probe_size and not (self.data == "imagenet" and self.probe_mode == "streaming"):
            raise ConfigError(f"SpottingArtifactsParams: probe_size is the streaming ImageNet probes' crop side "
                              f"(Table 3.4), not data={self.data!r} with probe_mode={self.probe_mode!r}")
        for task in STL10_TASKS:
            if task in self.transfer and self.data != "stl10":
                raise ConfigError(f"SpottingArtifactsParams: transfer {task} is Table "
                                  f"{'3.2' if task == 'stl10_folds' else '3.1'}'s protocol for C trained on STL-10 "
                                  f"(data: stl10), not data={self.data!r}")
        check_probe_data("SpottingArtifactsParams", self.data, self.probe_data, self.probe_mode == "streaming")

    @property
    def grid(self) -> int:
        """M = N: the latent grid side (image_size / 2^(number of stride-2 layers))."""
        return self.image_size // 2 ** (len(self.encoder_channels) - 1)

    @property
    def in_channels(self) -> int:
        return 1 if self.data in ("shapes", "smoke") else 3


def engine_config(params: SpottingArtifactsParams, stage: Literal["ae", "dr"]) -> TrainConfig:
    """The engine's :class:`~thesislib.engine.TrainConfig` of one stage (``ae`` or ``dr``)."""
    steps = params.ae_iterations if stage == "ae" else params.iterations
    checkpoint = f"{params.checkpoint_dir}/{stage}" if params.checkpoint_dir else None
    return train_config(params, batch_size=params.batch_size, iterations=steps, checkpoint_dir=checkpoint,
                        log_every=max(1, steps // 20), channels_last=False)


def spotting_artifacts_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> SpottingArtifactsParams:
    """:class:`SpottingArtifactsParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(SpottingArtifactsParams, mapping, **overrides)


def replicate(params: SpottingArtifactsParams, seed: int) -> SpottingArtifactsParams:
    """The parameters of one replicate (seed filled in, one seed)."""
    return replace(params, seed=seed, n_seeds=1)
