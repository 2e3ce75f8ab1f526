"""The chapter's one parameter declaration, :class:`MicroAnnotationParams`, and the configs derived from it.

The notebook's ``parameters`` cell is generated from the dataclass (``thesislib notebooks --sync``),
``configs/micro_annotation/*.yaml`` and ``thesislib run -p`` set its fields, and every setting
that a library function needs is derived from it here:

* :func:`spectral_config`: Algorithm 3's :class:`~.spectral.SpectralConfig` (``rho``,
  ``min_clusters``, ``max_clusters``, ``solver``; k-means seeded with the replicate's seed);
* :func:`cam_train_config`: the engine's :class:`~thesislib.engine.TrainConfig` of the CAM
  classifier (``epochs``, ``batch_size``, ``seed``, ``num_workers``, ``progress``; through
  :func:`thesislib.engine.train_config`), and :func:`cam_optimizer_settings` (``lr``);
* :func:`human_distractors`: a person's choices (``distractors``) as ``{class: [cluster ids]}``.

Groups of fields: the run (:class:`~thesislib.params.RunParams`: ``seed``, ``n_seeds``, ``scale``,
``output_dir``, ``device``, ``threads``, ``progress``) and ``nproc`` (torchrun processes for the
full-scale training); data (``data``, ``data_root``, ``n_train``, ``n_test``, ``classes``,
``max_train_per_class``, ``max_val``); the CAM classifier (``arch``, ``cam_width``, ``cam_extra``,
``weights_path``, ``vgg16_path``, ``epochs``, ``batch_size``, ``lr``, ``input_size``,
``num_workers``); micro-annotation (``pattern_layer``, ``tau``, ``threshold_rule``, ``upsample``,
``rho``, ``min_clusters``, ``max_clusters``, ``solver``, ``annotator``, ``distractors``,
``annotation_file``, ``n_show``); chaining with SEC at smoke scale (``sec_retrain``,
``sec_iterations``, ``sec_batch_size``, ``sec_lr``).

Run bookkeeping that reaches no derived config: ``scale``, ``output_dir`` (where the run and the
full-scale artefacts are written), ``device`` and ``threads`` (resolved by
:func:`thesislib.notebook.setup`), ``n_seeds`` (the replicate loop, :attr:`seeds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping
from thesislib.engine import TrainConfig, train_config
from thesislib.methods.micro_annotation.spectral import SpectralConfig
from thesislib.params import RunParams, param

DATA_CHOICES = ("scenes", "ilsvrc", "voc")


@dataclass(frozen=True)
class MicroAnnotationParams(RunParams):
    """All parameters of thesis chapter 3's pipeline (defaults: the smoke run, 5 replicates)."""

    n_seeds: int = param(5, help="replicates (seeds seed .. seed + n_seeds - 1); the verdicts pair them", min=1)
    nproc: int = param(1, help="torchrun processes for the full-scale CAM training (1: this process)",
                       min=1, max=64)
    # data
    data: Literal["scenes", "ilsvrc", "voc"] = param(
        "scenes", help="'scenes' (procedural, smoke), 'ilsvrc' or 'voc' (real data under data_root)")
    data_root: str = param("", help="dataset root ('': $THESISLIB_DATA)")
    n_train: int = param(600, help="scenes per replicate for training the CAM classifier", min=16)
    n_test: int = param(300, help="test scenes per replicate", min=16)
    classes: tuple[str, ...] = param((), help="ILSVRC wnids or VOC class names to process ([]: all)")
    max_train_per_class: int = param(0, help="ILSVRC/VOC: first n training images per class (0: all)", min=0)
    max_val: int = param(0, help="ILSVRC/VOC: first n val images (0: all)", min=0)
    # CAM classifier
    arch: Literal["cam_small", "cam_vgg16"] = param("cam_small", help="'cam_small' (smoke) or 'cam_vgg16' (GAP's VGG)")
    cam_width: int = param(16, help="cam_small: trunk width K (channels 2K)", min=1)
    cam_extra: int = param(64, help="cam_small: channels of the 3x3 conv before the GAP", min=1)
    weights_path: str = param("", help="a trained CAM classifier (state dict); '': train it here")
    vgg16_path: str = param("", help="ImageNet VGG16 weights for the cam_vgg16 trunk")
    epochs: int = param(10, help="CAM classifier training epochs (0: use weights_path as is)", min=0)
    batch_size: int = param(32, help="CAM classifier batch size (global, across processes)", min=1)
    lr: float = param(3e-3, help="Adam learning rate of the CAM classifier", min=1e-8, max=1.0)
    input_size: int = param(224, help="ILSVRC/VOC network input size", min=32)
    num_workers: int = param(0, help="data loader workers", min=0)
    # micro-annotation
    pattern_layer: Literal["features", "trunk"] = param(
        "trunk", help="patterns phi_u: 'trunk' (conv5_3 analogue) or 'features' (GAP input)")
    tau: float = param(0.2, help="D^y threshold: S > tau max S", min=0.01, max=0.99)
    threshold_rule: Literal["max", "minmax"] = param("max", help="'max' (thesis) or 'minmax' (Zhou et al.'s code)")
    upsample: Literal["bilinear", "nearest"] = param("bilinear", help="score map to image size before thresholding")
    rho: float = param(0.7, help="Algorithm 3: eigenvalue threshold", min=0.0, max=1.0)
    min_clusters: int = param(2, help="Algorithm 3: m, the least k", min=1)
    max_clusters: int = param(4, help="Algorithm 3: M, eigenvalues computed", min=2)
    solver: Literal["svd", "lanczos"] = param("svd", help="'svd' (thin SVD of D^-1/2 A) or 'lanczos'")
    annotator: Literal["simulated", "human"] = param("simulated", help="'simulated' (ground-truth oracle) or 'human'")
    distractors: tuple[str, ...] = param(
        (), help="annotator 'human': 'class:id' entries, e.g. ['boat:0', 'train:1'] (ids as in the heatmap panels)")
    annotation_file: str = param("", help="re-apply a saved annotation (ILSVRC/VOC)")
    n_show: int = param(12, help="training images per class in the annotation figure", min=1)
    # chaining with SEC (smoke)
    sec_retrain: bool = param(True, help="retrain SEC (chapter 2) on the plain and the micro-annotated cues")
    sec_iterations: int = param(200, help="SEC training steps per cue set", min=1)
    sec_batch_size: int = param(16, help="SEC batch size", min=1)
    sec_lr: float = param(1e-3, help="SEC learning rate", min=1e-8, max=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_clusters > self.max_clusters:
            raise ConfigError(f"min_clusters = {self.min_clusters} exceeds max_clusters = {self.max_clusters}")
        if self.epochs == 0 and not self.weights_path:
            raise ConfigError("epochs = 0 needs weights_path (a trained CAM classifier); set one or train with "
                              "epochs > 0")
        if self.annotator == "human" and not (self.distractors or self.annotation_file):
            raise ConfigError("annotator='human' needs the person's choices: set distractors, e.g. ['boat:1'] "
                              "(cluster ids as numbered in the heatmap figure), or annotation_file")
        human_distractors(self)  # validates the 'class:id' entries
        if self.nproc > 1 and self.data == "scenes":
            raise ConfigError("nproc > 1 trains the full-scale CAM classifier under torchrun; the smoke run "
                              "(data='scenes') runs in one process: set nproc=1")


def micro_params(mapping: dict[str, Any] | None = None, **overrides: Any) -> MicroAnnotationParams:
    """:class:`MicroAnnotationParams` from a mapping (a YAML config, notebook globals); unknown keys
    are a :class:`~thesislib.config.ConfigError` listing the valid names."""
    return from_mapping(MicroAnnotationParams, mapping, **overrides)


def human_distractors(params: MicroAnnotationParams) -> dict[str, list[int]]:
    """``distractors`` (``'class:id'`` entries) as ``{class: [cluster ids]}``; a malformed entry is
    a :class:`~thesislib.config.ConfigError` showing the expected form."""
    out: dict[str, list[int]] = {}
    for entry in params.distractors:
        name, sep, ident = str(entry).rpartition(":")
        if not sep or not name or not ident.strip().isdigit():
            raise ConfigError(f"distractors entry {entry!r}: expected 'class:cluster id', e.g. 'boat:0'")
        out.setdefault(name.strip(), []).append(int(ident))
    return out


def spectral_config(params: MicroAnnotationParams, seed: int) -> SpectralConfig:
    """Algorithm 3's settings for the replicate ``seed`` (its k-means seed)."""
    return SpectralConfig(rho=params.rho, min_clusters=params.min_clusters, max_clusters=params.max_clusters,
                          solver=params.solver, seed=seed)


def cam_train_config(params: MicroAnnotationParams, seed: int, num_items: int,
                     checkpoint_dir: str | None = None) -> TrainConfig:
    """The CAM classifier's engine config for replicate ``seed`` on ``num_items`` training images:
    ``epochs`` passes of ``batch_size``, one history record per epoch; with ``checkpoint_dir`` the
    run resumes from its newest checkpoint."""
    steps_per_epoch = max(1, -(-num_items // params.batch_size))
    return train_config(params, batch_size=params.batch_size, epochs=max(params.epochs, 1),
                        checkpoint_dir=checkpoint_dir, seed=seed, log_every=steps_per_epoch)


def cam_optimizer_settings(params: MicroAnnotationParams) -> dict[str, float]:
    """Adam's settings for the CAM classifier: ``lr`` fixed, no weight decay (thesis: GAP's setup)."""
    return {"lr": params.lr, "weight_decay": 0.0}

