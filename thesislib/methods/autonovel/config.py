"""AutoNovel's parameters, declared once (:class:`AutoNovelParams`), and the configs derived from them.

One replicate is :func:`config_for` ``(params, seed)``; one ablation of it is :func:`variant_config`
``(params, name)`` with the switches of :data:`VARIANTS` (thesis ch. 6, Table 1, Fig. 4). Defaults
are the smoke scale (scikit-learn digits, labelled 0-4 / unlabelled 5-9, the staged MLP);
``configs/autonovel/full*.yaml`` hold the thesis's protocol (App. B), ``full_imagenet.yaml`` Table 3's ImageNet column.

Decisions recorded here (the thesis is silent or the released code differs):

* **Labelled / unlabelled in one batch.** As the released CIFAR / SVHN code (``unlabelled_batch_size = 0``):
  one shuffled set of labelled and unlabelled training images; per batch the CE reads the labelled ones, the
  BCE the pairs of unlabelled ones (all M_b² ordered pairs, i = j included), the MSE every image. Masks are
  weights, not boolean indexing, so a step has no device sync. The released OmniGlot / ImageNet code instead
  draws two streams (``TwoStreamBatchSampler``): ``unlabelled_batch_size`` = b > 0 gives every batch B - b
  labelled images from one pass over them (an epoch) and exactly b unlabelled ones from an endless reshuffle
  of the unlabelled set (:func:`thesislib.engine.cycling_rows`, a function of the step: exact resume).
* **Ranking statistics** on the *detached* feature of the clean view; the pair probability multiplies
  the clean view's head-2 softmax with the augmented view's (the code).
* **Ramp-up clock** is the epoch; the I.L. term ramps to ``increment_coefficient`` (0.05) with it.
* **Without self-supervision** (``selfsup = False``): the network starts random and the supervised
  step trains every stage (nothing has been pre-trained that freezing would keep); the joint step
  then freezes the same stages as the full method.
* **OmniGlot** (Table 3; released ``auto_novel_omniglot.py`` and DTC's ``omniglot_proto.py``): no
  self-supervision; ``pretrain = metric`` trains the VGG-6 trunk on all 964 background characters with the
  prototypical loss (Snell et al. 2017, as DTC: episodes of 20 characters x (5 support + 5 query) images, Adam
  lr 0.001; DTC trains it on ``images_background_train``, 795 of them, keeping 169 for validation: no
  validation split is used here, so all 964 are trained on); then, for each of the 20 evaluation alphabets in
  turn (``alphabet``), the joint step directly from those weights (no supervised step: head 1 over the 964
  characters is learnt there) with the first three of the four conv stages frozen, Adam lr 0.01, λ = 100 over
  T = 1 epoch, 100 epochs, batches of 68 labelled + 32 unlabelled images (an epoch = one pass over the
  labelled ones, as the code); the ACC of each alphabet's characters, and their mean. Images 32x32, strokes 1,
  standardised with mean 0.086 and sd 0.235 (the code); views a random crop padded by 2 (the code:
  RandomResizedCrop(32, (0.85, 1))).
* **ImageNet** (Table 3; released ``auto_novel_imagenet.py``, ``data/imagenetloader.py``): the thesis pre-trains
  ImageNet's Φ "by metric learning on the labelled classes ... instead of the self-supervised learning" (following
  DTC), and the released code (like DTC's ``imagenet_DTC.py``) starts the joint step from Hsu et al.'s ImageNet-882
  *classifier* ``resnet18_imagenet_classif_882_ICLR18.pth``, whose training recipe is not published. Decision:
  ``pretrain = supervised`` — no step 1, the supervised step from scratch on the 882 classes with every stage trained,
  once for the three subsets, as DTC's released ImageNet classifier ``imagenet_classif.py`` really trains (that script
  trains DTC's 800-class model for class-number estimation; its settings are the only released recipe for such a
  classifier): 90 epochs, SGD lr 0.1 x0.1 every 30, momentum 0.9, wd 1e-4, batch 256 (its loader's; its
  ``--batch_size 128`` is unused) = ``sup_batch_size``, RandomResizedCrop(224) at torchvision's default area
  0.08-1 + flip (``sup_crop_scale``; the joint step keeps AutoNovel's 0.5-1). The thesis's App. B supervised
  schedule (100 epochs, halved every 10) fine-tunes RotNet weights; its "batch size of 128" is used by no ImageNet
  step (the joint step uses the code's 384 + 128). The supervised step's features are Table 3's k-means baseline.
  The joint step per subset
  (``subset``: A, B, C in turn, the mean is Table 3's number) as App. B (90 epochs, lr 0.1 x0.1 at 30 and 60, λ = 10
  over T = 50, k = 5), stages 1-3 frozen, and the code's two-stream batches, 384 labelled + 128 unlabelled (the
  thesis's "batch size of 128" and merged shuffle would put ~4 unlabelled images in a batch). Images are streamed from
  disk by DataLoader workers (:class:`~thesislib.methods.autonovel.data.NovelImageNet`): two RandomResizedCrop(224,
  scale 0.5-1) + flip views; scored on the subset's *train* images resized to 256 and centre-cropped to 224 (the
  code's ``ImageNetLoader30(subfolder='train')``; the thesis's "unlabelled training data").
* **Smoke augmentation**: Gaussian pixel noise on 8x8 digits (study note §5.6(a)); CIFAR/SVHN use the
  pad-4 crop (+ flip for CIFAR).
* **C^u unknown** (App. E, Table 6: "C^u computed from DTC"; ``num_novel``): DTC's estimator
  (:mod:`thesislib.eval.class_number`, as the released ``omniglot_est_k.py`` / ``imagenet_est_k.py``) on the
  features of the network the joint step starts from — the supervised step's (DTC ImageNet: a ResNet-18 trained
  supervised), OmniGlot the metric step's (DTC: the prototypical VGG). ``estimate`` trains head 2 (and the I.L.
  extension of head 1, and the k-means baselines) with the estimate and records under ``<data>/<variant>-estimated-k``;
  ``report`` (the smoke default) records the estimate and trains with the known C^u. Only the data paths of
  :data:`ESTIMATED_DATA` have the estimation step (every path now; OmniGlot and ImageNet estimate per split, each
  alphabet / subset from the same drawn probes): elsewhere ``estimate`` is a config error and ``report`` estimates
  nothing. Deviation: DTC's probe
  classes are held out from the feature training (ImageNet: 82 classes beside the 800 trained on; OmniGlot: five
  background alphabets kept out of the prototypical training, the estimate averaged over them); AutoNovel's
  supervised / metric step trains on every labelled class, so the probes here (``estimate_labelled_classes`` drawn
  at random, 0: all) were seen by the features, which makes them easier to cluster than the new classes. Smoke:
  ``estimate_anchor_fraction`` 0.6, i.e. 3 anchor and 2 probe digits (DTC's 0.7 would leave a single probe class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping
from thesislib.data.imagenet_novel import SUBSETS as IMAGENET_SUBSETS
from thesislib.engine import TrainConfig, train_config
from thesislib.nn.staged_backbone import check_staged_backbone
from thesislib.params import RunParams, param
from thesislib.replication.variants import apply_variant, replicate_params

#: Ablation variants: name -> (label, overrides of AutoNovelParams).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "full": ("full method", {}),
    "no-mse": ("without the consistency (w/o Con)", {"cons_weight": 0.0}),
    "no-ce": ("without the labelled CE in the joint step (w/o CE)", {"ce_weight": 0.0}),
    "no-bce": ("without the ranking-statistics BCE (w/o BCE)", {"bce_weight": 0.0}),
    "no-selfsup": ("without RotNet self-supervision (w/o S.S.)", {"selfsup": False}),
    "il": ("with incremental learning (w/ I.L.)", {"incremental": True}),
    "k1": ("ranking statistics with k = 1", {"topk": 1}),
    "k2": ("ranking statistics with k = 2", {"topk": 2}),
    "k3": ("ranking statistics with k = 3", {"topk": 3}),
    "k7": ("ranking statistics with k = 7", {"topk": 7}),
    "k10": ("ranking statistics with k = 10", {"topk": 10}),
    "k15": ("ranking statistics with k = 15", {"topk": 15}),
    "k20": ("ranking statistics with k = 20", {"topk": 20}),
    "k50": ("ranking statistics with k = 50", {"topk": 50}),
}


@dataclass(frozen=True)
class AutoNovelParams(RunParams):
    """Every parameter of the AutoNovel chapter (defaults: smoke scale on the digits)."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); paired verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) per training run; 1: in this process", min=1)
    # data
    data: Literal["digits", "cifar10", "cifar100", "svhn", "omniglot", "imagenet"] = param(
        "digits", help="digits (sklearn) | cifar10 | cifar100 | svhn | omniglot (background labelled, one "
        "evaluation alphabet unlabelled) | imagenet (882 classes labelled, one 30-class subset unlabelled)")
    data_root: str = param("", help="directory holding cifar10/, cifar100/, svhn/, omniglot/, imagenet/ "
                           "(empty: $THESISLIB_DATA)")
    alphabet: str = param("", help="omniglot: the evaluation alphabet that is the unlabelled set (empty: each of "
                          "the 20 in turn; the metric stage reads the background alphabets only)")
    n_new_classes: int = param(0, help="C^u; 0: every class after the labelled ones (omniglot: the alphabet's "
                               "characters, set per alphabet)", min=0)
    n_labelled_classes: int = param(5, help="classes 0..C^l-1 are labelled, the rest new (CIFAR-100: 80)", min=1)
    test_fraction: float = param(0.3, help="digits: share of each class held out as the test split", min=0.05,
                                 max=0.9)
    noise_std: float = param(0.1, help="digits: Gaussian pixel-noise augmentation", min=0.0)
    # network
    backbone: Literal["mlp", "resnet18", "vgg6", "resnet18_imagenet"] = param(
        "mlp", help="mlp (staged MLP, smoke) | resnet18 (CIFAR ResNet-18) | vgg6 (OmniGlot) | resnet18_imagenet "
        "(torchvision's ImageNet ResNet-18)")
    mlp_widths: tuple[int, ...] = param((256, 256, 128), help="mlp: width of each stage")
    resnet_width: int = param(64, help="resnet18: channels of the first stage (thesis 64)", min=1)
    frozen_stages: int = param(2, help="stem + first n stages frozen after RotNet (thesis: 3 of ResNet-18's 4)",
                               min=0, max=4)
    # step 1: RotNet, or metric learning on the labelled classes (OmniGlot, following DTC)
    pretrain: Literal["rotnet", "metric", "supervised"] = param(
        "rotnet", help="rotnet (then the supervised step) | metric (prototypical loss on the labelled classes, "
        "then the joint step directly; OmniGlot) | supervised (no step 1: the supervised step from scratch, "
        "every stage trained; ImageNet)")
    selfsup: bool = param(True, help="RotNet pre-training (False: the w/o S.S. ablation)")
    metric_epochs: int = param(200, help="metric: epochs of episodes (DTC 200)", min=1)
    metric_lr: float = param(0.001, help="metric: Adam lr (DTC 0.001)", min=0.0)
    episode_classes: int = param(20, help="metric: classes per episode (DTC 20)", min=2)
    episode_support: int = param(5, help="metric: support images per class (DTC 5)", min=1)
    episode_query: int = param(5, help="metric: query images per class (DTC 5)", min=1)
    rotnet_epochs: int = param(15, help="RotNet epochs (released code: 200)", min=1)
    rotnet_batch_size: int = param(128, help="RotNet batch of images (x4 rotations)", min=1)
    rotnet_milestones: tuple[int, ...] = param((5, 9, 12), help="RotNet lr /5 at these epochs (code: 60, 120, 160)")
    # step 2: supervised on the labelled classes
    sup_epochs: int = param(10, help="supervised epochs (thesis 100)", min=1)
    sup_lr: float = param(0.1, help="supervised lr (thesis 0.1, halved every sup_step epochs)", min=0.0)
    sup_step: int = param(4, help="supervised lr halved every this many epochs (thesis 10)", min=1)
    sup_weight_decay: float = param(1e-4, help="supervised-step weight decay (released code 1e-4)", min=0.0)
    # step 3: joint training
    topk: int = param(5, help="k of the ranking statistics (thesis 5)", min=1)
    ce_weight: float = param(1.0, help="weight of the labelled CE (0: w/o CE)", min=0.0)
    bce_weight: float = param(1.0, help="weight of the pairwise BCE (0: w/o BCE)", min=0.0)
    cons_weight: float = param(5.0, help="λ of the MSE consistency (CIFAR-10 5, CIFAR-100 50, SVHN 50)", min=0.0)
    rampup_epochs: int = param(10, help="T of the sigmoid ramp-up, in epochs (CIFAR-10 50, CIFAR-100 150)", min=0)
    incremental: bool = param(False, help="incremental learning: head 1 over all classes, CE on head-2 pseudo-labels")
    increment_coefficient: float = param(0.05, help="I.L.: final weight of the unlabelled CE (thesis 0.05)", min=0.0)
    epochs: int = param(30, help="joint epochs (thesis 200)", min=1)
    batch_size: int = param(128, help="batch size (global over torchrun processes; thesis 128)", min=2)
    unlabelled_batch_size: int = param(0, help="joint step: unlabelled images per batch (0: one shuffle of labelled "
                                       "and unlabelled images; >0: two streams, batch_size minus this many labelled "
                                       "images from one pass over them + this many unlabelled ones, reshuffled "
                                       "endlessly; released code OmniGlot 32, ImageNet 128)", min=0)
    optimizer: Literal["sgd", "adam"] = param("sgd", help="joint step: sgd (momentum 0.9) | adam (OmniGlot)")
    lr: float = param(0.1, help="joint lr (thesis 0.1; OmniGlot Adam 0.01)", min=0.0)
    weight_decay: float = param(1e-4, help="weight decay (code 1e-4)", min=0.0)
    lr_milestones: tuple[int, ...] = param((24,), help="joint lr x0.1 at these epochs (thesis 170)")
    # experiments
    variants: tuple[str, ...] = param(("full", "no-mse", "no-ce", "no-bce", "no-selfsup", "il", "k1"),
                                      help="variants trained per replicate (names of config.VARIANTS; full first)")
    kmeans: bool = param(True, help="k-means baselines on pixels and on the supervised features")
    eval_batch_size: int = param(512, help="evaluation batch size", min=1)
    amp: bool = param(True, help="bf16 autocast on CUDA")
    num_workers: int = param(0, help="data loader workers", min=0)
    # ImageNet (Table 3): appended block
    subset: str = param("", help="imagenet: the 30-class unlabelled subset A | B | C (empty: each in turn; the "
                        "supervised step reads the 882 labelled classes only)")
    image_size: int = param(224, help="imagenet: training crop and evaluation centre crop (released code 224)", min=16)
    resize_size: int = param(256, help="imagenet: evaluation resize of the shorter side before the centre crop "
                             "(released code 256)", min=16)
    sup_batch_size: int = param(0, help="supervised-step batch (0: batch_size; imagenet: 256, the loader batch of "
                                "DTC's ImageNet classifier imagenet_classif.py)", min=0)
    sup_gamma: float = param(0.5, help="supervised lr factor every sup_step epochs (thesis 0.5; imagenet 0.1, as "
                             "DTC's imagenet_classif.py, which trains its 800-class model; the 882-class checkpoint "
                             "the released code loads is Hsu et al.'s, recipe unpublished)", min=0.0, max=1.0)
    sup_crop_scale: float = param(0.5, help="imagenet: smallest area fraction of the supervised step's "
                                  "RandomResizedCrop (0.5: AutoNovel's joint-step crop; 0.08: torchvision's default, "
                                  "DTC's imagenet_classif.py)", min=0.01, max=1.0)
    # C^u unknown (App. E, Table 6): DTC's estimate (thesislib.eval.class_number) from the features the joint step
    # starts from
    num_novel: Literal["known", "estimate", "report"] = param(
        "report", help="known: C^u given | estimate: C^u estimated by DTC's method, head 2 (and the I.L. extension) "
        "gets that many outputs (Table 6) | report: estimated and recorded, trained with the known C^u")
    estimate_candidates: int = param(15, help="estimate: new-cluster counts 0 .. this - 1 tried (DTC max_cand_k 100)",
                                     min=1)
    estimate_anchor_fraction: float = param(0.6, help="estimate: share of the probed labelled classes used as anchors "
                                            "(DTC split_ratio: OmniGlot 0.7, ImageNet 0.9)", min=0.01, max=0.99)
    estimate_min_size: float = param(0.01, help="estimate: a cluster counts when its unlabelled images exceed this x "
                                     "the largest's (DTC min_max_ratio: OmniGlot 0.01, ImageNet 0.3)", min=0.0,
                                     max=0.99)
    estimate_labelled_classes: int = param(0, help="estimate: labelled classes drawn as anchors + probes (0: all; "
                                           "DTC ImageNet 82, OmniGlot one background alphabet, 20-47)", min=0)
    estimate_n_init: int = param(10, help="estimate: k-means restarts per candidate (DTC 10)", min=1)
    estimate_silhouette_sample: int = param(0, help="estimate: rows the silhouette is computed on (0: all, as DTC)",
                                            min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"AutoNovelParams: unknown variants {unknown}; valid names are: {', '.join(VARIANTS)}")
        if self.pretrain == "metric" and not self.selfsup:
            raise ConfigError("AutoNovelParams: selfsup False is the w/o RotNet ablation; pretrain metric has none")
        if self.data == "omniglot" and (self.backbone != "vgg6" or self.pretrain != "metric"):
            raise ConfigError("AutoNovelParams: omniglot runs the VGG-6 with pretrain metric (thesis ch. 6 §4)")
        if self.n_labelled_classes >= self.num_classes and self.data not in ("omniglot", "imagenet"):
            raise ConfigError(f"AutoNovelParams: n_labelled_classes {self.n_labelled_classes} leaves no new class "
                              f"of {self.num_classes}")
        if self.unlabelled_batch_size >= self.batch_size:
            raise ConfigError(f"AutoNovelParams: unlabelled_batch_size {self.unlabelled_batch_size} leaves no labelled "
                              f"image in a batch of {self.batch_size}")
        check_staged_backbone("AutoNovelParams", self.backbone, self.data, self.frozen_stages, self.mlp_widths)
        if self.num_novel == "estimate" and self.data not in ESTIMATED_DATA:
            raise ConfigError(f"AutoNovelParams: num_novel estimate is not wired for data {self.data!r} (C^u is "
                              f"estimated on: {', '.join(sorted(ESTIMATED_DATA))}); use num_novel known")
        if self.num_novel != "known" and self.estimate_labelled_classes == 1:
            raise ConfigError("AutoNovelParams: estimate_labelled_classes 1 leaves no probe class beside the anchor "
                              "(0: all, or at least 2)")
        self._check_imagenet()

    def _check_imagenet(self) -> None:
        """ImageNet (Table 3): the ImageNet ResNet-18, no step 1, two-stream batches, a known subset."""
        if self.subset and self.subset not in IMAGENET_SUBSETS:
            raise ConfigError(f"AutoNovelParams: unknown ImageNet subset {self.subset!r}; valid subsets are: "
                              f"{', '.join(IMAGENET_SUBSETS)} (empty: each in turn)")
        if self.pretrain == "supervised" and not self.selfsup:
            raise ConfigError("AutoNovelParams: selfsup False is the w/o RotNet ablation; pretrain supervised has none")
        if self.data != "imagenet":
            if self.subset:
                raise ConfigError("AutoNovelParams: subset is for data imagenet")
            if self.pretrain == "supervised":
                raise ConfigError(f"AutoNovelParams: pretrain supervised is the ImageNet path (no step 1, the "
                                  f"supervised step from scratch); data {self.data} pre-trains with rotnet "
                                  "(omniglot: metric)")
            return
        if self.backbone != "resnet18_imagenet" or self.pretrain != "supervised":
            raise ConfigError("AutoNovelParams: imagenet runs the resnet18_imagenet backbone with pretrain supervised "
                              "(thesis ch. 6 §4: no self-supervision for ImageNet)")
        if self.n_new_classes == 0 or self.unlabelled_batch_size == 0:
            raise ConfigError("AutoNovelParams: imagenet needs n_new_classes (30) and unlabelled_batch_size > 0 "
                              "(two-stream batches, as the released code)")
        if self.resize_size < self.image_size:
            raise ConfigError(f"AutoNovelParams: resize_size {self.resize_size} is smaller than the centre crop "
                              f"image_size {self.image_size}")

    @property
    def num_classes(self) -> int:
        if self.data in ("omniglot", "imagenet"):
            return self.n_labelled_classes + self.n_new_classes
        return 100 if self.data == "cifar100" else 10

    @property
    def num_new(self) -> int:
        """C^u, the number of new classes: known, as in the thesis, or (``num_novel`` estimate) the estimate that
        :func:`~thesislib.methods.autonovel.experiments.estimated_config` writes into ``n_new_classes``."""
        return self.n_new_classes or self.num_classes - self.n_labelled_classes


