"""Training through :mod:`thesislib.engine`: the source pre-training and one target domain's run.

* :func:`pretrain`: the source domain ("ImageNet"; smoke: glyphs over photo crops) from random initialisation,
  every parameter trained, plain or *with* series adapters (Ch. 3 §3: series adapters must be in
  the network during pre-training). SGD with momentum 0.9, ``pre_lr`` with x0.1 drops at 2/3 and
  5/6 of ``pre_steps``.
* :func:`pretrained_network`: the cached checkpoint of a pre-training, re-created by
  :func:`pretrain` when it is missing. Its file name holds a hash of every parameter the
  pre-training depends on, so a changed configuration never loads a stale network; the chapter-4
  notebook loads the same files.
* :func:`train_target`: one method on one target domain (``model.METHOD_PLAN``):
  SGD over :func:`~thesislib.nn.multidomain.param_groups` (per-group weight decay), ``lr`` with the
  code's drops, ``target_steps`` steps (``series_decay``: the target's own adapter decay).
* :func:`train_finetune_all`: "finetune all" (Ch. 3 §5): every domain (source and targets) in one
  network, one batch per domain in round-robin (:class:`~thesislib.data.round_robin.RoundRobinDomains`,
  :func:`joint_step`), shared 3x3 filters and every domain's own parameters trained by one SGD over
  :func:`~thesislib.nn.multidomain.joint_param_groups`; then the final adapters-only pass per target.
* :func:`train_domain_predictor`: the unknown-domain setting's light ResNet, trained to name the
  domain of an image (:class:`~thesislib.data.round_robin.DomainLabelled`); :func:`join_runs` joins
  separately trained targets into one multi-domain network for routing.

Several processes: ``torchrun --standalone --nproc_per_node N -m thesislib.methods.residual_adapters.train
--params p.json --output DIR`` pre-trains (or loads) the source networks and trains every method on
every target for the replicate ``params.seed``; rank 0 writes each trained network's state dict
(``<method>__<target>.pt``) and ``runs.json``. :func:`run` starts that and reads the networks back.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.round_robin import DomainLabelled, RoundRobinDomains, collate_domain_batch
from thesislib.device import resolve_device
from thesislib.engine import History, Trainer, launch, make_scheduler, train_config
from thesislib.engine.distributed import barrier, distributed_session, is_main_process
from thesislib.eval.decathlon import count_parameters
from thesislib.methods.residual_adapters.config import (
    JOINT_METHODS,
    ResidualAdaptersParams,
    adapters_config,
    pretrain_engine_config,
    step_schedule,
    target_engine_config,
    target_steps,
)
from thesislib.methods.residual_adapters.data import Domain, load_domain, load_domains
from thesislib.methods.residual_adapters.model import METHOD_PLAN, build_network, start_network
from thesislib.nn.multidomain import (
    copy_domain,
    domain_parameters,
    joint_param_groups,
    param_groups,
    prepare_domain,
    trainable_parameters,
)
from thesislib.nn.resnet26_adapters import Adapter, MultiDomainResNet, Placement, domain_predictor
from thesislib.paths import cache_root
from thesislib.repro import seed_everything, write_json

__all__ = ["TargetRun", "checkpoint_path", "classification_step", "join_runs", "joint_step", "main", "pretrain",
           "pretrain_networks", "pretrained_network", "run", "train_domain_predictor", "train_finetune_all",
           "train_target"]

_PRETRAIN_FIELDS = ("data", "source", "image_size", "n_source", "width", "blocks", "pre_steps", "pre_batch_size",
                    "pre_lr", "momentum", "wd_conv", "wd_adapter", "wd_head", "flip", "seed")

#: bump whenever the source data a pre-training reads changes (the mini generators, the decathlon or
#: ILSVRC loaders, their transforms): it is part of the checkpoint hash, so old networks are not reused
SOURCE_VERSION = 2


def classification_step(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of a domain view's logits; metric ``acc`` (batch accuracy)."""
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"acc": (logits.argmax(1) == y).float().mean().detach()}


