"""Which parameters a domain trains, and their weight-decay groups (Rebuffi Ch. 3 §3, Ch. 4 §3.3).

The learning modes of the decathlon tables, for domain ``d`` of a
:class:`~thesislib.nn.resnet26_adapters.MultiDomainResNet`:

==========  =====================================================================================
mode        trained parameters (everything else frozen)
==========  =====================================================================================
scratch     all of a freshly initialised network (shared 3x3 filters + domain d's BN and head)
feature     domain d's classifier only; its BNs are the source's, frozen, on running statistics
bn          domain d's BNs (scale, bias, statistics) and classifier ("BN adapt.")
adapters    domain d's adapters (series or parallel), their BNs, d's BNs and classifier
finetune    the shared 3x3 filters and all of domain d's parameters (a copy of the network per domain)
==========  =====================================================================================

Parameter groups (:func:`param_groups`) follow the released code's optimiser, which decays the
3x3 filters, the 1x1 adapter filters and the rest (BN, classifier) with their own coefficients
(``wd3x3``, ``wd1x1``, ``wd``); the classifier gets its own group here so the three can be set
apart (the code uses ``wd`` for BN and classifier alike).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from thesislib.data.round_robin import center_crop
from thesislib.nn.resnet26_adapters import DomainConv, DomainView, MultiDomainResNet

Mode = Literal["scratch", "feature", "bn", "adapters", "finetune"]
MODES: tuple[str, ...] = ("scratch", "feature", "bn", "adapters", "finetune")
GROUPS: tuple[str, ...] = ("conv3x3", "adapter", "bn", "head")


@dataclass(frozen=True)
class WeightDecay:
    """Weight decay per parameter group (``conv3x3``: shared filters, ``adapter``: 1x1 adapter
    filters, ``bn``: BN scales and biases, ``head``: classifier)."""

    conv3x3: float = 5e-4
    adapter: float = 5e-4
    bn: float = 0.0
    head: float = 5e-4


def _conv_domain_params(conv: DomainConv, d: int) -> Iterator[tuple[str, nn.Parameter]]:
    for p in conv.bns[d].parameters():
        yield "bn", p
    if conv.adapters is not None:
        adapter = conv.adapters[d]
        for name, p in adapter.named_parameters():
            yield ("bn" if name.startswith("bn.") else "adapter"), p


def domain_parameters(net: MultiDomainResNet, d: int) -> list[tuple[str, nn.Parameter]]:
    """Domain ``d``'s own parameters with their group: BNs, adapters (and their BNs), classifier."""
    out: list[tuple[str, nn.Parameter]] = []
    for conv in net.domain_convs():
        out.extend(_conv_domain_params(conv, d))
    out += [("bn", p) for p in net.end_bns[d].parameters()]
    out += [("head", p) for p in net.heads[d].parameters()]
    return out


def shared_parameters(net: MultiDomainResNet) -> list[tuple[str, nn.Parameter]]:
    """The domain-agnostic parameters: the 3x3 filters (and a compressed adapter basis, group
    ``adapter``, which Ch. 4 §3.4 freezes after the joint SVD)."""
    out = [("conv3x3", conv.conv.weight) for conv in net.domain_convs()]
    out += [("adapter", conv.basis.weight) for conv in net.domain_convs() if conv.basis is not None]
    return out


def trainable_parameters(net: MultiDomainResNet, d: int, mode: Mode) -> list[tuple[str, nn.Parameter]]:
    """(group, parameter) pairs domain ``d`` trains in ``mode`` (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    own = domain_parameters(net, d)
    if mode == "feature":
        return [(g, p) for g, p in own if g == "head"]
    if mode == "bn":
        adapter_bn = {id(p) for conv in net.domain_convs() if conv.adapters is not None
                      for p in conv.adapters[d].parameters()}
        return [(g, p) for g, p in own if g == "head" or (g == "bn" and id(p) not in adapter_bn)]
    if mode == "adapters":
        if net.adapter == "none":
            raise ValueError("mode 'adapters' needs a network built with series or parallel adapters")
        return own
    shared = [(g, p) for g, p in shared_parameters(net) if g == "conv3x3"]
    return shared + own


def prepare_domain(net: MultiDomainResNet, d: int, mode: Mode) -> DomainView:
    """Freeze everything but what ``mode`` trains for domain ``d`` (``requires_grad``), and return
    the domain's :class:`DomainView` (whose frozen BNs stay on running statistics in training mode)."""
    train = {id(p) for _, p in trainable_parameters(net, d, mode)}
    for p in net.parameters():
        p.requires_grad_(id(p) in train)
    frozen = []
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None and id(m.weight) not in train:
            frozen.append(m)
    return DomainView(net, d, frozen_bn=frozen)


