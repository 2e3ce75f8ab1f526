"""AutoNovel's two-headed network (thesis ch. 6 Fig. 1): a backbone from :mod:`thesislib.nn` with
head 1 η^l over the labelled classes and head 2 η^u, the clustering head over the new classes."""

from __future__ import annotations

import torch
from torch import nn

from thesislib.methods.autonovel.config import AutoNovelParams
from thesislib.nn.staged_backbone import staged_backbone

HEAD1, HEAD2, ROTATION = "head1", "head2", "rotation"


def build_backbone(params: AutoNovelParams, heads: dict[str, int]) -> nn.Module:
    """The staged MLP or the CIFAR ResNet-18 with AutoNovel's ReLU on the pooled feature, with ``heads``."""
    return staged_backbone(params.backbone, heads, mlp_widths=params.mlp_widths, resnet_width=params.resnet_width,
                           feature_relu=True)


def set_heads(model: nn.Module, heads: dict[str, int]) -> nn.Module:
    """Replace the heads of ``model`` by new linear ones (e.g. RotNet's by head 1)."""
    model.heads = nn.ModuleDict({name: nn.Linear(model.num_features, n) for name, n in heads.items()})
    return model


@torch.no_grad()
def extend_head(head: nn.Linear, extra: int) -> nn.Linear:
    """I.L.: head 1 with ``extra`` new outputs. The old rows and biases are copied; the new rows are
    random and, as the released code, the new biases start at min(old biases) - 1."""
    new = nn.Linear(head.in_features, head.out_features + extra).to(head.weight.device)
    new.weight[: head.out_features] = head.weight
    new.bias.fill_(float(head.bias.min()) - 1.0)
    new.bias[: head.out_features] = head.bias
    return new