def _sgd(groups: list[dict[str, object]], lr: float, momentum: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


def pretrain(params: ResidualAdaptersParams, adapter: Adapter, device: torch.device, source: Domain | None = None,
             on_step: Callable[[Trainer], None] | None = None) -> tuple[MultiDomainResNet, History]:
    """Train a network on the source domain from scratch (all parameters), seeded by ``params.seed``."""
    source = source if source is not None else load_domain(params, params.source)
    seed_everything(params.seed)
    net = build_network(params, source.num_classes, adapter=adapter)
    view = prepare_domain(net, 0, "finetune")
    optimizer = _sgd(param_groups(net, 0, "finetune", params.weight_decay()), params.pre_lr, params.momentum)
    config = pretrain_engine_config(params)
    trainer = Trainer(view, optimizer, source.train, classification_step, config, device,
                      scheduler=make_scheduler(optimizer, step_schedule(params.pre_steps)), on_step=on_step)
    history = trainer.fit()
    for p in net.parameters():
        p.requires_grad_(True)
    return net, history


def checkpoint_path(params: ResidualAdaptersParams, adapter: Adapter) -> Path:
    """``<pretrain_dir or $THESISLIB_CACHE/residual_adapters>/pretrain-<adapter>-<hash>.pt``; the hash
    covers the pre-training's parameters (``params.seed`` is the pre-training seed) and
    :data:`SOURCE_VERSION`."""
    fields = {k: to_dict(params)[k] for k in _PRETRAIN_FIELDS}
    key = json.dumps({**fields, "source_version": SOURCE_VERSION}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = Path(params.pretrain_dir).expanduser() if params.pretrain_dir else cache_root() / "residual_adapters"
    return folder / f"pretrain-{adapter}-{digest}.pt"


def pretrained_network(params: ResidualAdaptersParams, adapter: Adapter, device: torch.device,
                       source: Domain | None = None) -> tuple[MultiDomainResNet, bool]:
    """(the source network pre-trained plain or with series adapters, whether it was loaded from
    the cache). A missing or unreadable checkpoint is re-created by :func:`pretrain` and written
    (by rank 0 under DDP); so is one whose classifier does not have the source's class count
    (``source`` is loaded when not given)."""
    path = checkpoint_path(params, adapter)
    source = source if source is not None else load_domain(params, params.source)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            num_classes = int(state["heads.0.weight"].shape[0])
            if num_classes != source.num_classes:
                raise RuntimeError(f"its classifier has {num_classes} classes, the source {params.source!r} "
                                   f"has {source.num_classes}")
            net = build_network(params, num_classes, adapter=adapter)
            net.load_state_dict(state)
            return net.to(device), True
        except (RuntimeError, KeyError, EOFError) as err:
            print(f"residual_adapters: re-creating the checkpoint {path}: {err}", file=sys.stderr)
    net, _ = pretrain(params, adapter, device, source)
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        tmp.replace(path)
    barrier()
    return net, False


@dataclass
class TargetRun:
    """One method trained on one target: the network (the target is domain ``domain``), the mode,
    the number of parameters trained and the history."""

    method: str
    target: str
    net: MultiDomainResNet
    domain: int
    mode: str
    trainable: int
    history: History


def train_target(params: ResidualAdaptersParams, method: str, target: Domain,
                 pretrained: Mapping[str, MultiDomainResNet], device: torch.device, seed: int | None = None,
                 wd_adapter: float | None = None, placement: Placement = "all",
                 start: tuple[MultiDomainResNet, int, str] | None = None) -> TargetRun:
    """Train ``method`` on ``target`` (seeded by ``seed``, default ``params.seed``); ``start``
    overrides the starting (network, domain, mode), e.g. Ch. 4's compressed adapters."""
    seed = params.seed if seed is None else seed
    if wd_adapter is None and method == "series_decay":
        wd_adapter = params.adapter_decay(target.name)
    seed_everything(seed)
    net, domain, mode = start if start is not None else start_network(params, method, target.num_classes,
                                                                      pretrained, placement)
    net.to(device)
    view = prepare_domain(net, domain, mode)
    groups = param_groups(net, domain, mode, params.weight_decay(wd_adapter))
    optimizer = _sgd(groups, params.lr, params.momentum)
    config = target_engine_config(params, len(target.train), seed)
    trainer = Trainer(view, optimizer, target.train, classification_step, config, device,
                      scheduler=make_scheduler(optimizer, step_schedule(config.max_steps)))
    history = trainer.fit()
    trainable = count_parameters([p for _, p in trainable_parameters(net, domain, mode)])
    for p in net.parameters():
        p.requires_grad_(True)
    return TargetRun(method, target.name, net, domain, mode, trainable, history)


def joint_step(model: nn.Module, batch: tuple[Tensor, Tensor, int]) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of one round-robin batch ``(x, y, domain)`` through ``domain``'s modules of a
    :class:`MultiDomainResNet` (``domain`` a Python int: :func:`~thesislib.data.round_robin.collate_domain_batch`)."""
    x, y, domain = batch
    logits = model(x, domain)
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"acc": (logits.argmax(1) == y).float().mean().detach()}


def joint_steps(params: ResidualAdaptersParams, domains: Mapping[str, Domain]) -> int:
    """Round-robin steps of "finetune all": ``joint_steps``, or (1 + targets) x the longest target run."""
    if params.joint_steps:
        return params.joint_steps
    longest = max(target_steps(params, len(domains[t].train)) for t in params.targets)
    return (1 + len(params.targets)) * longest


def train_finetune_all(params: ResidualAdaptersParams, domains: Mapping[str, Domain],
                       pretrained: Mapping[str, MultiDomainResNet], device: torch.device, seed: int | None = None
                       ) -> tuple[dict[str, TargetRun], History]:
    """"Finetune all" (Ch. 3 §5; decisions in :mod:`~thesislib.methods.residual_adapters.config`).

    The network pre-trained with series adapters gains one domain per target (modules copied from
    the source's); domain ``k`` of the network is ``[source, *targets][k]``. Step ``s`` trains on a
    batch of domain ``s mod (1 + T)`` (global batch ``batch_size``, the same domain on every DDP
    rank), updating the shared 3x3 filters and that domain's own parameters (adapter decay
    :meth:`~ResidualAdaptersParams.adapter_decay` per domain). With ``joint_final`` each target's
    adapters, BNs and head then train alone (``target_steps``) in place. Returns ({target:
    :class:`TargetRun`} all holding the one network, the round-robin history)."""
    seed = params.seed if seed is None else seed
    seed_everything(seed)
    names = [params.source, *params.targets]
    net = copy.deepcopy(pretrained["series"])
    for t in params.targets:
        net.add_domain(domains[t].num_classes, init_from=0)
    net.to(device)
    for p in net.parameters():
        p.requires_grad_(True)
    decays = [params.weight_decay(params.adapter_decay(name)) for name in names]
    optimizer = _sgd(joint_param_groups(net, decays), params.lr, params.momentum)
    steps = joint_steps(params, domains)
    batch = min(params.batch_size, *(len(domains[n].train) for n in names))
    data = RoundRobinDomains([domains[n].train for n in names], batch, steps, seed)
    config = train_config(params, batch_size=batch, iterations=steps, seed=seed, shuffle=False, drop_last=True,
                          log_every=max(1, steps // 10), ddp_find_unused_parameters=True)
    trainer = Trainer(net, optimizer, data, joint_step, config, device, collate_fn=collate_domain_batch,
                      scheduler=make_scheduler(optimizer, step_schedule(steps)))
    history = trainer.fit()
    runs = {}
    for d, t in enumerate(params.targets, start=1):
        if params.joint_final:
            final = train_target(params, "finetune_all", domains[t], pretrained, device, seed,
                                 wd_adapter=params.adapter_decay(t), start=(net, d, "adapters"))
            hist = final.history
        else:
            hist = history
        stored = count_parameters([p for _, p in domain_parameters(net, d)])
        runs[t] = TargetRun("finetune_all", t, net, d, "finetune", stored, hist)
    return runs, history


def train_domain_predictor(params: ResidualAdaptersParams, domains: Mapping[str, Domain], device: torch.device,
                           seed: int | None = None) -> tuple[MultiDomainResNet, History]:
    """The unknown-domain setting's predictor (Ch. 3 §5.2): :func:`~thesislib.nn.resnet26_adapters.domain_predictor`
    at the chapter's width, trained from scratch to name the domain (index in ``[source, *targets]``)
    of the centre ``image_size`` crop of every training image, ``dompred_steps`` SGD steps at
    ``pre_batch_size`` and ``pre_lr`` (x0.1 at 2/3 and 5/6)."""
    seed = params.seed if seed is None else seed
    seed_everything(seed)
    names = [params.source, *params.targets]
    predictor = domain_predictor(len(names), width=params.width).to(device)
    data = DomainLabelled([domains[n].train for n in names], params.image_size)
    optimizer = _sgd(param_groups(predictor, 0, "finetune", params.weight_decay()), params.pre_lr, params.momentum)
    config = train_config(params, batch_size=min(params.pre_batch_size, len(data)), iterations=params.dompred_steps,
                          seed=seed, drop_last=True, log_every=max(1, params.dompred_steps // 10))
    trainer = Trainer(prepare_domain(predictor, 0, "finetune"), optimizer, data, classification_step, config, device,
                      scheduler=make_scheduler(optimizer, step_schedule(params.dompred_steps)))
    history = trainer.fit()
    return predictor, history


def join_runs(base: MultiDomainResNet, runs: list[TargetRun]) -> MultiDomainResNet:
    """One network holding ``base``'s domains then each run's target domain (copied from the run's
    network, :func:`~thesislib.nn.multidomain.copy_domain`); ``base`` is left untouched."""
    joined = copy.deepcopy(base)
    for r in runs:
        d = joined.add_domain(r.net.num_classes[r.domain], init_from=0)
        copy_domain(r.net, r.domain, joined, d)
    return joined


# ---------------------------------------------------------------------------------------------
# one replicate's training: in this process or as torchrun processes
# ---------------------------------------------------------------------------------------------

def needed_pretrainings(methods: tuple[str, ...]) -> list[Adapter]:
    """Which source networks ``methods`` start from ("plain", "series")."""
    from_series = {m for m, (start, _, _) in METHOD_PLAN.items() if start == "series"}
    need: list[Adapter] = []
    if any(m not in from_series and m != "scratch" for m in methods):
        need.append("none")
    if any(m in from_series for m in methods):
        need.append("series")
    return need


def pretrained_networks(params: ResidualAdaptersParams, device: torch.device, methods: tuple[str, ...] | None = None
                        ) -> dict[str, MultiDomainResNet]:
    """{"plain": ..., "series": ...} as the methods need them (cached checkpoints)."""
    methods = tuple(params.methods) if methods is None else methods
    need = needed_pretrainings(methods)
    source = load_domain(params, params.source) if need else None  # read once: trains or checks the heads
    out = {}
    for adapter in need:
        out["plain" if adapter == "none" else "series"] = pretrained_network(params, adapter, device, source)[0]
    return out


def train_replicate(params: ResidualAdaptersParams, device: torch.device, seed: int,
                    domains: Mapping[str, Domain] | None = None) -> dict[tuple[str, str], TargetRun]:
    """Every method of ``params.methods`` on every target, for the replicate ``seed``."""
    domains = domains if domains is not None else load_domains(params, seed)
    pretrained = pretrained_networks(params, device)
    runs = {}
    for target in params.targets:
        for method in params.methods:
            if method not in JOINT_METHODS:
                runs[method, target] = train_target(params, method, domains[target], pretrained, device, seed)
    if "finetune_all" in params.methods:
        joint, _ = train_finetune_all(params, domains, pretrained, device, seed)
        runs.update({("finetune_all", t): r for t, r in joint.items()})
    if "dompred" in params.methods:  # the series runs the predictor routes to (the predictor: experiments)
        for target in params.targets:
            runs["dompred", target] = runs.get(("series", target)) or train_target(
                params, "series", domains[target], pretrained, device, seed)
    return runs


MODULE = "thesislib.methods.residual_adapters.train"


def _launch(params: ResidualAdaptersParams, seed: int, stage: str, device: str | torch.device, nproc: int,
            out: Path, module: str, timeout: float | None) -> None:
    """Start ``module``'s entry point; ``params.seed`` (the pre-training seed, part of the checkpoint
    hash) travels unchanged in ``params.json`` and the replicate ``seed`` as ``--replicate-seed``, so
    every replicate loads the same cached pre-trained networks."""
    out.mkdir(parents=True, exist_ok=True)
    p = write_json(out / "params.json", to_dict(params))
    dev = device.type if isinstance(device, torch.device) else resolve_device(device).type
    launch(module, ["--params", str(p), "--output", str(out), "--device", dev, "--stage", stage,
                    "--replicate-seed", str(seed)], nproc=nproc, timeout=timeout)


def pretrain_networks(params: ResidualAdaptersParams, device: str | torch.device = "auto",
                      nproc: int | None = None, module: str = MODULE, timeout: float | None = None
                      ) -> dict[str, MultiDomainResNet]:
    """:func:`pretrained_networks`, the missing pre-trainings done by ``nproc`` torchrun DDP processes
    when ``nproc`` (default ``params.nproc``) > 1 (they write the cached checkpoints, read here)."""
    nproc = params.nproc if nproc is None else nproc
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    missing = [a for a in needed_pretrainings(tuple(params.methods)) if not checkpoint_path(params, a).is_file()]
    if nproc > 1 and missing:
        with tempfile.TemporaryDirectory(prefix="adapters-") as tmp:
            _launch(params, params.seed, "pretrain", dev, nproc, Path(tmp), module, timeout)
    return pretrained_networks(params, dev)


def run(params: ResidualAdaptersParams, seed: int, device: str | torch.device = "auto", nproc: int | None = None,
        output: Path | None = None, timeout: float | None = None, module: str = MODULE
        ) -> dict[tuple[str, str], TargetRun]:
    """One replicate's training of every method on every target, in this process (``nproc`` 1) or
    as ``nproc`` torchrun DDP processes (``module``'s entry point) whose rank 0 writes the trained
    networks, read back here."""
    nproc = params.nproc if nproc is None else nproc
    if nproc == 1:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        return train_replicate(params, dev, seed)
    with tempfile.TemporaryDirectory(prefix="adapters-") as tmp:
        out = Path(output) if output else Path(tmp)
        _launch(params, seed, "replicate", device, nproc, out, module, timeout)
        return load_runs(params, out)


def save_runs(out: Path, runs: Mapping[tuple[str, str], TargetRun]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for (method, target), r in runs.items():
        torch.save(r.net.state_dict(), out / f"{method}__{target}.pt")
        index.append({"method": method, "target": target, "domain": r.domain, "mode": r.mode,
                      "trainable": r.trainable, "adapter": r.net.adapter, "num_classes": r.net.num_classes,
                      "history": r.history.state_dict()})
    write_json(out / "runs.json", index)


def load_runs(params: ResidualAdaptersParams, out: Path) -> dict[tuple[str, str], TargetRun]:
    runs = {}
    for entry in json.loads((out / "runs.json").read_text()):
        net = MultiDomainResNet(entry["num_classes"], adapter=entry["adapter"], width=params.width,
                                blocks=params.blocks)
        net.load_state_dict(torch.load(out / f"{entry['method']}__{entry['target']}.pt", map_location="cpu",
                                       weights_only=True))
        history = History()
        history.load_state_dict(entry["history"])
        runs[entry["method"], entry["target"]] = TargetRun(entry["method"], entry["target"], net, entry["domain"],
                                                           entry["mode"], entry["trainable"], history)
    return runs


def main(argv: list[str] | None = None, build: Callable[[dict], ResidualAdaptersParams] = adapters_config,
         prog: str = "python -m thesislib.methods.residual_adapters.train") -> int:
    """``[torchrun ...] python -m thesislib.methods.residual_adapters.train --params p.(json|yaml)
    [--output DIR] [--device D] [--replicate-seed N]``: one replicate (seed ``N``, default the params'
    seed); the pre-trained networks are always those of the params' seed. ``build`` makes the
    parameters from the mapping (chapter 4 passes its own class)."""
    parser = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    parser.add_argument("--params", "--config", dest="params", required=True,
                        help="JSON or YAML mapping of ResidualAdaptersParams fields")
    parser.add_argument("--output", help="directory for runs.json and the trained networks")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    parser.add_argument("--stage", choices=("pretrain", "replicate"), default="replicate",
                        help="pretrain: only write the cached source checkpoints; replicate: also train the targets")
    parser.add_argument("--replicate-seed", type=int, default=None,
                        help="seed of the replicate's few-shot sets and target runs (default: the params' seed, "
                        "which always seeds the pre-training)")
    args = parser.parse_args(argv)
    try:  # everything that can be wrong with the inputs fails here, before training
        mapping = load_params_file(args.params)
        params = build(mapping)
        seed = params.seed if args.replicate_seed is None else args.replicate_seed
        domains = load_domains(params, seed) if args.stage == "replicate" else None
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"residual_adapters: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        if args.stage == "pretrain":
            pretrained_networks(params, device)
            return 0
        runs = train_replicate(params, device, seed, domains)
        if is_main_process() and args.output:
            save_runs(Path(args.output), runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