def param_groups(net: MultiDomainResNet, d: int, mode: Mode, decay: WeightDecay | Mapping[str, float]
                 ) -> list[dict[str, object]]:
    """Optimiser parameter groups of domain ``d`` in ``mode``: one per non-empty group of
    :data:`GROUPS`, each with its ``weight_decay`` and a ``name``."""
    wd = decay if isinstance(decay, Mapping) else {g: getattr(decay, g) for g in GROUPS}
    unknown = [k for k in wd if k not in GROUPS]
    if unknown:
        raise ValueError(f"unknown weight-decay group(s) {unknown}; groups are {GROUPS}")
    by_group: dict[str, list[nn.Parameter]] = {g: [] for g in GROUPS}
    for group, p in trainable_parameters(net, d, mode):
        by_group[group].append(p)
    return [{"params": ps, "weight_decay": float(wd.get(g, 0.0)), "name": g} for g, ps in by_group.items() if ps]


def copy_domain(src: MultiDomainResNet, src_domain: int, dst: MultiDomainResNet, dst_domain: int) -> None:
    """Copy domain ``src_domain``'s own modules (BNs, adapters, end BN, classifier) of ``src`` into
    domain ``dst_domain`` of ``dst`` (same architecture): how separately trained domains are joined
    into one multi-domain network (e.g. before the joint SVD of Ch. 4 §3.4)."""
    pairs = list(zip(src.domain_convs(), dst.domain_convs(), strict=True))
    for a, b in pairs:
        b.bns[dst_domain].load_state_dict(a.bns[src_domain].state_dict())
        if a.adapters is not None and b.adapters is not None:
            b.adapters[dst_domain].load_state_dict(a.adapters[src_domain].state_dict())
    dst.end_bns[dst_domain].load_state_dict(src.end_bns[src_domain].state_dict())
    dst.heads[dst_domain].load_state_dict(src.heads[src_domain].state_dict())


def joint_param_groups(net: MultiDomainResNet, decays: Sequence[WeightDecay]) -> list[dict[str, object]]:
    """Optimiser groups of "finetune all" (Ch. 3 §5): the shared 3x3 filters and *every* domain's
    own parameters, domain ``d``'s adapter / BN / head groups with ``decays[d]`` (one
    :class:`WeightDecay` per domain: per-domain adapter decay, study note 003 §2.3); the shared
    filters take ``decays[0].conv3x3``. Group names: ``conv3x3`` and ``<group>/<d>``."""
    if len(decays) != net.n_domains:
        raise ValueError(f"one WeightDecay per domain: the network has {net.n_domains}, got {len(decays)}")
    groups: list[dict[str, object]] = [{"params": [p for g, p in shared_parameters(net) if g == "conv3x3"],
                                        "weight_decay": float(decays[0].conv3x3), "name": "conv3x3"}]
    for d, decay in enumerate(decays):
        by_group: dict[str, list[nn.Parameter]] = {g: [] for g in GROUPS}
        for group, p in domain_parameters(net, d):
            by_group[group].append(p)
        groups += [{"params": ps, "weight_decay": float(getattr(decay, g)), "name": f"{g}/{d}"}
                   for g, ps in by_group.items() if ps]
    return groups


class RoutedNetwork(nn.Module):
    """The unknown-domain setting (Ch. 3 §5.2 "dom-pred"): a domain predictor picks the domain of
    each image, and the image goes through that domain's BNs, adapters and classifier.

    ``predictor``: (B, 3, crop, crop) -> (B, T) domain logits (it sees the centre ``crop`` x
    ``crop`` window: domains may differ in image size); ``net``: a :class:`MultiDomainResNet`
    with the same ``T`` domains in the same order. ``forward(x (B, 3, H, W))`` -> (B, 2) int64:
    column 0 the predicted domain, column 1 the class predicted by that domain's head (in that
    domain's label space). Grouping by predicted domain needs the group sizes on the host (one
    sync per domain and batch, at evaluation only)."""

    def __init__(self, predictor: nn.Module, net: MultiDomainResNet, crop: int) -> None:
        super().__init__()
        self.predictor, self.net, self.crop = predictor, net, int(crop)

    def forward(self, x: Tensor) -> Tensor:
        domain = self.predictor(center_crop(x, self.crop)).argmax(1)
        classes = torch.zeros_like(domain)
        for d in range(self.net.n_domains):
            rows = (domain == d).nonzero().squeeze(1)
            if rows.numel():
                classes[rows] = self.net(x[rows], d).argmax(1)
        return torch.stack([domain, classes], dim=1)
