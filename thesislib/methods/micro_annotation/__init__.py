"""Micro-annotation (Kolesnikov & Lampert, BMVC 2016; thesis chapter 3): find the distractors that
always co-occur with a class (water for boats, rails for trains) by clustering the features of
its predicted regions, let a person mark the distractor clusters, and suppress them.

Modules (the thesis's steps, section 3.3):

* :mod:`.patterns` (i): pattern sets A^y, L2-normalised post-ReLU features of the regions in D^y.
* :mod:`.spectral` (ii): Algorithm 3 in linear time (thin SVD of D^{-1/2} A, or Lanczos) and a
  quadratic reference.
* :mod:`.heatmaps` (iii, iv): cluster heatmaps (Eq. 3.1) and the suppression of distractor regions.
* :mod:`.annotation` (iii): a person's choices, the ground-truth oracle, JSON save/load.
* :mod:`.regions` and :mod:`.metrics`: thresholding D^y, largest-component boxes, CorLoc, the
  ILSVRC top-5 protocol, pixel IoU, the eigenvalue ranking curve (Fig. 3.5(b)).
* :mod:`.train`: the CAM classifiers and their training through the engine.
* :mod:`.scenes`: the smoke pipeline on procedural scenes; :mod:`.sec_chain`: SEC retrained on
  micro-annotated cues of the scenes; :mod:`.full` with :mod:`.ilsvrc` (ILSVRC CLS-LOC boxes)
  and :mod:`.voc` (PASCAL VOC localization cues for SEC): the full-scale runs.
* :mod:`.figures`: Figs. 3.2, 3.3/3.6, 3.5(b) analogues.
"""

from thesislib.methods.micro_annotation.annotation import (
                                                           Annotation,
                                                           ClassAnnotation,
                                                           annotation_widget,
                                                           human_annotation,
                                                           majority_flags,
                                                           simulated_annotation,
)
from thesislib.methods.micro_annotation.config import MicroAnnotationConfig, micro_config
from thesislib.methods.micro_annotation.heatmaps import (
                                                           cluster_heatmaps,
                                                           nearest_cluster,
                                                           object_regions,
                                                           suppress_scores,
)
from thesislib.methods.micro_annotation.metrics import (
                                                           box_iou,
                                                           corloc,
                                                           fraction_at,
                                                           localization_error,
                                                           per_class_accuracy,
                                                           pixel_iou,
                                                           precision_recall,
                                                           ranking_curve,
                                                           top5_localization,
)
from thesislib.methods.micro_annotation.patterns import (
                                                           Patterns,
                                                           extract_patterns,
                                                           forward_maps,
                                                           normalize_patterns,
                                                           region_centres_in_boxes,
                                                           region_fraction,
)
from thesislib.methods.micro_annotation.regions import (
                                                           component_boxes,
                                                           largest_component,
                                                           largest_component_boxes,
                                                           localize,
                                                           mask_box,
                                                           threshold_regions,
                                                           upsample_scores,
)
from thesislib.methods.micro_annotation.spectral import (
                                                           SpectralConfig,
                                                           SpectralResult,
                                                           choose_k,
                                                           cluster_means,
                                                           reference_spectral_clustering,
                                                           reference_spectral_embedding,
                                                           spectral_clustering,
                                                           spectral_embedding,
)
from thesislib.methods.micro_annotation.train import build_cam_classifier, cam_small_gap, cam_train_config

__all__ = [
    "Annotation", "ClassAnnotation", "MicroAnnotationConfig", "Patterns", "SpectralConfig", "SpectralResult",
    "annotation_widget", "box_iou", "build_cam_classifier", "cam_small_gap", "cam_train_config", "choose_k",
    "cluster_heatmaps",
    "cluster_means", "component_boxes", "corloc", "extract_patterns", "forward_maps", "fraction_at",
    "human_annotation", "largest_component", "largest_component_boxes", "localization_error", "localize",
    "majority_flags", "mask_box", "micro_config", "nearest_cluster", "normalize_patterns", "object_regions",
    "per_class_accuracy", "pixel_iou", "precision_recall", "ranking_curve", "reference_spectral_clustering",
    "reference_spectral_embedding", "region_centres_in_boxes", "region_fraction", "simulated_annotation",
    "spectral_clustering", "spectral_embedding", "suppress_scores", "threshold_regions", "top5_localization",
    "upsample_scores",
]
