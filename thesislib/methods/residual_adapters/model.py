"""The chapter's networks: :class:`~thesislib.nn.resnet26_adapters.MultiDomainResNet` at the
configured width and depth, and the start of each learning method (thesis Ch. 3 Table 1).

A method's run starts from a *copy* of a pre-trained network with the target appended as a new
domain (its BNs and adapters copied from the source, a new classifier), then trains what its mode
allows (:mod:`thesislib.nn.multidomain`):

==================  ===============================  ===========
method              starts from                      mode
==================  ===============================  ===========
scratch             a random network                 scratch
feature             pre-trained with series adapters feature
bn                  plain pre-trained                bn
series              pre-trained with series adapters adapters
finetune            plain pre-trained                finetune
parallel (Ch. 4)    plain pre-trained + parallel     adapters
series_posthoc      plain pre-trained + series       adapters
series_decay        pre-trained with series adapters adapters (per-domain adapter decay)
finetune_all        pre-trained with series adapters finetune, every domain at once (train.train_finetune_all)
dompred             the series runs, joined          adapters (routed by a domain predictor)
==================  ===============================  ===========

The last two add zero-initialised adapters to the plain network (Ch. 4's off-the-shelf setting):
the network's function is unchanged until the adapters train.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from thesislib.methods.residual_adapters.config import ResidualAdaptersParams
from thesislib.nn.multidomain import Mode
from thesislib.nn.resnet26_adapters import Adapter, MultiDomainResNet, Placement, resnet26

#: method -> (pre-trained network it starts from: "series" | "plain" | None, adapters added afterwards, mode)
METHOD_PLAN: dict[str, tuple[str | None, Adapter, Mode]] = {
    "scratch": (None, "none", "scratch"),
    "feature": ("series", "series", "feature"),
    "bn": ("plain", "none", "bn"),
    "series": ("series", "series", "adapters"),
    "finetune": ("plain", "none", "finetune"),
    "parallel": ("plain", "parallel", "adapters"),
    "series_posthoc": ("plain", "series", "adapters"),
    "series_decay": ("series", "series", "adapters"),
    "finetune_all": ("series", "series", "finetune"),
    "dompred": ("series", "series", "adapters"),
}


def build_network(params: ResidualAdaptersParams, num_classes: int, adapter: Adapter = "none",
                  placement: Placement = "all") -> MultiDomainResNet:
    """A one-domain network of the configured width and depth."""
    return resnet26([num_classes], adapter=adapter, placement=placement, width=params.width, blocks=params.blocks)


def start_network(params: ResidualAdaptersParams, method: str, num_classes: int,
                  pretrained: Mapping[str, MultiDomainResNet], placement: Placement = "all"
                  ) -> tuple[MultiDomainResNet, int, Mode]:
    """(network, domain index of the target, mode) at the start of ``method``'s run on a target
    with ``num_classes`` classes; ``pretrained`` maps "plain" / "series" to the source networks
    (left untouched: the network is a copy)."""
    if method not in METHOD_PLAN:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHOD_PLAN)}")
    source, adapter, mode = METHOD_PLAN[method]
    if source is None:
        return build_network(params, num_classes), 0, mode
    base = pretrained[source]
    if base.adapter == adapter:
        net = copy.deepcopy(base)
    else:
        net = resnet26(base.num_classes, adapter=adapter, placement=placement, width=params.width,
                       blocks=params.blocks)
        missing, unexpected = net.load_state_dict(base.state_dict(), strict=False)
        if unexpected or any("adapters" not in k for k in missing):
            raise RuntimeError(f"cannot add {adapter} adapters to the {source} network: missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]}")
        net.to(next(base.parameters()).device)
    domain = net.add_domain(num_classes, init_from=0)
    return net, domain, mode
