"""Label-free training pieces shared by Rebuffi's chapters 5-7 (scarce annotations, AutoNovel, LSD-C).

* :mod:`~thesislib.selfsup.rotnet` — RotNet: 4-way rotation prediction and its released schedule;
* :mod:`~thesislib.selfsup.pairwise` — the pairwise BCE on P(i = j) = p_iᵀp_j, the MSE consistency
  and the sigmoid ramp-up;
* :mod:`~thesislib.selfsup.pseudo_labels` — pairwise pseudo-labels: kNN, cosine, L2 and SNE
  adjacencies (LSD-C) and ranking statistics (AutoNovel);
* :mod:`~thesislib.selfsup.composition` — RICAP and MixUp with pairwise-target mixing;
* :mod:`~thesislib.selfsup.precision` — float32 islands (autocast off) for the pairwise pieces and
  the scored heads.

Backbones (CIFAR ResNet-18, the staged MLP) and the freezing of early stages live in
:mod:`thesislib.nn`; clustering metrics in :mod:`thesislib.eval.clustering`.
"""

from thesislib.selfsup.composition import Composite, mix_targets, mixup, ricap
from thesislib.selfsup.pairwise import (
    EpochClock,
    consistency_mse,
    pair_probabilities,
    pairwise_bce,
    ranking_bce,
    sigmoid_rampup,
)
from thesislib.selfsup.precision import fp32_head, full_precision
from thesislib.selfsup.pseudo_labels import (
    ADJACENCIES,
    adjacency,
    cosine_adjacency,
    knn_adjacency,
    l2_adjacency,
    matched_l2_threshold,
    rank_statistics,
    sne_adjacency,
    undirected_edges,
)
from thesislib.selfsup.rotnet import RotNetConfig, rotate_batch, rotation_step_fn, train_rotnet

__all__ = [
    "ADJACENCIES", "Composite", "EpochClock", "RotNetConfig", "adjacency", "consistency_mse", "cosine_adjacency",
    "knn_adjacency", "l2_adjacency", "mix_targets", "mixup", "pair_probabilities", "pairwise_bce",
    "rank_statistics", "ricap", "rotate_batch", "rotation_step_fn", "sigmoid_rampup", "sne_adjacency",
    "train_rotnet", "undirected_edges",
    "fp32_head", "full_precision", "matched_l2_threshold",
    "ranking_bce",
]
