"""LSD-C training through :mod:`thesislib.engine` (thesis ch. 7 §3, App. A).

Two stages per replicate:

1. :func:`pretrain` — RotNet on every image, labels ignored (:func:`thesislib.selfsup.train_rotnet`,
   SGD Nesterov, lr /5 at ``rotnet_milestones``); or, with ``pretrain = dae`` (Reuters-10K),
   :func:`pretrain_dae` — a denoising autoencoder on every vector (MSE of the reconstruction of
   inputs zeroed with probability ``dae_dropout``, Adam, lr x0.1 at 2/3 of the epochs);
2. :func:`train_lsdc` — from the RotNet weights: the stem and the first ``frozen_stages`` stages
   frozen, a new linear clustering head, the objective of :mod:`~thesislib.methods.lsdc.losses`
   (three views per image: the clean augmented view that gives the pairwise targets, and two
   composite views), SGD momentum 0.9, lr x0.1 at ``lr_milestones``, ``drop_last`` as the code.

Several processes: :func:`run_stage` with ``nproc`` > 1 starts ``nproc`` DDP processes of this module
through ``torchrun`` (:class:`thesislib.selfsup.stages.StagedPipeline`); rank 0 writes the weights. By hand::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.lsdc.train --params p.yaml \\
        --stage rotnet|dae --output DIR
    torchrun ... -m thesislib.methods.lsdc.train --params p.yaml --stage lsdc --init DIR/rotnet.pt --output DIR
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.config import replace
from thesislib.engine import History, MultiStep, Trainer, fit, make_scheduler, steps_per_epoch
from thesislib.engine.distributed import all_gather_rows, get_rank, get_world_size, unwrap
from thesislib.methods.lsdc.config import (
    LSDCParams,
    dae_engine_config,
    engine_config,
    lsdc_config,
    rotnet_engine_config,
)
from thesislib.methods.lsdc.data import LSDCData, augment, load_data
from thesislib.methods.lsdc.losses import lsdc_loss, pseudo_adjacency, rampup_weight
from thesislib.methods.lsdc.model import (
    CLUSTER_HEAD,
    ROTATION_HEAD,
    DenoisingAutoencoder,
    build_backbone,
    pretrain_heads,
    to_clustering,
)
from thesislib.nn.resnet_cifar import freeze_stages
from thesislib.repro import seed_everything
from thesislib.selfsup import (
    Composite,
    EpochClock,
    RotNetConfig,
    matched_l2_threshold,
    mixup,
    ricap,
    train_rotnet,
)
from thesislib.selfsup.pseudo_labels import sq_distances
from thesislib.selfsup.stages import StagedPipeline, decorrelate_ranks

__all__ = ["lsdc_step_fn", "pair_precision", "main", "pretrain", "pretrain_dae", "run_stage", "train_lsdc"]

STAGES = ("rotnet", "dae", "lsdc")


def pretrain(params: LSDCParams, data: LSDCData, device: torch.device) -> tuple[nn.Module, History]:
    """RotNet pre-training of a fresh backbone (seeded from ``params.seed``); returns it (with its
    rotation head) and the history."""
    seed_everything(params.seed)
    model = build_backbone(params, {ROTATION_HEAD: 4})
    decorrelate_ranks(params.seed)
    config = RotNetConfig(lr=params.rotnet_lr, milestones=params.rotnet_milestones)
    history = train_rotnet(model, data.pretrain_set, rotnet_engine_config(params), device, config,
                           transform=lambda x: augment(x, params))
    return unwrap(model), history


def pretrain_dae(params: LSDCParams, data: LSDCData, device: torch.device) -> tuple[nn.Module, History]:
    """Denoising-autoencoder pre-training of a fresh MLP encoder (Reuters-10K, as DEC; seeded from
    ``params.seed``): reconstruct each vector x (B, D) from x with a ``dae_dropout`` share of its entries
    zeroed, MSE. Returns the encoder (the backbone without heads) and the history (``loss``)."""
    seed_everything(params.seed)
    ae = DenoisingAutoencoder(build_backbone(params, {}), params.in_features, params.mlp_widths)
    decorrelate_ranks(params.seed)

    def step(m: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = batch[0].float()
        return F.mse_loss(m(x * (torch.rand_like(x) >= params.dae_dropout)), x), {}

    opt = torch.optim.Adam(ae.parameters(), lr=params.dae_lr)
    config = dae_engine_config(params)
    spe = steps_per_epoch(len(data.images), config.batch_size, config.drop_last)
    history = fit(ae, opt, data.dataset, step, config, device,
                  scheduler=make_scheduler(opt, MultiStep((2 * params.dae_epochs // 3 * spe,), 0.1)))
    return unwrap(ae).encoder, history


def compose(v1: Tensor, v2: Tensor, params: LSDCParams) -> tuple[Tensor, Tensor, Composite | None]:
    """The two composite views (the same permutations and sizes, new crop positions / the same λ)."""
    if params.composition == "ricap":
        c1 = ricap(v1, params.mix_beta)
        c2 = ricap(v2, params.mix_beta, sizes=c1.sizes, perms=c1.perms)
        return c1.images, c2.images, c1
    if params.composition == "mixup":
        c1 = mixup(v1, params.mix_beta)
        c2 = mixup(v2, lam=c1.lam, perm=c1.perms[1])
        return c1.images, c2.images, c1
    return v1, v2, None


def pair_precision(a: Tensor, labels: Tensor) -> Tensor:
    """Share of the positive off-diagonal pairs of A (B, B) whose two images share a class (B,)."""
    same = (labels[:, None] == labels[None, :]).to(a.dtype)
    off = 1.0 - torch.eye(a.shape[0], device=a.device, dtype=a.dtype)
    return (a * same * off).sum() / (a * off).sum().clamp_min(1.0)


def lsdc_step_fn(params: LSDCParams, clock: EpochClock):
    """The engine step of LSD-C: eq. 8 on three views of the batch's images; metrics ``bce``, ``mse``,
    ``omega``, ``pos_rate`` (the share of positive pairwise targets) and, when the batch carries
    classes, ``pair_precision`` (the share of positive off-diagonal targets joining two images of
    the same class). The classes are read for that monitor only, never by the loss. Under DDP the
    pseudo-labels and the BCE cover the global batch (:func:`~thesislib.methods.lsdc.losses.lsdc_loss`)."""

    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x = batch[0]
        v0, v1, v2 = augment(x, params), augment(x, params), augment(x, params)
        v1, v2, composite = compose(v1, v2, params)
        out0 = model(v0)
        p = torch.softmax(out0[CLUSTER_HEAD].float(), 1)
        p1 = torch.softmax(model(v1)[CLUSTER_HEAD].float(), 1)
        p2 = torch.softmax(model(v2)[CLUSTER_HEAD].float(), 1)
        # the pairwise graph over the global batch: every rank's clean-view features, in rank order
        a = pseudo_adjacency(all_gather_rows(out0["features"].detach().float()), all_gather_rows(p.detach()), params)
        weight = rampup_weight(params, clock())
        loss, metrics = lsdc_loss(p, p1, p2, a, composite, weight, world=get_world_size(), rank=get_rank())
        metrics.update(omega=torch.tensor(weight), pos_rate=a.mean())
        if params.similarity == "l2":
            metrics["l2_tau"] = torch.tensor(params.l2_tau)
        if len(batch) > 1:
            metrics["pair_precision"] = pair_precision(a, all_gather_rows(batch[1]))
        return loss, metrics
    return step


def clustering_model(params: LSDCParams, state: dict[str, Tensor]) -> nn.Module:
    """The pre-trained (RotNet or DAE) network with its first stages frozen and a new clustering head
    (the head's initialisation is seeded from ``params.seed``, so every variant starts alike)."""
    model = build_backbone(params, pretrain_heads(params))
    model.load_state_dict(state)
    seed_everything(params.seed)
    to_clustering(model, params.num_clusters, params.head)
    freeze_stages(model, params.frozen_stages)
    return model


def initial_features(params: LSDCParams, model: nn.Module, data: LSDCData, device: torch.device,
                     n_batches: int = 8) -> Tensor:
    """(n_batches·B, D) features of the clean augmented view through ``model`` in training mode (batch
    statistics), as the step's pairwise targets read them, on a copy of the network and under a forked
    RNG seeded from ``params.seed`` (the run's random draws do not change)."""
    probe = copy.deepcopy(model).to(device).train()
    n = len(data.images)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        order = torch.randperm(n)
        b = min(params.batch_size, n)
        return torch.cat([probe(augment(data.dataset[order[i:i + b]][0].to(device), params))["features"].float()
                          for i in range(0, min(n, n_batches * b) - b + 1, b)])


def median_sq_distance(feats: Tensor, batch_size: int) -> float:
    """The median off-diagonal squared distance within consecutive batches of ``batch_size`` rows of
    ``feats`` (the unit of :attr:`LSDCParams.l2_tau_grid`)."""
    b = min(batch_size, feats.shape[0])
    off = ~torch.eye(b, dtype=torch.bool, device=feats.device)
    d = torch.cat([sq_distances(feats[i:i + b])[off] for i in range(0, feats.shape[0] - b + 1, b)])
    return float(d.median())


def with_l2_threshold(params: LSDCParams, model: nn.Module, data: LSDCData, device: torch.device,
                      n_batches: int = 8) -> LSDCParams:
    """``params`` with ``l2_tau`` set by the matched rule (config docstring) when the similarity is L2
    and ``l2_tau`` is 0; else unchanged. The features are those the step's pairwise targets read: the
    clean augmented view through the initial network in training mode (batch statistics), on a copy of
    the network and under a forked RNG, so neither the network nor the run's random draws change. Every
    rank computes the same τ (same seed, same images)."""
    if params.similarity != "l2" or params.l2_tau > 0:
        return params
    feats = initial_features(params, model, data, device, n_batches)
    b = min(params.batch_size, len(data.images))
    tau = matched_l2_threshold(feats, b, params.k, n_batches, torch.Generator().manual_seed(params.seed))
    return replace(params, l2_tau=tau)


def train_lsdc(params: LSDCParams, data: LSDCData, device: torch.device, state: dict[str, Tensor],
               ) -> tuple[nn.Module, History]:
    """LSD-C from the RotNet weights ``state``; returns the trained network and its history."""
    model = clustering_model(params, state)
    params = with_l2_threshold(params, model, data, device)
    decorrelate_ranks(params.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if params.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(trainable, lr=params.lr, weight_decay=params.weight_decay)
    else:
        opt = torch.optim.SGD(trainable, lr=params.lr, momentum=0.9, weight_decay=params.weight_decay)
    config = engine_config(params)
    spe = steps_per_epoch(len(data.images), config.batch_size, config.drop_last)
    sched = make_scheduler(opt, MultiStep(tuple(m * spe for m in params.lr_milestones), 0.1))
    clock = EpochClock()
    trainer = Trainer(model, opt, data.dataset, lsdc_step_fn(params, clock), config, device, scheduler=sched)
    clock.trainer = trainer
    history = trainer.fit()
    return unwrap(model), history


def _stage(stage: str, params: LSDCParams, data: LSDCData, device: torch.device,
           init: dict[str, Tensor] | None) -> tuple[nn.Module, History]:
    if stage == "rotnet":
        return pretrain(params, data, device)
    if stage == "dae":
        return pretrain_dae(params, data, device)
    return train_lsdc(params, data, device, init)


def _model_for(stage: str, params: LSDCParams) -> nn.Module:
    model = build_backbone(params, {ROTATION_HEAD: 4} if stage == "rotnet" else pretrain_heads(params))
    if stage == "lsdc":
        to_clustering(model, params.num_clusters, params.head)
        freeze_stages(model, params.frozen_stages)
    return model


#: The two stages, in-process or under torchrun (:class:`thesislib.selfsup.stages.StagedPipeline`).
PIPELINE = StagedPipeline("lsdc", "thesislib.methods.lsdc.train", STAGES, ("lsdc",), lsdc_config,
                          load_data, _stage, _model_for)


def run_stage(stage: str, params: LSDCParams, device: str | torch.device = "auto", **kwargs: Any
              ) -> tuple[nn.Module, History]:
    """Train ``stage`` (``rotnet``, ``dae`` or ``lsdc``, the latter from ``init``) in this process (``nproc`` 1)
    or as ``nproc`` torchrun DDP processes (keywords: ``data``, ``init``, ``nproc``, ``output``, ``timeout``)."""
    return PIPELINE.run(stage, params, device, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.lsdc.train --params p.(json|yaml) --stage rotnet|dae|lsdc
    [--init rotnet.pt] [--output DIR] [--device D]``: one stage of one replicate; rank 0 writes DIR."""
    return PIPELINE.main(argv)


if __name__ == "__main__":
    sys.exit(main())
