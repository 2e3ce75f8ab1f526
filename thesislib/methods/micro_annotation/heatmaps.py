"""Cluster heatmaps (Eq. 3.1, step iii) and the improved localization of step (iv).

Eq. (3.1): the heatmap of cluster C at region u is the mean similarity of the region's pattern
to the cluster's patterns, which equals the similarity to the cluster mean a_C:

    H^y_u(X | C) = (1 / |C|) sum_{a in C} <phi_u(X), a> = <phi_u(X), a_C>.

Step (iv), with erratum 5 of the study note (the thesis prints "min" but means the cluster "that
results in the highest heatmap score"):

    C* = argmax_C H^y_u(X | C);   S^y_u(X) = -inf  if C* is not an 'object' cluster,

after which the usual thresholding and box rule run on the modified map. A region whose pattern
is all zero matches no cluster (every H is 0); its score is left unchanged.

Shapes: patterns (B, K, h, w) L2-normalised; means (k, K); heatmaps (B, k, h, w); scores (B, h, w).
"""

from __future__ import annotations

import torch
from torch import Tensor


def cluster_heatmaps(patterns: Tensor, means: Tensor) -> Tensor:
    """H(X | C) for every cluster: <phi_u(X), a_C>, (B, K, h, w) x (k, K) -> (B, k, h, w) (Eq. 3.1)."""
    if patterns.ndim != 4 or means.ndim != 2 or patterns.shape[1] != means.shape[1]:
        raise ValueError(f"patterns (B, K, h, w) and means (k, K) must share K, got "
                         f"{tuple(patterns.shape)} and {tuple(means.shape)}")
    return torch.einsum("bkhw,ck->bchw", patterns, means.to(patterns.dtype))


def nearest_cluster(heatmaps: Tensor) -> Tensor:
    """C*_u = argmax_C H_u(X | C), (B, k, h, w) -> (B, h, w) int64; -1 where every heatmap is 0
    (an all-zero pattern, which matches no cluster)."""
    best = heatmaps.argmax(dim=1)
    return best.masked_fill(heatmaps.abs().amax(dim=1) == 0, -1)


def object_regions(heatmaps: Tensor, is_object: Tensor) -> Tensor:
    """(B, h, w) bool: True where the nearest cluster is an 'object' cluster, or where no cluster
    matches. ``is_object`` (k,) bool."""
    is_object = is_object.to(device=heatmaps.device, dtype=torch.bool)
    if is_object.shape != (heatmaps.shape[1],):
        raise ValueError(f"is_object must have one flag per cluster ({heatmaps.shape[1]}), got "
                         f"{tuple(is_object.shape)}")
    best = nearest_cluster(heatmaps)
    return torch.where(best >= 0, is_object[best.clamp(min=0)], torch.ones_like(best, dtype=torch.bool))


def suppress_scores(scores: Tensor, patterns: Tensor, means: Tensor, is_object: Tensor) -> Tensor:
    """Step (iv): S^y_u(X) <- -inf where the region's nearest cluster is a distractor.

    ``scores`` (B, h, w) the class's score map; ``patterns`` (B, K, h, w); ``means`` (k, K);
    ``is_object`` (k,) bool. Returns a new (B, h, w) map.
    """
    keep = object_regions(cluster_heatmaps(patterns, means), is_object)
    return scores.masked_fill(~keep, float("-inf"))
