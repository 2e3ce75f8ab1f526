"""PIC's parameters, declared once (:class:`PICParams`), and the configs derived from them.

:class:`PICParams` is the notebook's ``parameters`` cell, the validated ``thesislib run`` parameters
(``configs/pic/{smoke,full,full_imagenet}.yaml`` plus ``-p``) and the configuration of one training
run. One replicate is :func:`config_for` ``(params, seed)``. The two networks of the chapter are
built from it: the embedding g^w (Table 5.1, :func:`embedding_stages`) and the conditional
PixelCNN f^θ over the chroma channels (4 blocks of 160 filters, no down/up-sampling, thesis §5.3.2).

Decisions recorded here (the thesis is silent or the released code differs):

* **DMOL outputs.** The two-channel discretized mixture of logistics with ``n_mix`` = 10 components
  has 10 x (1 + 2·2 + 1) = **60** outputs per pixel here (mixture logits, two means, two log-scales,
  one coupling coefficient b|a per component: :func:`thesislib.nn.pixelcnn.dmol_params_count`), the
  minimal parameterisation of the thesis's "mixture of 10 logistics ... less than 100 output values
  per pixel". The released code emits 8 x 10 = 80 values (it reuses PixelCNN++'s RGB layout); the
  distribution family is the same, the 20 extra values carry nothing a 2-channel mixture needs. We
  keep 60 and say so on the page.
* **g^w-only baseline.** The thesis fine-tunes g^w alone after discarding f^θ (§5.4.3); the released
  code trains the embedding's first DMOL-sized channels with the same loss during PIC training
  (``gw_aux_weight`` = 1), which gives the baseline for free. ``baseline="aux"`` (the code)
  reads g^w-only from that head of the trained PIC (:func:`thesislib.methods.pic.model.gw_head`);
  ``baseline="separate"`` (default; at smoke scale the joint term did not help PIC learn the disks:
  with it, 300 steps left 74-90 % of PIC's disk pixels green, ``results/pic/diagnosis/``) trains the
  same embedding stages with a DMOL head in its own engine run
  (:func:`thesislib.methods.pic.train.train_gw_only`).
* **Polyak averaging** is the engine's EMA (``ema_decay``; 0.999 in the code's README; 0 = off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, replace
from thesislib.engine import TrainConfig, train_config
from thesislib.nn.pixelcnn import EmbeddingStage, dmol_params_count
from thesislib.params import RunParams, param

DATASETS = ("ambiguity", "photos", "cifar10", "imagenet128")


@dataclass(frozen=True)
class PICParams(RunParams):
    """Every parameter of the PIC chapter (defaults: smoke scale on the ambiguity images;
    ``configs/pic/full.yaml``: CIFAR-10, ``full_imagenet.yaml``: ILSVRC 2012 at 128²)."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); paired verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) per training run; 1: in this process", min=1)
    # data
    data: Literal["ambiguity", "photos", "cifar10", "imagenet128"] = param(
        "ambiguity", help="ambiguity (procedural, note 4.6a) | photos (crops of the bundled photos, note 4.6a "
        "option B; illustrative) | cifar10 | imagenet128 (ILSVRC 2012 folders)")
    data_root: str = param("", help="directory holding cifar10/ or imagenet/ (empty: $THESISLIB_DATA)")
    image_size: int = param(16, help="image side (CIFAR 32, ImageNet 128)", min=8)
    chroma_factor: int = param(2, help="ab is modelled at image_size / chroma_factor (CIFAR 2, ImageNet 4)",
                               choices=(1, 2, 4))
    n_train: int = param(512, help="ambiguity, photos: training images; real data: 0 for all, else the first n",
                         min=0)
    n_test: int = param(64, help="ambiguity, photos: test images; real data: 0 for all, else the first n", min=0)
    n_disks: int = param(2, help="ambiguity: blue-or-yellow disks per image", min=1)
    n_squares: int = param(1, help="ambiguity: red squares per image", min=0)
    flip: bool = param(False, help="random horizontal flip of training images (released code: on)")
    # networks
    gw_widths: tuple[int, ...] = param((16, 32), help="g^w: width of each stage (Table 5.1)")
    gw_blocks: tuple[int, ...] = param((1, 1), help="g^w: gated residual blocks of each stage")
    gw_strides: tuple[int, ...] = param((1, 2),
                                        help="g^w: stride of each stage's first conv (their product is chroma_factor)")
    gw_dilations: tuple[int, ...] = param((1, 1), help="g^w: dilation of each stage's blocks")
    gw_out: int = param(32, help="g^w: output channels (CIFAR 256, ImageNet 512; the code's ImageNet 160)", min=1)
    nr_resnet: int = param(1, help="f^θ: gated residual blocks per pass (thesis: 4)", min=1)
    nr_filters: int = param(24, help="f^θ: channels of both streams (thesis: 160)", min=1)
    n_mix: int = param(4, help="logistic components of the chroma DMOL (thesis: 10)", min=1)
    dropout: float = param(0.0, help="dropout in the gated blocks (released code: 0.5)", min=0.0, max=1.0)
    gw_aux_weight: float = param(0.0, help="weight of the code's g^w DMOL term inside PIC training (code: 1)",
                                 min=0.0)
    baseline: Literal["aux", "separate"] = param(
        "separate", help="g^w-only: aux (PIC's g^w head, the code) | separate (own run, thesis 5.4.3)")
    # optimisation (Adam, thesis 5.3.2)
    iterations: int = param(200, help="training steps of each network (PIC; g^w-only)", min=1)
    batch_size: int = param(24, help="batch size (global over torchrun processes; thesis 64)", min=1)
    lr: float = param(3e-3, help="Adam learning rate (thesis 0.001)", min=0.0)
    beta1: float = param(0.95, help="Adam beta1 (thesis 0.95)", min=0.0, max=1.0)
    beta2: float = param(0.9995, help="Adam beta2 (thesis 0.9995)", min=0.0, max=1.0)
    lr_decay: float = param(0.999, help="lr times lr_decay after every iteration (CIFAR 0.99995)", min=0.0, max=1.0)
    ema_decay: float = param(0.0, help="Polyak averaging decay (code 0.999); 0: off", min=0.0, max=0.99999999)
    grad_clip: float = param(0.0, help="gradient-norm clip; 0: off", min=0.0)
    # sampling and evaluation
    n_sample_images: int = param(16, help="test images colourised in the sampling evaluation", min=1)
    n_repeats: int = param(8, help="samples drawn per gray input (diversity over repeated samples)", min=1)
    n_saturation: int = param(0, help="images for the saturation comparison; 0: the sampled ones (thesis: 1000)",
                              min=0)
    eval_batch_size: int = param(256, help="evaluation batch size", min=1)
    speed_batch: int = param(2, help="sampling-speed table: batch of the naive-vs-cached comparison", min=1)
    amp: bool = param(False, help="bf16 autocast on CUDA for training (off: the DMOL wants float32)")
    num_workers: int = param(0, help="data loader workers", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        n = len(self.gw_widths)
        if n == 0 or any(len(t) != n for t in (self.gw_blocks, self.gw_strides, self.gw_dilations)):
            raise ConfigError("PICParams: gw_widths, gw_blocks, gw_strides and gw_dilations need the same, "
                              f"non-zero length, got {self.gw_widths}, {self.gw_blocks}, {self.gw_strides}, "
                              f"{self.gw_dilations}")
        stride = 1
        for s in self.gw_strides:
            stride *= s
        if stride != self.chroma_factor:
            raise ConfigError(f"PICParams: g^w must output the chroma resolution: the product of gw_strides "
                              f"{self.gw_strides} is {stride}, chroma_factor is {self.chroma_factor}")
        if self.image_size % self.chroma_factor:
            raise ConfigError(f"PICParams: image_size {self.image_size} is not divisible by chroma_factor "
                              f"{self.chroma_factor}")
        if self.baseline == "aux" and self.gw_aux_weight <= 0:
            raise ConfigError("PICParams: baseline='aux' reads g^w-only from PIC's auxiliary head, which "
                              "gw_aux_weight > 0 trains; set gw_aux_weight or baseline='separate'")
        if self.gw_aux_weight > 0 and self.gw_out < self.dmol_outputs:
            raise ConfigError(f"PICParams: gw_aux_weight > 0 reads the DMOL from g^w's first {self.dmol_outputs} "
                              f"channels, but gw_out is {self.gw_out}")
        if self.data == "cifar10" and self.image_size != 32:
            raise ConfigError("PICParams: CIFAR-10 images are 32x32 (image_size 32)")

    # derived values -----------------------------------------------------------------------
    @property
    def dmol_outputs(self) -> int:
        """Outputs per pixel of the two-channel chroma DMOL: ``n_mix * 6`` (60 for 10 components)."""
        return dmol_params_count(2, self.n_mix)

    @property
    def chroma_size(self) -> int:
        """Side of the modelled ab map: ``image_size / chroma_factor`` (16 for CIFAR, 32 for ImageNet)."""
        return self.image_size // self.chroma_factor

    def embedding_stages(self) -> list[EmbeddingStage]:
        """The stages of g^w (Table 5.1 in the full configs)."""
        return [EmbeddingStage(w, b, stride=s, dilation=d) for w, b, s, d in
                zip(self.gw_widths, self.gw_blocks, self.gw_strides, self.gw_dilations, strict=True)]


def pic_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> PICParams:
    """:class:`PICParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(PICParams, mapping, **overrides)


def config_for(params: PICParams, seed: int | None = None) -> PICParams:
    """The parameters of one replicate (``seed``, default ``params.seed``)."""
    return replace(params, seed=params.seed if seed is None else seed, n_seeds=1)


def engine_config(params: PICParams) -> TrainConfig:
    """The engine's :class:`~thesislib.engine.TrainConfig` of one training run (PIC or g^w-only)."""
    return train_config(params, batch_size=params.batch_size, iterations=params.iterations,
                        log_every=max(1, min(100, params.iterations // 25)),
                        ema_decay=params.ema_decay or None, grad_clip=params.grad_clip or None,
                        channels_last=False)


def experiment_id(params: PICParams, model: str = "pic") -> str:
    """``cifar10/pic`` or ``imagenet128/pic`` (and ``/gw-only``) for the thesis's protocol, the ids of
    ``thesislib/replication/pic.yaml``; smoke runs ``ambiguity<S>/...`` and ``photos<S>/...`` never
    collide with them."""
    if params.data in ("ambiguity", "photos"):
        return f"{params.data}{params.image_size}/{model}"
    return f"{params.data}/{model}"
