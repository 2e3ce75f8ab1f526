"""The chapter's network: the backbone of :mod:`thesislib.nn` (staged MLP for the digits, CIFAR
ResNet-18 at full scale, built by :func:`thesislib.nn.staged_backbone.staged_backbone`) with a 4-way
rotation head for RotNet (or a 1,000-way head for the Downsampled-ImageNet pre-training of Table 2, or
torchvision's ImageNet trunk for full-size images), then a C-way linear classifier (thesis ch. 5 §3, "replace the
last layer"); Mean Teacher adds its consistency head (Tarvainen & Valpola)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from thesislib.methods.scarce_annotations.config import ScarceParams
from thesislib.nn.resnet_cifar import freeze_stages
from thesislib.nn.staged_backbone import staged_backbone
from thesislib.repro import seed_everything

CLASS_HEAD = "classifier"
CONS_HEAD = "consistency"
ROTATION_HEAD = "rotation"
IMAGENET_HEAD = "imagenet"


def rotnet_model(params: ScarceParams) -> nn.Module:
    """A fresh backbone with the rotation head (64 inputs for the MLP; 3-channel images for the ResNet-18s)."""
    return staged_backbone(params.backbone, {ROTATION_HEAD: 4}, mlp_widths=params.mlp_widths,
                           resnet_width=params.resnet_width)


def imagenet_model(params: ScarceParams) -> nn.Module:
    """The ImageNet-pretrained network of Table 2: torchvision's ImageNet ResNet-18 read from ``imagenet_weights``
    (``resnet18_imagenet``; its 1,000-way head not kept), or a fresh CIFAR ResNet-18 with a 1,000-way head to be
    trained on Downsampled ImageNet 32x32 (``resnet18``)."""
    if params.backbone == "resnet18_imagenet":
        return staged_backbone(params.backbone, {IMAGENET_HEAD: 1000}, weights_path=params.imagenet_weights)
    return staged_backbone(params.backbone, {IMAGENET_HEAD: 1000}, resnet_width=params.resnet_width)


def load_trunk(model: nn.Module, state: dict[str, Tensor], keep_heads: bool = False) -> None:
    """Load the non-head entries of ``state`` (every one the model's trunk has, or a ValueError naming the
    missing); with ``keep_heads`` also the ``heads.*`` entries whose head ``model`` has (the refinement keeps
    Mean Teacher's classification layer)."""
    own = model.state_dict()
    trunk = {k: v for k, v in state.items() if not k.startswith("heads.")}
    missing = sorted(k for k in own if not k.startswith("heads.") and k not in trunk)
    if missing:
        raise ValueError(f"the initial weights lack {len(missing)} trunk entries of the {type(model).__name__} "
                         f"(first: {', '.join(missing[:3])}); pass the state dict of this backbone")
    if keep_heads:
        trunk.update({k: v for k, v in state.items() if k.startswith("heads.") and k in own})
    model.load_state_dict(trunk, strict=False)


def classifier_model(params: ScarceParams, state: dict[str, Tensor] | None, seed: int | None = None,
                     keep_heads: bool = False) -> nn.Module:
    """N_t of Algorithm 1: the trunk of the pre-trained weights ``state`` (RotNet or ImageNet; None: random), the
    stem and the first ``frozen_stages`` stages frozen, and a new C-way classifier whose initialisation is
    seeded from ``seed`` (default ``params.seed``, so every method of a replicate starts from the same weights;
    each re-initialisation of Algorithm 1 passes its cycle's own seed). Mean Teacher with two heads
    (``params.mt_two_heads``) gets the consistency head as well. ``keep_heads``: the heads of ``state`` replace
    the new ones (refinement: restart from the Mean Teacher network, classification layer included). A random trunk
    (``state`` None) is seeded from the same seed first, so it does not depend on the order of the variants."""
    if state is None:        # a random trunk (mt-scratch) is seeded too, not left to the RNG the earlier variants used
        seed_everything(params.seed if seed is None else seed)
    model = rotnet_model(params)
    if state is not None:
        load_trunk(model, state)
    seed_everything(params.seed if seed is None else seed)
    heads = {CLASS_HEAD: nn.Linear(model.num_features, params.num_classes)}
    if params.mt_two_heads:
        heads[CONS_HEAD] = nn.Linear(model.num_features, params.num_classes)
    model.heads = nn.ModuleDict(heads)
    if state is not None and keep_heads:
        load_trunk(model, state, keep_heads=True)
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
