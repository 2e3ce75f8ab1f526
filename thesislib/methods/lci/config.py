"""The chapter's parameters, declared once (:class:`LCIParams`), and what derives from them.

One frozen dataclass is the notebook's ``parameters`` cell, the validated ``thesislib run`` parameters
(``configs/lci/{smoke,full_stl10,full_stl10_resnet34,full_celeba,full_imagenet,full_voc07,full_voc07_det,
full_voc12_seg,full_imagenet_tiles}.yaml`` plus ``-p``), the configuration of the training run, in which three
networks alternate through the engine's multi-optimiser update, and of the transfer evaluations (``transfer``) and
Table 4.7's STL-10 fine-tune (``finetune_*``, with ``classifier: resnet34``):

* the transformation classifier C (AlexNet, BN, no LRN, no pool5; the learned features): AdamW(lr,
  β = (beta1, beta2), weight decay), learning rate cosine-annealed from ``lr`` to ``lr_end`` (thesis
  3e-4 -> 3e-7, β = (0.5, 0.99), weight decay 1e-4);
* the inpainter F and the patch discriminator D: Adam(gan_lr, β = (gan_beta1, 0.999)), fixed rate (thesis
  2e-4, β1 = 0.5).

The transformations are a subset (``transforms``) of rotation (three classes), warp and LCI; C is
(1 + 3·rot + warp + lci)-way over identity and the chosen ones (Tables 4.2-4.3's rows are configs).
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
RESNET_PROBE_LAYERS = ("layer1", "layer2", "layer3", "layer4")
"""The probe layers of ``classifier: resnet34`` (its stages; Table 4.7's C)."""
CLASSIFIERS = ("alexnet", "resnet34")
TRANSFORMS = ("rot", "warp", "lci")
"""The transformation groups: rot (T_1..T_3, 90°, 180°, 270°), warp (T_4), lci (T_5); identity T_0 always."""
PAPER = {"patch": 48, "crop": 64, "border_stl10": 2, "border_imagenet": 4, "lambda_border": 50.0, "lambda_ae": 50.0,
         "lr": 3e-4, "lr_end": 3e-7, "betas": (0.5, 0.99), "weight_decay": 1e-4, "gan_lr": 2e-4, "gan_beta1": 0.5,
         "warp_shift": 0.1}
"""The thesis's settings (§4.2-4.3; study note 004 §4.2)."""
PROBE_MODES = ("cached", "streaming")
PROBE_SCHEDULE_CHOICES = ("cosine", "official")


@dataclass(frozen=True)
class LCIParams(VocTransferParams):
    """Every parameter of the chapter (defaults: smoke scale on the scikit-learn digits; the ``full_*``
    configs: the thesis's settings). Groups: run, data, transformations, networks, losses, optimisation,
    evaluation, diagnostics; the VOC transfer protocol's fields (``voc_*``, ``transfer_*``: Table 4.4) come from
    :class:`thesislib.eval.voc_transfer.VocTransferParams`."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) for the self-supervised training; 1: in this process",
                       min=1)
    # data
    data: Literal["smoke", "stl10", "celeba", "imagenet"] = param(
        "smoke", help="smoke (scikit-learn digits upscaled) | stl10 (unlabelled + train) | celeba | imagenet")
    data_root: str = param("", help="directory holding stl10/, celeba/ or imagenet/ (empty: $THESISLIB_DATA)")
    load_size: int = param(32, help="side of the images the transformations act on ([code] 80 for 64 crops)", min=8)
    image_size: int = param(24, help="side of C's input, a random crop of the transformed image (thesis 64 "
                            "STL-10, 96 CelebA, 128 ImageNet)", min=8)
    n_unlabelled: int = param(0, help="images for self-supervised training (0: the whole split)", min=0)
    # transformations
    transforms: tuple[str, ...] = param(TRANSFORMS, help="transformation groups besides identity: rot (3 "
                                        "classes), warp, lci", choices=TRANSFORMS)
    warp_grid: int = param(2, help="control points per side of the warp's lattice (the thesis: a uniform grid, "
                           "size not stated; 2 keeps the map one-to-one at d 1/10, 4 folds ~1/3 of draws)", min=1)
    warp_shift: float = param(0.1, help="d: the largest control-point shift as a fraction of the side (thesis "
                              "1/10, [code] 1/16 with random points)", min=0.0, max=0.5)
    patch_size: int = param(16, help="side of the LCI window (thesis 48 on STL-10; Table 4.1 a-c: 32, 40, 56); "
                            "a multiple of 4", min=8)
    border: int = param(2, help="m's border width in pixels, the context F keeps (STL-10 and CelebA 2, "
                        "ImageNet 4)", min=1)
    noise_std: float = param(1.0, help="std of z, the noise filling the erased centre (thesis N(0, I), [code] 0.1)",
                             min=0.0)
    small_rotation: float = param(0.07, help="extra augmentation: largest small rotation, in units of pi ([code] "
                                  "0.07)", min=0.0, max=0.5)
    augment_fraction: float = param(0.5, help="share of every group that gets the small rotation ([code] half)",
                                    min=0.0, max=1.0)
    replace_fraction: float = param(0.5, help="share of the untransformed and pre-rotation images whose random "
                                    "patch is replaced by its autoencoded version (thesis half)", min=0.0, max=1.0)
    # networks
    classifier_width: float = param(0.0625, help="AlexNet channel multiplier of C (1: the paper's widths)",
                                    min=0.01)
    fc_dim: int = param(4096, help="C's two hidden fc layers at width 1 (scaled by classifier_width)", min=1)
    conv1_kernel: int = param(5, help="C's conv1 kernel (paper 11)", min=1)
    conv1_stride: int = param(2, help="C's conv1 stride (paper 4)", min=1)
    inpainter_width: int = param(12, help="F's base channels ([code] 48); D's too", min=1)
    # losses (Eq. 4.1 and L_inp)
    lambda_border: float = param(50.0, help="weight of F's border reconstruction term (thesis 50)", min=0.0)
    lambda_ae: float = param(50.0, help="weight of F's patch autoencoding term (thesis 50)", min=0.0)
    adversarial_c: bool = param(True, help="F maximises L_SSL, adversarial to C (False: Table 4.1 e)")
    autoencode: bool = param(True, help="patch autoencoding and the replaced untransformed images (False: Table "
                             "4.1 f)")
    frozen_inpainter: bool = param(False, help="train F and D first (no feedback from C), then C with F frozen "
                                   "(Table 4.1 d)")
    # optimisation
    iterations: int = param(160, help="training steps (each: one C, one D and one F step)", min=1)
    batch_size: int = param(8, help="images per step before the transformations (global over processes)", min=2)
    lr: float = param(2e-3, help="C's initial AdamW learning rate (thesis 3e-4)", min=0.0)
    lr_end: float = param(2e-6, help="C's learning rate at the end of the cosine annealing (thesis 3e-7)", min=0.0)
    beta1: float = param(0.5, help="C's AdamW beta1 (thesis 0.5)", min=0.0, max=1.0)
    beta2: float = param(0.99, help="C's AdamW beta2 (thesis 0.99)", min=0.0, max=1.0)
    weight_decay: float = param(1e-4, help="C's AdamW weight decay (thesis 1e-4)", min=0.0)
    gan_lr: float = param(1e-3, help="F's and D's Adam learning rate, fixed (thesis 2e-4)", min=0.0)
    gan_beta1: float = param(0.5, help="F's and D's Adam beta1 (thesis 0.5)", min=0.0, max=1.0)
    num_workers: int = param(0, help="data loader workers", min=0)
    amp: bool = param(True, help="bf16 autocast on CUDA")
    checkpoint_dir: str = param("", help="resumable checkpoints under this directory (empty: none)")
    # evaluation
    probe_layers: tuple[str, ...] = param(PROBE_LAYERS, help="conv layers of C read by the linear probes (alexnet: "
                                          "conv1..conv5; resnet34: layer1..layer4)",
                                          choices=PROBE_LAYERS + RESNET_PROBE_LAYERS)
    probe_dims: int = param(1024, help="features per probed layer after average pooling (ImageNet protocol "
                            "9216; Table 4.2 reads STL-10's maps unresized)", min=1)
    probe_per_class: int = param(3, help="labelled training images per class for the probes (smoke; ImageNet with "
                                 "probe_mode cached); STL-10 and streaming probes use all of train", min=1)
    probe_epochs: int = param(60, help="epochs of each linear probe", min=1)
    probe_weight_decay: float = param(5e-4, help="the probes' weight decay ([code] 5e-4)", min=0.0)
    probe_size: int = param(0, help="STL-10 probes: side of the probe images, read at STL-10's native 96 px (0: "
                            "image_size centre crops of load_size images, Table 4.2; 96: Table 4.1)", min=0)
    probe_views: int = param(1, help="STL-10 probes with probe_size: random crops (random resize to at most 1.15x, "
                             "crop, flip) per training image, features stacked (1: the whole image; Table 4.1 "
                             "trains on random 96x96 crops)", min=1)
    probe_mode: Literal["cached", "streaming"] = param(
        "cached", help="cached (each layer's features extracted once into memory, one fixed view per training "
        "image, smoke) | streaming (thesislib.eval.streaming_probe: one trunk forward per batch for all layers, a "
        "fresh random crop of every training image each epoch, all of ImageNet / Places train; the full configs)",
        choices=PROBE_MODES)
    probe_data: Literal["same", "places205"] = probe_data_param("Table 4.6")
    probe_schedule: Literal["cosine", "official"] = param(
        "cosine", help="streaming probes' learning rate: cosine (0.1 to 0 per step, as the cached probe) | official "
        "(the LCI code's staircase 0.1, 0.01, 0.002, 4e-4, 8e-5 after 8/40/70/90 percent of the steps, Nesterov)",
        choices=PROBE_SCHEDULE_CHOICES)
    probe_test_crops: int = param(0, help="streaming ImageNet / Places probes: 10 adds the multi-crop score (the "
                                  "dagger rows: softmax averaged over the ten standard crops); 0: single centre crop "
                                  "only", choices=(0, 10))
    probe_batch_size: int = param(0, help="the linear probes' training batch (0: eval_batch_size, the smoke "
                                  "setting); the full configs use the protocol's 64 (official LCI code "
                                  "--batch_size_ftune 64, Zhang et al.'s prototxt batch_size 64)", min=0)
    eval_batch_size: int = param(256, help="evaluation batch size", min=1)
    transfer: tuple[str, ...] = param((), help="transfer evaluations of C's conv1-5 after training (Table 4.4; "
                                      "full_voc*.yaml): voc07_cls (VOC07 classification mAP) | voc07_det (VOC07 "
                                      "detection mAP, torchvision Faster R-CNN) | voc12_seg (VOC12 mIoU, FCN head); "
                                      "fc6 / fc7 of the new heads are fc_dim wide", choices=VOC_TASKS)
    # local-vs-global diagnostics
    diagnostics: bool = param(True, help="run the local-vs-global and rotation-shortcut diagnostics")
    diag_width: int = param(8, help="channels of the diagnostic networks (local and global)", min=1)
    local_rf: int = param(5, help="receptive field of the bag-of-local-patches net in pixels (odd; at most 7)",
                          min=3, max=7)
    diag_iterations: int = param(60, help="Adam steps of each diagnostic network", min=1)
    diag_train: int = param(320, help="training images of each diagnostic task", min=8)
    diag_test: int = param(256, help="held-out images of each diagnostic task", min=8)
    face_size: int = param(32, help="side of the procedural face images (rotation-shortcut diagnostic)", min=16)
    # Table 4.7: ResNet-34 C, then fine-tuned on STL-10's labelled images
    classifier: Literal["alexnet", "resnet34"] = param(
        "alexnet", help="C's architecture: alexnet (the ch. 4 AlexNet) | resnet34 (torchvision's ResNet-34 with a "
        "3x3 stride-1 stem and no max-pool, IIC's STL-10 setting; Table 4.7)", choices=CLASSIFIERS)
    finetune_epochs: int = param(0, help="STL-10 only: epochs fine-tuning the whole C with a new 10-way head on "
                                 "the 5,000 labelled train images, then the 8,000 test images with multi-crop "
                                 "averaging (Table 4.7: 300; 0: none)", min=0)
    finetune_lr: float = param(1e-4, help="the fine-tune's Adam learning rate (cosine-decayed; not in the thesis)",
                               min=0.0)
    finetune_weight_decay: float = param(5e-4, help="the fine-tune's Adam weight decay (not in the thesis)", min=0.0)
    finetune_batch_size: int = param(64, help="the fine-tune's batch size", min=1)
    finetune_test_crops: int = param(10, help="random image_size crops per test image whose softmax is averaged "
                                     "(the multi-crop test 'similar to IIC')", min=1)
    # Fig. 4.1: natural vs tile-shuffled + band-inpainted images, linear probe on conv5 (thesislib.methods.lci.tiles)
    tiles_test: bool = param(True, help="Fig. 4.1's test: a linear probe on frozen conv5 (layer4 for resnet34) "
                             "tells natural from tile-shuffled + band-inpainted held-out images, for the self-"
                             "supervised C, a supervised C and a random C (runs only on single-label data, not "
                             "celeba)")
    tiles_grid: int = param(4, help="tiles per side of the shuffled grid (thesis 4)", min=2)
    tiles_band: int = param(2, help="width in pixels of the band across every tile border that the band "
                            "inpainter fills (not stated in the thesis)", min=1)
    tiles_inpainter_iterations: int = param(160, help="steps of the band inpainter F_b (the chapter's F and D "
                                            "architectures trained adversarially on the band task alone, once per "
                                            "run; not in the thesis)", min=1)
    tiles_images: int = param(256, help="held-out probe images of the test, split in halves for the binary probe's "
                              "training and test; each image enters natural and transformed", min=4)
    tiles_supervised_epochs: int = param(4, help="epochs of the supervised C on the labelled training images (the "
                                         "thesis's ImageNet-supervised AlexNet: ~90)", min=1)
    tiles_supervised_batch_size: int = param(32, help="batch size of the supervised C", min=1)
    tiles_supervised_lr: float = param(2e-3, help="Adam learning rate (cosine-decayed) of the supervised C (not in "
                                       "the thesis)", min=0.0)
    tiles_supervised_weight_decay: float = param(5e-4, help="Adam weight decay of the supervised C (not in the "
                                                 "thesis)", min=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size > self.load_size:
            raise ConfigError(f"LCIParams: image_size {self.image_size} exceeds load_size {self.load_size} "
                              "(C's input is a crop of the transformed image)")
        if self.patch_size % 4:
            raise ConfigError(f"LCIParams: patch_size {self.patch_size} must be a multiple of 4 (F halves it twice)")
        if self.patch_size > self.load_size:
            raise ConfigError(f"LCIParams: patch_size {self.patch_size} exceeds load_size {self.load_size}")
        if 2 * self.border >= self.patch_size:
            raise ConfigError(f"LCIParams: border {self.border} leaves no centre in a {self.patch_size}-pixel patch")
        if self.lr_end > self.lr:
            raise ConfigError("LCIParams: lr_end must not exceed lr")
        if not self.transforms:
            raise ConfigError("LCIParams: transforms names no transformation (C would have one class)")
        if len(set(self.transforms)) != len(self.transforms):
            raise ConfigError(f"LCIParams: transforms {self.transforms} repeats a name")
        if not self.probe_layers:
            raise ConfigError("LCIParams: probe_layers names no layer")
        valid = RESNET_PROBE_LAYERS if self.classifier == "resnet34" else PROBE_LAYERS
        wrong = [layer for layer in self.probe_layers if layer not in valid]
        if wrong:
            raise ConfigError(f"LCIParams: probe_layers {wrong} do not exist in classifier={self.classifier!r}; "
                              f"its layers are {', '.join(valid)}")
        if self.classifier != "alexnet" and self.transfer:
            raise ConfigError(f"LCIParams: transfer {list(self.transfer)} transfers AlexNet's conv1-5 (Table 4.4); "
                              f"classifier={self.classifier!r} has none")
        if self.finetune_epochs and self.data != "stl10":
            raise ConfigError(f"LCIParams: finetune_epochs is the STL-10 fine-tune (Table 4.7), not "
                              f"data={self.data!r}")
        if self.probe_views > 1 and self.data != "stl10":
            raise ConfigError(f"LCIParams: probe_views is the cached STL-10 probes' protocol (Table 4.1), "
                              f"not data={self.data!r}")
        if self.probe_size and not (self.data == "stl10" or (self.data == "imagenet" and self.streaming_probe)):
            raise ConfigError(f"LCIParams: probe_size is the STL-10 probes' protocol (Table 4.1) or the streaming "
                              f"ImageNet / Places probes' crop side (224: Tables 4.5-4.6), not data={self.data!r} "
                              f"with probe_mode={self.probe_mode!r}")
        if self.probe_views > 1 and self.streaming_probe:
            raise ConfigError("LCIParams: probe_views > 1 is the cached probe's fixed pool of random views; "
                              "probe_mode streaming draws a fresh random crop every epoch (set probe_views 1)")
        check_probe_data("LCIParams", self.data, self.probe_data, self.streaming_probe)
        if self.probe_test_crops and not (self.data == "imagenet" and self.streaming_probe):
            raise ConfigError(f"LCIParams: probe_test_crops is the multi-crop test of the streaming ImageNet / Places "
                              f"probes (Tables 4.5-4.6's dagger rows), not data={self.data!r}, "
                              f"probe_mode={self.probe_mode!r}")
        if self.probe_views > 1 and not self.probe_size:
            raise ConfigError("LCIParams: probe_views > 1 needs probe_size (the random crops' side)")
        if self.transfer and self.in_channels != 3:
            raise ConfigError(f"LCIParams: transfer {list(self.transfer)} needs an RGB C (data stl10, celeba or "
                              f"imagenet), not data={self.data!r}")

        if self.runs_tiles_test:
            self._check_tiles()

    def _check_tiles(self) -> None:
        """Fig. 4.1's test needs C's input side a multiple of the grid (and of 4, F's) and a band narrower than a
        tile."""
        if self.image_size % self.tiles_grid or self.image_size % 4:
            raise ConfigError(f"LCIParams: tiles_test needs image_size {self.image_size} to be a multiple of "
                              f"tiles_grid {self.tiles_grid} and of 4 (F halves it twice)")
        if self.tiles_band >= self.image_size // self.tiles_grid:
            raise ConfigError(f"LCIParams: tiles_band {self.tiles_band} leaves no interior in a "
                              f"{self.image_size // self.tiles_grid}-pixel tile")

    @property
    def runs_tiles_test(self) -> bool:
        """Whether Fig. 4.1's test runs: ``tiles_test`` on and class labels for the supervised C (not CelebA's
        attributes); the bands are filled by the run's own band inpainter, so C need not be trained with LCI."""
        return self.tiles_test and self.data != "celeba"

    @property
    def streaming_probe(self) -> bool:
        """Whether the probes stream their features (``probe_mode: streaming``)."""
        return self.probe_mode == "streaming"

    @property
    def in_channels(self) -> int:
        return 1 if self.data == "smoke" else 3

    @property
    def uses_inpainter(self) -> bool:
        """Whether F and D take part (LCI among the transformations)."""
        return "lci" in self.transforms


def class_names(transforms: tuple[str, ...]) -> tuple[str, ...]:
    """C's classes in label order: identity, then the chosen groups in the order rot, warp, lci
    (rot contributes rot90, rot180, rot270). ``("rot", "warp", "lci")`` -> 6 classes (Eq. 4.1's T_0..T_5)."""
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ConfigError(f"unknown transformation(s) {unknown}; choose from {TRANSFORMS}")
    names = ["identity"]
    if "rot" in transforms:
        names += ["rot90", "rot180", "rot270"]
    if "warp" in transforms:
        names.append("warp")
    if "lci" in transforms:
        names.append("lci")
    return tuple(names)


def engine_config(params: LCIParams, stage: str = "ssl") -> TrainConfig:
    """The engine's :class:`~thesislib.engine.TrainConfig` of one stage (``ssl``; with ``frozen_inpainter``
    also ``inp``, the F/D pre-training)."""
    checkpoint = f"{params.checkpoint_dir}/{stage}" if params.checkpoint_dir else None
    return train_config(params, batch_size=params.batch_size, iterations=params.iterations,
                        checkpoint_dir=checkpoint, log_every=max(1, params.iterations // 20), channels_last=False)


def lci_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> LCIParams:
    """:class:`LCIParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(LCIParams, mapping, **overrides)


def replicate(params: LCIParams, seed: int) -> LCIParams:
    """The parameters of one replicate (seed filled in, one seed)."""
    return replace(params, seed=seed, n_seeds=1)
