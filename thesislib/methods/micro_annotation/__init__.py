"""Micro-annotation (Kolesnikov & Lampert, BMVC 2016; thesis chapter 3): find the distractors that
always co-occur with a class (water for boats, rails for trains) by clustering the features of
its predicted regions, let a person mark the distractor clusters, and suppress them.

Modules (fixed roles, as in every chapter):

* :mod:`.config`: :class:`MicroAnnotationParams`, the one parameter declaration, and the configs
  derived from it (Algorithm 3's settings, the CAM classifier's engine config).
* :mod:`.data`: the procedural scenes of the smoke run and the ILSVRC / VOC sets.
* :mod:`.model`: the CAM classifiers (GAP's layout; small for smoke, VGG16 at full scale).
* :mod:`.losses`: their image-level loss (BCE multi-label, softmax CE single-label).
* :mod:`.train`: their training through the engine, in this process or as ``nproc`` torchrun
  processes (the module is the torchrun entry point).
* :mod:`.evaluate`: localization before / after step (iv) on the test scenes (``engine.evaluate``).
* :mod:`.experiments`: the smoke replicates, their summary and paired verdicts, and the full-run dispatch.
* :mod:`.plots`: Figs. 3.2, 3.3/3.6, 3.5(b) analogues.

The method's steps (thesis section 3.3), one module each: :mod:`.patterns` (i) pattern sets A^y;
:mod:`.spectral` (ii) Algorithm 3 in linear time and a quadratic reference; :mod:`.heatmaps`
(iii, iv) cluster heatmaps (Eq. 3.1) and suppression; :mod:`.annotation` (iii) a person's
choices, the ground-truth oracle, JSON save/load; :mod:`.regions` and :mod:`.metrics`:
thresholding, boxes, CorLoc, the ILSVRC top-5 protocol, pixel IoU, the ranking curve.
Full scale: :mod:`.full` (per-class clustering shared by) :mod:`.ilsvrc` (boxes on ILSVRC val)
and :mod:`.voc` (SEC's localization cues on VOC); :mod:`.sec_chain`: SEC retrained on the
micro-annotated cues of the scenes.
"""

from thesislib.methods.micro_annotation.annotation import (
                                                           Annotation,
                                                           ClassAnnotation,
                                                           annotation_widget,
                                                           human_annotation,
                                                           majority_flags,
                                                           simulated_annotation,
)
from thesislib.methods.micro_annotation.config import MicroAnnotationParams, micro_params
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
from thesislib.methods.micro_annotation.model import build_cam_classifier, cam_small_gap
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

__all__ = [
    "Annotation", "ClassAnnotation", "MicroAnnotationParams", "Patterns", "SpectralConfig", "SpectralResult",
    "annotation_widget", "box_iou", "build_cam_classifier", "cam_small_gap", "choose_k",
    "cluster_heatmaps",
    "cluster_means", "component_boxes", "corloc", "extract_patterns", "forward_maps", "fraction_at",
    "human_annotation", "largest_component", "largest_component_boxes", "localization_error", "localize",
    "majority_flags", "mask_box", "micro_params", "nearest_cluster", "normalize_patterns", "object_regions",
    "per_class_accuracy", "pixel_iou", "precision_recall", "ranking_curve", "reference_spectral_clustering",
    "reference_spectral_embedding", "region_centres_in_boxes", "region_fraction", "simulated_annotation",
    "spectral_clustering", "spectral_embedding", "suppress_scores", "threshold_regions", "top5_localization",
    "upsample_scores",
]
