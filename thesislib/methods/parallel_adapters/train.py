"""Chapter 4's training through :mod:`thesislib.engine`: chapter 3's target runs (parallel adapters,
off-the-shelf series adapters, fine-tuning, one stage only) and the joint SVD compression followed
by fine-tuning each target's own factor (§3.4).

Several processes: ``torchrun ... -m thesislib.methods.parallel_adapters.train --params p.json --output DIR``
trains every method on every target for one replicate (chapter 3's entry point with this chapter's
parameters).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping, Sequence

import torch

from thesislib.config import replace
from thesislib.methods.parallel_adapters.config import ParallelAdaptersParams, parallel_config
from thesislib.methods.parallel_adapters.model import joint_network
from thesislib.methods.residual_adapters import train as ra_train
from thesislib.methods.residual_adapters.data import Domain
from thesislib.methods.residual_adapters.train import TargetRun, train_target
from thesislib.nn.adapter_svd import compress_parallel_adapters
from thesislib.nn.resnet26_adapters import MultiDomainResNet

__all__ = ["compress", "finetune_compressed", "finetune_uncompressed", "main"]


def compress(plain: MultiDomainResNet, runs: Sequence[TargetRun], fraction: float
             ) -> tuple[MultiDomainResNet, dict[str, torch.Tensor]]:
    """The joint network of ``runs`` (:func:`~thesislib.methods.parallel_adapters.model.joint_network`)
    with its parallel adapters jointly factorised and cut to K = ``fraction`` x C per layer; returns
    it and the singular values per layer."""
    net = joint_network(plain, runs)
    spectra = compress_parallel_adapters(net, list(range(1, len(runs) + 1)), fraction)
    return net, spectra


def _short(params: ParallelAdaptersParams) -> ParallelAdaptersParams:
    return replace(params, target_steps=params.svd_steps, target_epochs=0)


def finetune_compressed(params: ParallelAdaptersParams, net: MultiDomainResNet, targets: Sequence[Domain],
                        device: torch.device, seed: int) -> list[TargetRun]:
    """Fine-tune each target's own SVD factor (its gamma, BNs and classifier; the shared factor beta
    and the 3x3 filters frozen) for ``svd_steps`` steps, target k being domain k + 1 of ``net``.
    Each target trains on its own copy (the domains share nothing trainable)."""
    return [train_target(_short(params), "parallel-svd", t, {}, device, seed,
                         start=(copy.deepcopy(net), k + 1, "adapters")) for k, t in enumerate(targets)]


def finetune_uncompressed(params: ParallelAdaptersParams, runs: Sequence[TargetRun], targets: Sequence[Domain],
                          device: torch.device, seed: int) -> list[TargetRun]:
    """The SVD row's control (row ``parallel-more``): each run's *uncompressed* parallel adapters (with
    its BNs and classifier) fine-tuned as :func:`finetune_compressed` does, ``svd_steps`` more steps
    on a copy, so both rows have had the same training."""
    return [train_target(_short(params), "parallel-more", t, {}, device, seed,
                         start=(copy.deepcopy(r.net), r.domain, "adapters")) for r, t in zip(runs, targets)]


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.parallel_adapters.train --params p.(json|yaml)
    [--output DIR] [--device D]``: every method on every target for one replicate."""
    return ra_train.main(argv, build=parallel_config, prog="python -m thesislib.methods.parallel_adapters.train")


MODULE = "thesislib.methods.parallel_adapters.train"


def train_methods(params: ParallelAdaptersParams, domains: Mapping[str, Domain],
                  pretrained: Mapping[str, MultiDomainResNet], device: torch.device, seed: int
                  ) -> dict[tuple[str, str], TargetRun]:
    """Every method of ``params.methods`` (as ``nproc`` torchrun processes when ``nproc`` > 1) and
    every placement (as ``parallel-<placement>``, in this process) on every target."""
    runs = dict(ra_train.run(params, seed, device, module=MODULE)) if params.nproc > 1 else {}
    for t in params.targets:
        for m in params.methods:
            if (m, t) not in runs:
                runs[m, t] = train_target(params, m, domains[t], pretrained, device, seed)
        for p in params.placements:
            runs[f"parallel-{p}", t] = train_target(params, "parallel", domains[t], pretrained, device, seed,
                                                    placement=p)
    return runs


if __name__ == "__main__":
    sys.exit(main())
