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
