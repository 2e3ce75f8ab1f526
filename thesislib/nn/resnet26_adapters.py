"""ResNet-26 for 64x64 inputs with domain-specific batch norm, heads and residual adapters.

Rebuffi's thesis, chapters 3-4 (study note 003, §1.2 and §2.2). One network serves ``T`` visual
domains: the 3x3 filters are shared (domain-agnostic); every domain ``d`` has its own batch norms,
its own classifier and, optionally, its own 1x1 adapters:

* **series** (Ch. 3, Fig. 2): after each 3x3 convolution, ``y = x + alpha_d * BN_d'(x)`` then the
  domain BN, i.e. ``g(x; alpha) = x + alpha * x`` (Ch. 3 eq. 2) with the BN of footnote 1 before
  the adapter convolution;
* **parallel** (Ch. 4 eq. 3, Fig. 2b): ``y = BN_d(f * x + alpha_d * x)``, the 1x1 filter bank
  reading the 3x3 convolution's *input* with its stride (an affine reparametrisation that only
  changes the filters' centre taps).

Both adapters start at ``alpha = 0``: the module is then the identity (series) or the plain
convolution (parallel), so adding them to a pre-trained network leaves its function unchanged
(thesis: "when alpha = 0 the module is the identity"; the released code draws them at random).

Architecture (thesis Ch. 3 §3 and the released ``resnet26``): a stem ``conv_task`` (3x3 conv,
32·w channels, stride 1, domain BN), three stages of ``blocks`` residual units with 64·w, 128·w,
256·w channels whose first unit halves the resolution (stride 2; shortcut ``AvgPool2d(2)`` and
zero channels), each unit ``conv_task -> ReLU -> conv_task -> + shortcut -> ReLU``; then the
domain BN + ReLU, global average pooling and the domain's linear classifier. ``blocks=(4, 4, 4)``
is ResNet-26 (2 + 3·4·2 weighted layers); 64x64 inputs give 64 -> 32 -> 16 -> 8.

Where adapters go (``placement``, Ch. 4 §3.3): ``"all"`` (every conv_task), ``"early"`` /
``"mid"`` / ``"late"`` (the units of stage 1 / 2 / 3 only), ``"half"`` (the second conv of every
unit only, the "1.5x" model). The stem ``conv_task`` keeps its adapter in every placement, as in the
released code (its ``conv_task`` always builds one; the thesis's placements name the stages only).

Images (B, 3, H, W) -> logits (B, classes of domain d): ``model(x, domain=d)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Adapter = Literal["none", "series", "parallel"]
Placement = Literal["all", "early", "mid", "late", "half"]
ADAPTERS: tuple[str, ...] = ("none", "series", "parallel")
PLACEMENTS: tuple[str, ...] = ("all", "early", "mid", "late", "half")
STAGE_OF_PLACEMENT = {"early": 1, "mid": 2, "late": 3}


class SeriesAdapter(nn.Module):
    """``x + conv1x1(BN(x))`` on (B, C, H, W) -> (B, C, H, W) (Ch. 3 eq. 2 with footnote 1's BN).

    The 1x1 weight (C, C, 1, 1) starts at zero, so the adapter starts as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        nn.init.zeros_(self.conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.bn(x))


class DomainConv(nn.Module):
    """The released code's ``conv_task``: a shared 3x3 conv, the domain's adapter, the domain's BN.

    (B, c_in, H, W) -> (B, c_out, H/stride, W/stride). ``adapters[d]`` is a :class:`SeriesAdapter`
    or a 1x1 ``Conv2d(c_in, c_out, stride)`` (parallel, zero at start); after
    :func:`thesislib.nn.adapter_svd.compress_parallel_adapters` the parallel adapter of domain ``d``
    is ``basis(adapters[d](x))``: a per-domain ``Conv2d(c_in, K)`` followed by the shared, frozen
    ``basis`` ``Conv2d(K, c_out)`` (Ch. 4 eq. 5).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, n_domains: int, adapter: Adapter) -> None:
        super().__init__()
        if adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {ADAPTERS}, got {adapter!r}")
        self.c_in, self.c_out, self.stride, self.adapter = c_in, c_out, stride, adapter
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(n_domains))
        self.basis: nn.Conv2d | None = None
        self.adapters = nn.ModuleList(self.new_adapter() for _ in range(n_domains)) if adapter != "none" else None

    def new_adapter(self) -> nn.Module:
        """A fresh adapter of this layer's kind, at zero (identity / plain convolution). After the
        joint SVD (``basis`` set) a parallel adapter is the domain's own factor ``Conv2d(c_in, K)``."""
        if self.adapter == "series":
            return SeriesAdapter(self.c_out)
        out = self.basis.in_channels if self.basis is not None else self.c_out
        conv = nn.Conv2d(self.c_in, out, 1, stride=self.stride, bias=False)
        nn.init.zeros_(conv.weight)
        return conv

    def forward(self, x: Tensor, domain: int) -> Tensor:
        y = self.conv(x)
        if self.adapter == "series":
            y = self.adapters[domain](y)
        elif self.adapter == "parallel":
            a = self.adapters[domain](x)
            y = y + (self.basis(a) if self.basis is not None else a)
        return self.bns[domain](y)


class ResidualUnit(nn.Module):
    """``relu(conv2(relu(conv1(x))) + shortcut(x))``; shortcut ``AvgPool2d(2)`` + zero channels
    when the unit downsamples (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int, stride: int, n_domains: int, adapters: tuple[Adapter, Adapter]) -> None:
        super().__init__()
        self.conv1 = DomainConv(c_in, c_out, stride, n_domains, adapters[0])
        self.conv2 = DomainConv(c_out, c_out, 1, n_domains, adapters[1])
        self.project = stride != 1 or c_in != c_out
        self.pad = c_out - c_in
        if self.pad < 0:
            raise ValueError(f"a unit cannot shrink channels ({c_in} -> {c_out})")

    def forward(self, x: Tensor, domain: int) -> Tensor:
        y = self.conv2(F.relu(self.conv1(x, domain)), domain)
        shortcut = x
        if self.project:
            shortcut = F.avg_pool2d(x, 2) if self.conv1.stride == 2 else x
            if self.pad:
                shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.pad))
        return F.relu(y + shortcut)


class MultiDomainResNet(nn.Module):
    """ResNet-26 (``blocks=(4, 4, 4)``) with per-domain BN, heads and adapters (module docstring).

    Args:
        num_classes: classes of each domain (its length is the number of domains ``T``).
        adapter: ``"none"``, ``"series"`` or ``"parallel"``.
        placement: where adapters go (``"all"``, ``"early"``, ``"mid"``, ``"late"``, ``"half"``).
        width: the released code's ``factor`` (channels 32·w, 64·w, 128·w, 256·w; Ch. 4 Fig. 4a).
        blocks: residual units per stage.

    ``forward(x (B, 3, H, W), domain)`` -> logits (B, num_classes[domain]); ``features`` gives the
    pooled (B, 256·w). Convolutions are initialised N(0, sqrt(2 / (k² C_out))) as in the code, BN
    weight 1 and bias 0; adapters at zero.
    """

    def __init__(self, num_classes: Sequence[int], adapter: Adapter = "none", placement: Placement = "all",
                 width: float = 1.0, blocks: Sequence[int] = (4, 4, 4)) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if len(blocks) != 3 or any(b < 1 for b in blocks):
            raise ValueError(f"blocks must give 3 positive unit counts, got {tuple(blocks)}")
        if not num_classes or any(c < 1 for c in num_classes):
            raise ValueError(f"num_classes needs one positive class count per domain, got {tuple(num_classes)}")
        self.adapter, self.placement, self.width = adapter, placement, width
        self.blocks = tuple(int(b) for b in blocks)
        n = len(num_classes)
        widths = [max(1, int(round(c * width))) for c in (32, 64, 128, 256)]
        self.num_features = widths[3]
        self.stem = DomainConv(3, widths[0], 1, n, adapter)  # every placement (module docstring)
        stages = []
        c_in = widths[0]
        for s, (c_out, count) in enumerate(zip(widths[1:], self.blocks), start=1):
            units = []
            for u in range(count):
                units.append(ResidualUnit(c_in, c_out, 2 if u == 0 else 1, n, self._unit_adapters(s)))
                c_in = c_out
            stages.append(nn.ModuleList(units))
        self.stages = nn.ModuleList(stages)
        self.end_bns = nn.ModuleList(nn.BatchNorm2d(widths[3]) for _ in range(n))
        self.heads = nn.ModuleList(nn.Linear(widths[3], c) for c in num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (9 * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _unit_adapters(self, stage: int) -> tuple[Adapter, Adapter]:
        a = self.adapter
        if a == "none" or self.placement == "all":
            return a, a
        if self.placement == "half":
            return "none", a
        return (a, a) if STAGE_OF_PLACEMENT[self.placement] == stage else ("none", "none")

    @property
    def n_domains(self) -> int:
        return len(self.heads)

    @property
    def num_classes(self) -> list[int]:
        return [h.out_features for h in self.heads]

    def domain_convs(self) -> Iterator[DomainConv]:
        """Every :class:`DomainConv` in forward order (stem, then the units' conv1, conv2)."""
        yield self.stem
        for stage in self.stages:
            for unit in stage:
                yield unit.conv1
                yield unit.conv2

    def features(self, x: Tensor, domain: int = 0) -> Tensor:
        """(B, 3, H, W) -> pooled features (B, 256·w) of domain ``domain``."""
        if not 0 <= domain < self.n_domains:
            raise IndexError(f"domain {domain} out of range: the network has {self.n_domains} domains")
        y = self.stem(x, domain)
        for stage in self.stages:
            for unit in stage:
                y = unit(y, domain)
        y = F.relu(self.end_bns[domain](y))
        return y.mean(dim=(2, 3))

    def forward(self, x: Tensor, domain: int = 0) -> Tensor:
        return self.heads[domain](self.features(x, domain))

    @torch.no_grad()
    def add_domain(self, num_classes: int, init_from: int | None = 0) -> int:
        """Append a domain and return its index: its BNs (and adapters) copied from domain
        ``init_from`` (the pre-training domain; ``None``: fresh, BN at 1/0 and adapters at zero),
        a new linear head with ``num_classes`` outputs."""
        for conv in self.domain_convs():
            conv.bns.append(copy.deepcopy(conv.bns[init_from]) if init_from is not None
                            else nn.BatchNorm2d(conv.c_out))
            if conv.adapters is not None:
                conv.adapters.append(copy.deepcopy(conv.adapters[init_from]) if init_from is not None
                                     else conv.new_adapter())
        self.end_bns.append(copy.deepcopy(self.end_bns[init_from]) if init_from is not None
                            else nn.BatchNorm2d(self.num_features))
        self.heads.append(nn.Linear(self.num_features, num_classes))
        return self.n_domains - 1


class DomainView(nn.Module):
    """One domain of a :class:`MultiDomainResNet` as an ordinary classifier: (B, 3, H, W) -> logits.

    The parameters are the multi-domain network's own (nothing is copied), so training the view
    trains that domain's part of the network. ``frozen_bn``: BN layers that must keep using their
    running statistics in training mode (the feature extractor's frozen BNs).

    The frozen BNs are found again at every :meth:`train` by their running-mean buffer, not kept as
    module objects: the engine converts BNs to ``SyncBatchNorm`` under DDP
    (``nn.SyncBatchNorm.convert_sync_batchnorm`` makes new modules that share the old parameters and
    buffers), and the old objects would no longer be in the network."""

    def __init__(self, net: MultiDomainResNet, domain: int, frozen_bn: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.net, self.domain = net, int(domain)
        self._frozen_ids = frozenset(id(bn.running_mean) for bn in frozen_bn)
        if any(getattr(bn, "running_mean", None) is None for bn in frozen_bn):
            raise ValueError("frozen_bn: every module must be a BatchNorm with running statistics")

    def frozen_bns(self) -> list[nn.Module]:
        """The frozen BN modules as they are now in the network (after any SyncBatchNorm conversion)."""
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                and id(m.running_mean) in self._frozen_ids]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.domain)

    def train(self, mode: bool = True) -> DomainView:
        super().train(mode)
        for bn in self.frozen_bns():
            bn.eval()
        return self


def resnet26(num_classes: Sequence[int] | int = 10, adapter: Adapter = "none", placement: Placement = "all",
             width: float = 1.0, blocks: Sequence[int] = (4, 4, 4)) -> MultiDomainResNet:
    """:class:`MultiDomainResNet`; an int ``num_classes`` is one domain."""
    classes = [num_classes] if isinstance(num_classes, int) else list(num_classes)
    return MultiDomainResNet(classes, adapter=adapter, placement=placement, width=width, blocks=blocks)


def domain_predictor(n_domains: int, width: float = 1.0) -> MultiDomainResNet:
    """The unknown-domain setting's domain classifier (Ch. 3 §5.2 "dom-pred"): a light ResNet of
    three stages of two units ("half as deep as the original net"), one domain, ``n_domains``
    outputs. Images (B, 3, H, W) -> domain logits (B, n_domains)."""
    return MultiDomainResNet([n_domains], adapter="none", width=width, blocks=(2, 2, 2))
