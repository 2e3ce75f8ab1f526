"""LSD-C's network: a backbone from :mod:`thesislib.nn` with a rotation head (RotNet pre-training)
and then a clustering head Ψ with K outputs (p = softmax(Ψ(f)), thesis ch. 7 §3): linear, as the
method, or the 2-layer classifier of Table 6 (``head = mlp``)."""

from __future__ import annotations

from torch import Tensor, nn

from thesislib.methods.lsdc.config import LSDCParams
from thesislib.nn.mlp import mlp
from thesislib.nn.staged_backbone import staged_backbone

CLUSTER_HEAD = "cluster"
ROTATION_HEAD = "rotation"


def build_backbone(params: LSDCParams, heads: dict[str, int]) -> nn.Module:
    """The staged MLP (digits: 64 inputs; Reuters-10K: 2,000), the CIFAR ResNet-18 or MNIST's VGG-4-like
    network, with ``heads``."""
    return staged_backbone(params.backbone, heads, mlp_widths=params.mlp_widths, resnet_width=params.resnet_width,
                           in_features=params.in_features)


def pretrain_heads(params: LSDCParams) -> dict[str, int]:
    """The heads the pre-trained network carries: RotNet's 4-way rotation head, none after the DAE."""
    return {ROTATION_HEAD: 4} if params.pretrain == "rotnet" else {}


class DenoisingAutoencoder(nn.Module):
    """The staged-MLP encoder Φ (D_in -> w_1 -> ... -> w_L) and a mirrored decoder (w_L -> ... -> w_1 ->
    D_in, Linear + ReLU between, linear output). ``forward(x)`` (B, D_in) -> reconstruction (B, D_in)."""

    def __init__(self, encoder: nn.Module, in_features: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.encoder = encoder
        sizes = [*reversed(widths), in_features]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder.features(x))


def clustering_head(num_features: int, num_clusters: int, head: str = "linear") -> nn.Module:
    """Ψ: (B, D) -> (B, K) logits. ``linear``: one Linear(D, K); ``mlp``: Table 6's 2-layer classifier,
    Linear(D, D) -> BatchNorm1d -> ReLU -> Linear(D, K) (hidden width D, config docstring)."""
    if head == "linear":
        return nn.Linear(num_features, num_clusters)
    if head == "mlp":
        return mlp(num_features, num_clusters, hidden=(num_features,), batch_norm=True)
    raise ValueError(f"unknown clustering head {head!r}; valid names are: linear, mlp")


def to_clustering(model: nn.Module, num_clusters: int, head: str = "linear") -> nn.Module:
    """Replace every head of a (pre-trained) model by one clustering head of K outputs
    (:func:`clustering_head`)."""
    model.heads = nn.ModuleDict({CLUSTER_HEAD: clustering_head(model.num_features, num_clusters, head)})
    return model
