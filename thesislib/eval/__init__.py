"""Evaluation: classification, multi-label and segmentation metrics, significance tests, probes."""

from thesislib.eval.classification import (
                                           accuracy,
                                           classification_summary,
                                           confusion_matrix,
                                           per_class_accuracy,
                                           top1_error,
                                           topk_accuracy,
)
from thesislib.eval.multilabel import average_precision, mean_ap, multilabel_counts, multilabel_prf
from thesislib.eval.probe import ProbeConfig, extract_features, linear_probe
from thesislib.eval.segmentation import SegmentationConfusion
from thesislib.eval.stats import paired_ttest, pearson, pearson_pvalue

__all__ = [
    "ProbeConfig", "SegmentationConfusion", "accuracy", "average_precision",
    "classification_summary", "confusion_matrix", "extract_features", "linear_probe", "mean_ap",
    "multilabel_counts", "multilabel_prf", "paired_ttest", "pearson", "pearson_pvalue",
    "per_class_accuracy", "top1_error", "topk_accuracy",
]

# Likelihood models (PixelCNN chapters).
from thesislib.eval.likelihood import TwoPartBpd, bits_per_dim, two_part_bits_per_dim  # noqa: E402

__all__ += ["TwoPartBpd", "bits_per_dim", "two_part_bits_per_dim"]

# Multi-domain learning (Rebuffi chapters 3-4): the decathlon score and the parameter account.
from thesislib.eval.decathlon import (  # noqa: E402
                                      ParameterAccount,
                                      count_parameters,
                                      decathlon_score,
                                      decathlon_scores,
                                      e_max_from_baseline,
)

__all__ += ["ParameterAccount", "count_parameters", "decathlon_score", "decathlon_scores", "e_max_from_baseline"]

# Self-supervised evaluation protocols (Jenni ch. 3-4): per-layer probes, kNN, folds, VOC07 transfer.
from thesislib.eval.folds import fold_protocol  # noqa: E402
from thesislib.eval.knn import knn_accuracy, knn_predict, precision_at_k, retrieve  # noqa: E402
from thesislib.eval.probe import PROBE_DIMS, LayerFeatures, layer_probes, probe_grid, probe_pool  # noqa: E402
from thesislib.eval.transfer import TransferConfig, finetune_multilabel, voc07_map  # noqa: E402

__all__ += [
    "PROBE_DIMS", "LayerFeatures", "TransferConfig", "finetune_multilabel", "fold_protocol", "knn_accuracy",
    "knn_predict", "layer_probes", "precision_at_k", "probe_grid", "probe_pool", "retrieve", "voc07_map",
]

# Clustering metrics (Rebuffi chapters 6-7).
from thesislib.eval.clustering import (  # noqa: E402
    ClusterScores,
    best_matching,
    cluster_accuracy,
    cluster_scores,
    contingency,
    kmeans_cluster_scores,
)

__all__ += ["ClusterScores", "best_matching", "cluster_accuracy", "cluster_scores", "contingency",
            "kmeans_cluster_scores"]

# Rank-based AUC of a binary score (the spotting-artifacts mask head).
from thesislib.eval.auc import binary_auc  # noqa: E402

__all__ += ["binary_auc"]

# Transfer of a pre-trained conv backbone (Jenni ch. 3-4, Table 3.3): VOC07 classification with Krähenbühl
# rescaling, VOC07 detection (torchvision Faster R-CNN), VOC12 segmentation (FCN head), single-label fine-tuning.
from thesislib.eval.detection import (  # noqa: E402
    DetectionConfig,
    finetune_detection,
    transfer_faster_rcnn,
    voc_detection_ap,
)
from thesislib.eval.segmentation_transfer import (  # noqa: E402
    ImageMaskItems,
    SegmentationTransferConfig,
    finetune_segmentation,
)
from thesislib.eval.transfer import ConvFeatures, TransferNet, finetune_classifier, rescale_for_transfer  # noqa: E402

__all__ += ["ConvFeatures", "DetectionConfig", "ImageMaskItems", "SegmentationTransferConfig", "TransferNet",
            "finetune_classifier", "finetune_detection", "finetune_segmentation", "rescale_for_transfer",
            "transfer_faster_rcnn", "voc_detection_ap"]

# Label-free cluster validity: the silhouette (LSD-C's L2 threshold grid search, Rebuffi ch. 7).
from thesislib.eval.clustering import silhouette  # noqa: E402

__all__ += ["silhouette"]

# Label-free selection with K known: silhouette x cluster-size balance (LSD-C's L2 grid search).
from thesislib.eval.clustering import balanced_silhouette, size_balance  # noqa: E402

__all__ += ["balanced_silhouette", "size_balance"]

# The VOC transfer protocol shared by Jenni ch. 3-4 (params mixin and orchestration) and the probes' per-class
# subsample.
from thesislib.eval.probe import per_class_subset  # noqa: E402
from thesislib.eval.voc_transfer import VOC_TASKS, VocTransferParams, check_voc_data, run_voc_transfer  # noqa: E402

__all__ += ["VOC_TASKS", "VocTransferParams", "check_voc_data", "per_class_subset", "run_voc_transfer"]

# Leave-one-out kNN accuracy against k (Jenni Fig. 4.6).
from thesislib.eval.knn import loo_knn_accuracy, standardize_columns  # noqa: E402

__all__ += ["loo_knn_accuracy", "standardize_columns"]

# --- streaming multi-layer linear probes (Zhang et al. protocol on full data sets; Jenni Tables 3.4, 4.1-4.6) ---
from thesislib.eval.streaming_probe import StreamingProbeConfig, streaming_probe, ten_crops  # noqa: E402

__all__ += ["StreamingProbeConfig", "streaming_probe", "ten_crops"]

# The number of new classes from labelled probe classes (DTC §3.3; AutoNovel App. E, Table 6).
from thesislib.eval.class_number import (  # noqa: E402
    ClassNumberEstimate,
    ConstrainedClustering,
    constrained_kmeans,
    count_clusters,
    estimate_num_classes,
    select_candidate,
    split_anchor_probe,
)

__all__ += ["ClassNumberEstimate", "ConstrainedClustering", "constrained_kmeans", "count_clusters",
            "estimate_num_classes", "select_candidate", "split_anchor_probe"]

# Jenni Table 3.1 (conv layers kept fixed in transfer) and the probes' Places205 data (Tables 3.5, 4.6)
from thesislib.eval.streaming_probe import PROBE_DATA, check_probe_data, probe_data_set  # noqa: E402
from thesislib.eval.transfer import FrozenFeatures, freeze_backbone  # noqa: E402

__all__ += ["FrozenFeatures", "PROBE_DATA", "check_probe_data", "freeze_backbone", "probe_data_set"]
