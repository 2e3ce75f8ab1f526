"""The chapter's frozen configuration: every parameter of the notebook and of the batch runs.

The notebook's ``parameters`` cell defines exactly these fields (papermill and
``configs/micro_annotation/*.yaml`` set them); :func:`micro_config` builds the dataclass from a
mapping and rejects unknown names. Groups:

* run: ``seed`` (first seed), ``n_seeds``, ``scale``, ``output_dir``, ``device``, ``threads``;
* data: ``data`` = ``"scenes"`` (procedural, smoke), ``"ilsvrc"`` or ``"voc"`` (real data under
  ``data_root`` or ``$THESISLIB_DATA``), with the scene sizes ``n_train`` / ``n_test``;
* the CAM classifier: ``arch`` (``"cam_small"`` or ``"cam_vgg16"``), ``cam_width``, ``cam_extra``,
  ``weights_path`` (a trained CAM classifier's state dict), ``vgg16_path`` (ImageNet VGG16 weights
  to start the trunk from), ``epochs`` / ``batch_size`` / ``lr`` of its training (``epochs = 0``:
  use ``weights_path`` as is), ``input_size``, ``num_workers``;
* micro-annotation: ``pattern_layer``, ``tau`` and ``threshold_rule`` of D^y, ``upsample``,
  Algorithm 3's ``rho`` / ``min_clusters`` / ``max_clusters`` / ``solver``, ``annotator``
  (``"simulated"``: the ground-truth oracle; ``"human"``: the ids in ``distractors``),
  ``annotation_file`` (re-apply a saved annotation), ``n_show`` images per class in the
  annotation figure;
* chaining with SEC (smoke scale, first seed): ``sec_retrain`` and the SEC training settings
  ``sec_iterations`` / ``sec_batch_size`` / ``sec_lr`` (see :mod:`.sec_chain`);
* real-data subsets: ``classes`` (wnids for ILSVRC, class names for VOC; empty = all),
  ``max_train_per_class`` (ILSVRC: the first n train images of each class, for training and
  patterns; VOC: the first n trainaug images of each class, for the patterns) and ``max_val``
  (the first n val images); 0 = all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from thesislib.config import from_mapping
from thesislib.methods.micro_annotation.spectral import SpectralConfig

DATA_CHOICES = ("scenes", "ilsvrc", "voc")


@dataclass(frozen=True)
class MicroAnnotationConfig:
    """All parameters of thesis chapter 3's pipeline (defaults: the smoke run)."""

    # run
    seed: int = 0
    n_seeds: int = 3
    scale: str = "smoke"
    output_dir: str = ""
    device: str = "auto"
    threads: int = 2
    # data
    data: Literal["scenes", "ilsvrc", "voc"] = "scenes"
    data_root: str = ""
    n_train: int = 600
    n_test: int = 300
    classes: tuple[str, ...] = ()
    max_train_per_class: int = 0
    max_val: int = 0
    # CAM classifier
    arch: Literal["cam_small", "cam_vgg16"] = "cam_small"
    cam_width: int = 16
    cam_extra: int = 64
    weights_path: str = ""
    vgg16_path: str = ""
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    input_size: int = 224
    num_workers: int = 0
    # micro-annotation
    pattern_layer: Literal["features", "trunk"] = "trunk"
    tau: float = 0.2
    threshold_rule: Literal["max", "minmax"] = "max"
    upsample: Literal["bilinear", "nearest"] = "bilinear"
    rho: float = 0.7
    min_clusters: int = 2
    max_clusters: int = 4
    solver: Literal["svd", "lanczos"] = "svd"
    annotator: Literal["simulated", "human"] = "simulated"
    distractors: dict[str, list[int]] = field(default_factory=dict)
    annotation_file: str = ""
    n_show: int = 12
    # chaining with SEC (smoke)
    sec_retrain: bool = True
    sec_iterations: int = 200
    sec_batch_size: int = 16
    sec_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.data not in DATA_CHOICES:
            raise ValueError(f"data must be one of {DATA_CHOICES}, got {self.data!r}")
        if self.n_seeds < 1:
            raise ValueError("n_seeds must be at least 1")
        if self.annotator == "human" and not (self.distractors or self.annotation_file):
            raise ValueError("annotator='human' needs the person's choices: set distractors, e.g. "
                             "{'boat': [1]} (cluster ids as numbered in the heatmap figure), or annotation_file")
        if not 0.0 < self.tau < 1.0:
            raise ValueError(f"tau must lie in (0, 1), got {self.tau}")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")
        SpectralConfig(self.rho, self.min_clusters, self.max_clusters, self.solver)  # validates

    def spectral(self, seed: int | None = None) -> SpectralConfig:
        """Algorithm 3's settings (k-means seeded with ``seed``, default the run's seed)."""
        return SpectralConfig(rho=self.rho, min_clusters=self.min_clusters, max_clusters=self.max_clusters,
                              solver=self.solver, seed=self.seed if seed is None else seed)

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n_seeds))


def micro_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> MicroAnnotationConfig:
    """:class:`MicroAnnotationConfig` from a mapping (a YAML config, notebook globals); unknown
    keys are a :class:`~thesislib.config.ConfigError` listing the valid names."""
    return from_mapping(MicroAnnotationConfig, mapping, **overrides)
