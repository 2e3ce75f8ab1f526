"""LSD-C's network: a backbone from :mod:`thesislib.nn` with a rotation head (RotNet pre-training)
and then a linear clustering head Ψ with K outputs (p = softmax(Ψ(f)), thesis ch. 7 §3)."""

from __future__ import annotations

from torch import nn

from thesislib.methods.lsdc.config import LSDCParams
from thesislib.nn.staged_backbone import staged_backbone

CLUSTER_HEAD = "cluster"
ROTATION_HEAD = "rotation"


def build_backbone(params: LSDCParams, heads: dict[str, int]) -> nn.Module:
    """The staged MLP (digits, 64 inputs) or the CIFAR ResNet-18, with ``heads``."""
    return staged_backbone(params.backbone, heads, mlp_widths=params.mlp_widths, resnet_width=params.resnet_width)


def to_clustering(model: nn.Module, num_clusters: int) -> nn.Module:
    """Replace every head of a (pre-trained) model by one linear clustering head of K outputs."""
    model.heads = nn.ModuleDict({CLUSTER_HEAD: nn.Linear(model.num_features, num_clusters)})
    return model
