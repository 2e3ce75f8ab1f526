"""A multi-head MLP in stages: the CPU stand-in for the CIFAR ResNet-18 of Rebuffi chapters 5-7.

It has the interface of :class:`thesislib.nn.resnet_cifar.CifarResNet` that the self-supervised and
clustering code relies on: ``stages`` (blocks in order, so :func:`~thesislib.nn.resnet_cifar.freeze_stages`
freezes the first ``n``), ``features(x)`` (B, num_features), ``heads`` (a ``ModuleDict`` of linear
heads on the feature) and ``forward(x) -> {head: logits}``. Inputs (B, ...) are flattened, so 8x8
digits can stay images (B, 1, 8, 8) for the rotation pretext task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn


class StagedMLP(nn.Module):
    """``Linear -> BatchNorm1d -> ReLU`` per stage; (B, ...) -> {head: (B, n_head)}."""

    def __init__(self, in_features: int, widths: Sequence[int], heads: Mapping[str, int]) -> None:
        super().__init__()
        if in_features < 1 or not widths or min(widths) < 1:
            raise ValueError("StagedMLP needs in_features >= 1 and at least one stage of width >= 1")
        stages, width = [], int(in_features)
        for w in widths:
            stages.append(nn.Sequential(nn.Linear(width, int(w), bias=False), nn.BatchNorm1d(int(w)),
                                        nn.ReLU(inplace=True)))
            width = int(w)
        self.stages = nn.ModuleList(stages)
        self.num_features = width
        if "features" in heads:
            raise ValueError("a head cannot be called 'features' (forward returns the feature under that key)")
        self.heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in heads.items()})

    def features(self, x: Tensor) -> Tensor:
        """The last stage's activation (B, num_features)."""
        out = torch.flatten(x, 1)
        for stage in self.stages:
            out = stage(out)
        return out

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f = self.features(x)
        return {"features": f, **{name: head(f) for name, head in self.heads.items()}}
