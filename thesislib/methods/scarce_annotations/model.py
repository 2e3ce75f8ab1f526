"""The chapter's network: the backbone of :mod:`thesislib.nn` (staged MLP for the digits, CIFAR
ResNet-18 at full scale, built by :func:`thesislib.nn.staged_backbone.staged_backbone`) with a 4-way
rotation head for RotNet, then a C-way linear classifier (thesis ch. 5 §3, "replace the last layer")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from thesislib.methods.scarce_annotations.config import ScarceParams
from thesislib.nn.resnet_cifar import freeze_stages
from thesislib.nn.staged_backbone import staged_backbone
from thesislib.repro import seed_everything

CLASS_HEAD = "classifier"
ROTATION_HEAD = "rotation"


def rotnet_model(params: ScarceParams) -> nn.Module:
    """A fresh backbone with the rotation head (64 inputs for the MLP; 3-channel 32x32 for ResNet-18)."""
    return staged_backbone(params.backbone, {ROTATION_HEAD: 4}, mlp_widths=params.mlp_widths,
                           resnet_width=params.resnet_width)


def classifier_model(params: ScarceParams, state: dict[str, Tensor] | None, seed: int | None = None) -> nn.Module:
    """N_t of Algorithm 1: the RotNet weights ``state``, the stem and the first ``frozen_stages`` stages
    frozen, and a new C-way classifier whose initialisation is seeded from ``seed`` (default ``params.seed``,
    so every method of a replicate starts from the same weights; each re-initialisation of Algorithm 1
    passes its cycle's own seed)."""
    model = rotnet_model(params)
    if state is not None:
        model.load_state_dict(state)
    seed_everything(params.seed if seed is None else seed)
    model.heads = nn.ModuleDict({CLASS_HEAD: nn.Linear(model.num_features, params.num_classes)})
    freeze_stages(model, params.frozen_stages)
    return model


def trainable_only_heads(model: nn.Module) -> dict[str, bool]:
    """Make only the heads trainable; returns the previous ``requires_grad`` of every parameter."""
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("heads."))
    return before


def restore_trainable(model: nn.Module, before: dict[str, bool]) -> None:
    """Undo :func:`trainable_only_heads`."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.requires_grad_(before[n])