def autonovel_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> AutoNovelParams:
    """:class:`AutoNovelParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(AutoNovelParams, mapping, **overrides)


def config_for(params: AutoNovelParams, seed: int | None = None) -> AutoNovelParams:
    return replicate_params(params, seed)


def variant_config(params: AutoNovelParams, name: str) -> AutoNovelParams:
    return apply_variant(params, VARIANTS, name)


def experiment_id(params: AutoNovelParams, variant: str, estimated: bool = False) -> str:
    """``<data>/<variant>``; ``<data>/<variant>-estimated-k`` (Table 6) when the run was ``estimated``: its heads
    were sized by DTC's estimate of C^u (:func:`~thesislib.methods.autonovel.experiments.aggregate` passes it
    only when every replicate says so), never from ``num_novel`` alone."""
    return f"{params.data}/{variant}" + ("-estimated-k" if estimated else "")


def rotnet_engine_config(params: AutoNovelParams) -> TrainConfig:
    return train_config(params, batch_size=params.rotnet_batch_size, epochs=params.rotnet_epochs)


def supervised_engine_config(params: AutoNovelParams) -> TrainConfig:
    return train_config(params, batch_size=params.sup_batch_size or params.batch_size, epochs=params.sup_epochs)


def metric_engine_config(params: AutoNovelParams) -> TrainConfig:
    """One episode per step (the episodes are the dataset's items, batch 1)."""
    return train_config(params, batch_size=1, epochs=params.metric_epochs)


def joint_engine_config(params: AutoNovelParams) -> TrainConfig:
    """The engine's batch: every image (merged shuffle), or the labelled stream's ``batch_size - unlabelled_batch_size``
    (two streams: the step adds the unlabelled rows)."""
    return train_config(params, batch_size=params.batch_size - params.unlabelled_batch_size, epochs=params.epochs)


# C^u unknown (App. E, Table 6): the data paths whose replicates run DTC's estimate (experiments.estimate_step).
#: data paths with an estimation step; ``num_novel`` estimate is rejected on any other, ``report`` skipped there
ESTIMATED_DATA = frozenset({"digits", "cifar10", "cifar100", "svhn", "omniglot", "imagenet"})


def estimates_cu(params: AutoNovelParams) -> bool:
    """Whether a replicate of ``params`` estimates C^u: ``num_novel`` estimate or report, on a data path of
    :data:`ESTIMATED_DATA`."""
    return params.num_novel != "known" and params.data in ESTIMATED_DATA
