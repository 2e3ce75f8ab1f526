"""Evaluation through :func:`thesislib.engine.evaluate`: top-1 accuracy of a domain, and the
target and source accuracies of every trained method (the source accuracy after training on a
target is Table 2's forgetting measure: adapters leave it unchanged by construction, fine-tuning
changes the shared filters under the source's classifier and BNs); and the unknown-domain setting
(:func:`routed_accuracy`: each test image through its *predicted* domain's modules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.engine import evaluate as engine_evaluate
from thesislib.eval.classification import accuracy
from thesislib.methods.residual_adapters.data import Domain
from thesislib.methods.residual_adapters.train import TargetRun
from thesislib.nn.multidomain import RoutedNetwork
from thesislib.nn.resnet26_adapters import MultiDomainResNet


def predict_fn(domain: int) -> Callable[[nn.Module, Any], Tensor]:
    """``fn(net, (x, y)) -> (predicted classes (B,), labels (B,))`` for domain ``domain``."""
    def fn(net: nn.Module, batch: Any) -> Tensor:
        x, y = batch
        return torch.stack([net(x, domain).argmax(1), y.to(x.device)], dim=1)
    return fn


def domain_accuracy(net: MultiDomainResNet, domain: int, dataset: Dataset, device: torch.device,
                    batch_size: int = 512) -> float:
    """Top-1 accuracy (a fraction) of ``net``'s domain ``domain`` on ``dataset`` (eval mode, sharded
    under DDP)."""
    out = engine_evaluate(net, dataset, predict_fn(domain), device, batch_size=batch_size)
    return float(accuracy(out[:, 0], out[:, 1]))


def evaluate_runs(runs: Mapping[tuple[str, str], TargetRun], domains: Mapping[str, Domain], source: str | None,
                  device: torch.device, batch_size: int = 512) -> dict[tuple[str, str], dict[str, float]]:
    """{(method, target): {"target": accuracy on the target's test set, "source": the source domain's
    accuracy of the same network (NaN for scratch, which has no source domain, and when ``source``
    is None: not measured)}}."""
    out = {}
    for key, r in runs.items():
        target = domain_accuracy(r.net, r.domain, domains[r.target].test, device, batch_size)
        src = (domain_accuracy(r.net, 0, domains[source].test, device, batch_size) if r.domain != 0 and source
               is not None else float("nan"))
        out[key] = {"target": target, "source": src}
    return out


def _routed(net: nn.Module, batch: Any) -> Tensor:
    x, y = batch
    return torch.cat([net(x), y.to(x.device).reshape(-1, 1)], dim=1)


def routed_predictions(routed: RoutedNetwork, dataset: Dataset, device: torch.device, batch_size: int = 512
                       ) -> Tensor:
    """(N, 3) int64 over ``dataset``: predicted domain, the class that domain's head predicts, the
    label (eval mode, sharded under DDP)."""
    return engine_evaluate(routed, dataset, _routed, device, batch_size=batch_size).long()


def routed_accuracy(routed: RoutedNetwork, domain: int, dataset: Dataset, device: torch.device,
                    batch_size: int = 512) -> dict[str, float]:
    """The unknown-domain setting on domain ``domain``'s test set: ``{"domain": share of images whose
    domain is predicted right, "predicted": top-1 accuracy with the predicted domain's modules (an
    image routed to another domain counts wrong: that head answers in another label space),
    "known": top-1 accuracy when the domain is given}``."""
    out = routed_predictions(routed, dataset, device, batch_size)
    right = out[:, 0] == domain
    known = domain_accuracy(routed.net, domain, dataset, device, batch_size)
    correct = right & (out[:, 1] == out[:, 2])
    return {"domain": float(right.float().mean()), "predicted": float(correct.float().mean()), "known": known}
