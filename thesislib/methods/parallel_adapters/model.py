"""Chapter 4's networks: the joint multi-domain network holding every target's parallel adapters
(the input of the cross-domain SVD), built from separately trained target runs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from thesislib.methods.residual_adapters.train import TargetRun
from thesislib.nn.multidomain import copy_domain
from thesislib.nn.resnet26_adapters import MultiDomainResNet, resnet26


def joint_network(plain: MultiDomainResNet, runs: Sequence[TargetRun]) -> MultiDomainResNet:
    """The plain pre-trained network with parallel adapters and one domain per run (source = 0,
    run k = domain k + 1), each domain's BNs, adapters and classifier copied from its run. The
    shared 3x3 filters are the plain network's: a run whose 3x3 filters differ (trained from another
    pre-training, or with them unfrozen) is a ValueError naming it."""
    net = resnet26(plain.num_classes, adapter="parallel", width=plain.width, blocks=plain.blocks)
    net.load_state_dict(plain.state_dict(), strict=False)
    shared = [c.conv.weight for c in plain.domain_convs()]
    for r in runs:
        if r.net.adapter != "parallel" or r.mode != "adapters":
            raise ValueError(f"run {r.method}/{r.target} is not a parallel-adapter run")
        theirs = [c.conv.weight for c in r.net.domain_convs()]
        if len(theirs) != len(shared) or any(
                a.shape != b.shape or not torch.equal(a.detach().cpu(), b.detach().cpu())
                for a, b in zip(theirs, shared)):
            raise ValueError(f"run {r.method}/{r.target} does not share the plain network's 3x3 filters "
                             "(another pre-training?); its adapters cannot join this network")
        d = net.add_domain(r.net.num_classes[r.domain], init_from=None)
        copy_domain(r.net, r.domain, net, d)
    return net.to(next(plain.parameters()).device)
