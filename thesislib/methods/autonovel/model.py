"""AutoNovel's two-headed network (thesis ch. 6 Fig. 1): a backbone from :mod:`thesislib.nn` with
head 1 η^l over the labelled classes and head 2 η^u, the clustering head over the new classes."""

from __future__ import annotations

import torch
from torch import nn

from thesislib.methods.autonovel.config import AutoNovelParams
from thesislib.nn.mlp import MLP
from thesislib.nn.staged_backbone import staged_backbone

HEAD1, HEAD2, ROTATION = "head1", "head2", "rotation"


def build_backbone(params: AutoNovelParams, heads: dict[str, int]) -> nn.Module:
    """The staged MLP or the CIFAR ResNet-18 with AutoNovel's ReLU on the pooled feature, with ``heads``."""
    return staged_backbone(params.backbone, heads, mlp_widths=params.mlp_widths, resnet_width=params.resnet_width,
                           feature_relu=True)


def pretrain_heads(params: AutoNovelParams) -> dict[str, int]:
    """The heads of the pre-trained network: RotNet's rotation head; none after metric learning."""
    return {ROTATION: 4} if params.pretrain == "rotnet" else {}


def new_head(model: nn.Module, n: int) -> nn.Module:
    """A head of ``n`` outputs on the model's feature: the backbone's own kind (VGG-6: two layers) or linear."""
    make = getattr(model, "make_head", None)
    return make(n) if make is not None else nn.Linear(model.num_features, n)


def set_heads(model: nn.Module, heads: dict[str, int]) -> nn.Module:
    """Replace the heads of ``model`` by new ones (e.g. RotNet's by head 1; :func:`new_head`)."""
    model.heads = nn.ModuleDict({name: new_head(model, n) for name, n in heads.items()})
    return model


@torch.no_grad()
def extend_head(head: nn.Module, extra: int) -> nn.Module:
    """I.L.: head 1 with ``extra`` new outputs. The old rows and biases are copied; the new rows are
    random and, as the released code, the new biases start at min(old biases) - 1. A two-layer head
    (:class:`~thesislib.nn.mlp.MLP`) keeps its hidden layer and extends its last linear layer."""
    if isinstance(head, MLP):
        head.head = extend_head(head.head, extra)
        head.num_outputs += extra
        return head
    new = nn.Linear(head.in_features, head.out_features + extra).to(head.weight.device)
    new.weight[: head.out_features] = head.weight
    new.bias.fill_(float(head.bias.min()) - 1.0)
    new.bias[: head.out_features] = head.bias
    return new
