"""AutoNovel's three steps through :mod:`thesislib.engine` (thesis ch. 6 §3, App. B).

1. :func:`pretrain` — RotNet on every training image, labels ignored (:func:`thesislib.selfsup.train_rotnet`);
   or, with ``pretrain = metric`` (OmniGlot), :func:`pretrain_metric` — the prototypical loss on episodes
   of the labelled classes (Adam), after which step 2 is skipped;
2. :func:`supervised` — head 1 and the unfrozen stages on the labelled classes with cross-entropy,
   lr halved every ``sup_step`` epochs ("from this step onward we fix the first three blocks");
3. :func:`joint` — head 2 added (and, with I.L., head 1 extended to every class), the objective of
   :mod:`~thesislib.methods.autonovel.losses` on two views of each image, SGD momentum 0.9,
   lr x0.1 at ``lr_milestones``.

Several processes: :func:`run_stage` with ``nproc`` > 1 runs a stage as ``nproc`` torchrun DDP
processes (:class:`thesislib.selfsup.stages.StagedPipeline`); rank 0 writes ``<stage>.pt``. By hand::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.autonovel.train --params p.yaml \\
        --stage rotnet|metric|supervised|joint [--init previous.pt] --output DIR
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from thesislib.config import ConfigError
from thesislib.engine import History, MultiStep, StepDecay, Trainer, cycling_rows, fit, make_scheduler, steps_per_epoch
from thesislib.engine.distributed import get_rank, get_world_size, unwrap
from thesislib.engine.sampler import IndexBatch, SeededDataset, data_seed
from thesislib.methods.autonovel.config import (
    AutoNovelParams,
    autonovel_config,
    joint_engine_config,
    metric_engine_config,
    rotnet_engine_config,
    supervised_engine_config,
)
from thesislib.methods.autonovel.data import Episodes, NovelData, NovelImageNet, augment, load_data
from thesislib.methods.autonovel.losses import joint_loss, prototypical_loss
from thesislib.methods.autonovel.model import (
    HEAD1,
    HEAD2,
    ROTATION,
    build_backbone,
    extend_head,
    new_head,
    pretrain_heads,
    set_heads,
)
from thesislib.nn.resnet_cifar import freeze_stages
from thesislib.repro import seed_everything
from thesislib.selfsup import EpochClock, RotNetConfig, train_rotnet
from thesislib.selfsup.stages import StagedPipeline, decorrelate_ranks

STAGES = ("rotnet", "metric", "supervised", "joint")


def _sgd(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9,
                           weight_decay=weight_decay)


def pretrain(params: AutoNovelParams, data: NovelData, device: torch.device) -> tuple[nn.Module, History]:
    """Step 1: RotNet on every training image (seeded from ``params.seed``)."""
    seed_everything(params.seed)
    model = build_backbone(params, {ROTATION: 4})
    decorrelate_ranks(params.seed)
    history = train_rotnet(model, data.train_set, rotnet_engine_config(params), device,
                           RotNetConfig(milestones=params.rotnet_milestones), transform=lambda x: augment(x, params))
    return unwrap(model), history


def pretrain_metric(params: AutoNovelParams, data: NovelData, device: torch.device) -> tuple[nn.Module, History]:
    """Step 1 for OmniGlot: Φ by the prototypical loss on episodes of the labelled classes
    (:class:`~thesislib.methods.autonovel.data.Episodes`, as many per epoch as cover the labelled images
    once), Adam ``metric_lr``; returns the backbone without heads."""
    seed_everything(params.seed)
    model = build_backbone(params, {})
    decorrelate_ranks(params.seed)
    shot = params.episode_support + params.episode_query
    x, y = data.labelled_set.tensors
    episodes = Episodes(x, y, params.episode_classes, shot, max(1, len(y) // (params.episode_classes * shot)))

    def step(m: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        xe = batch[0][0]                  # one episode per step, rows grouped by class (batch[1]: its classes)
        loss, acc = prototypical_loss(m(augment(xe, params))["features"], params.episode_classes,
                                      params.episode_support)
        return loss, {"acc": acc}

    opt = torch.optim.Adam(model.parameters(), lr=params.metric_lr)
    history = fit(model, opt, episodes, step, metric_engine_config(params), device)
    return unwrap(model), history


def metric_to_supervised(params: AutoNovelParams, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The metric-learnt weights with a new head 1 (seeded from ``params.seed``): the state the joint step
    starts from when step 2 is skipped (OmniGlot)."""
    model = build_backbone(params, {})
    model.load_state_dict(state)
    seed_everything(params.seed)
    return set_heads(model, {HEAD1: params.n_labelled_classes}).state_dict()


def supervised_model(params: AutoNovelParams, state: dict[str, Tensor] | None) -> nn.Module:
    """The network of step 2: the RotNet weights (``state``; None: random, w/o S.S.) with head 1;
    the first stages frozen when it was pre-trained."""
    seed_everything(params.seed)
    model = build_backbone(params, pretrain_heads(params))
    if state is not None:
        model.load_state_dict(state)
        freeze_stages(model, params.frozen_stages)
    return set_heads(model, {HEAD1: params.n_labelled_classes})


def supervised(params: AutoNovelParams, data: NovelData, device: torch.device, state: dict[str, Tensor] | None
               ) -> tuple[nn.Module, History]:
    """Step 2: cross-entropy on the labelled classes."""
    model = supervised_model(params, state)
    decorrelate_ranks(params.seed)

    def step(m: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        logits = m(augment(x, params))[HEAD1]
        return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}

    opt = _sgd(model, params.sup_lr, params.sup_weight_decay)
    config = supervised_engine_config(params)
    spe = steps_per_epoch(len(data.labelled_set), config.batch_size, config.drop_last)
    history = fit(model, opt, data.labelled_set, step, config, device,
                  scheduler=make_scheduler(opt, StepDecay(params.sup_step * spe, params.sup_gamma)))
    return unwrap(model), history


def joint_model(params: AutoNovelParams, state: dict[str, Tensor]) -> nn.Module:
    """The network of step 3 from the supervised weights: first stages frozen, head 2 added, head 1
    extended to every class with I.L."""
    model = build_backbone(params, {HEAD1: params.n_labelled_classes})
    model.load_state_dict(state)
    freeze_stages(model, params.frozen_stages)
    seed_everything(params.seed)
    model.heads[HEAD2] = new_head(model, params.num_new)
    if params.incremental:
        model.heads[HEAD1] = extend_head(model.heads[HEAD1], params.num_new)
    return model


def joint_batches(params: AutoNovelParams, data: NovelData, clock: EpochClock
                  ) -> tuple[Dataset, Callable[[Tensor, Tensor], tuple[Tensor | tuple[Tensor, Tensor], Tensor]]]:
    """The joint step's engine dataset and the function completing each batch (images, targets).

    ``unlabelled_batch_size`` 0: every training image in one shuffle, batches as they come. b > 0 (the
    released OmniGlot / ImageNet code's two streams): the engine walks the labelled images once per epoch,
    B - b per batch, and the function appends the b unlabelled images of this optimiser step (ImageNet: per
    view, :func:`streamed_joint_batches`)
    (:func:`thesislib.engine.cycling_rows` over the unlabelled set, seeded by ``params.seed``), target -1; under
    torchrun each process takes its 1/W share of them."""
    b = params.unlabelled_batch_size
    if b == 0:
        return data.train_set, lambda x, target: (x, target)
    if isinstance(data, NovelImageNet):
        return streamed_joint_batches(params, data, clock)
    x_u, _ = data.unlabelled("train")
    if len(x_u) == 0:
        raise ConfigError("AutoNovelParams: unlabelled_batch_size > 0 but the training set has no unlabelled image")
    world, rank = get_world_size(), get_rank()
    if b % world:
        raise ConfigError(f"AutoNovelParams: unlabelled_batch_size {b} is not divisible by {world} processes")
    share = b // world

    def add_unlabelled(x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        rows = cycling_rows(len(x_u), b, params.seed, clock.trainer.step)[rank * share: (rank + 1) * share]
        xu = x_u[torch.from_numpy(rows)].to(x.device, non_blocking=True)
        return torch.cat([x, xu]), torch.cat([target, target.new_full((share,), -1)])

    return data.labelled_set, add_unlabelled


def joint(params: AutoNovelParams, data: NovelData, device: torch.device, state: dict[str, Tensor]
          ) -> tuple[nn.Module, History]:
    """Step 3: the joint objective on labelled and unlabelled images (module docstring)."""
    model = joint_model(params, state)
    decorrelate_ranks(params.seed)
    clock = EpochClock()

    train_set, add_unlabelled = joint_batches(params, data, clock)

    def step(m: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, target = add_unlabelled(batch[0], batch[1])   # batch[2], the classes, is never read here
        x1, x2 = two_views(x, params)
        return joint_loss(m(x1), m(x2), target, params, clock())

    if params.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                                      lr=params.lr, weight_decay=params.weight_decay)
    else:
        opt = _sgd(model, params.lr, params.weight_decay)
    config = joint_engine_config(params)
    spe = steps_per_epoch(len(train_set), config.batch_size, config.drop_last)
    trainer = Trainer(model, opt, train_set, step, config, device,
                      scheduler=make_scheduler(opt, MultiStep(tuple(m * spe for m in params.lr_milestones), 0.1)))
    clock.trainer = trainer
    history = trainer.fit()
    return unwrap(model), history


def two_views(x: Tensor | tuple[Tensor, Tensor], params: AutoNovelParams) -> tuple[Tensor, Tensor]:
    """The two views x and x̄ of eq. 4's consistency: two draws of :func:`augment` on a tensor batch, or, for
    ImageNet, the two random resized crops the workers drew: the pair (x1, x2) of (B, 3, S, S) batches that
    :func:`streamed_joint_batches` returns, as is, or (B, 2, 3, S, S) -> two (B, 3, S, S)."""
    if isinstance(x, tuple):
        return x
    if params.data == "imagenet":
        return x[:, 0], x[:, 1]
    return augment(x, params), augment(x, params)


def _stage(stage: str, params: AutoNovelParams, data: NovelData, device: torch.device,
           init: dict[str, Tensor] | None) -> tuple[nn.Module, History]:
    if stage == "rotnet":
        return pretrain(params, data, device)
    if stage == "metric":
        return pretrain_metric(params, data, device)
    if stage == "supervised":
        return supervised(params, data, device, init)
    return joint(params, data, device, init)


def _model_for(stage: str, params: AutoNovelParams) -> nn.Module:
    if stage == "rotnet":
        return build_backbone(params, {ROTATION: 4})
    if stage == "metric":
        return build_backbone(params, {})
    if stage == "supervised":
        return set_heads(build_backbone(params, {ROTATION: 4}), {HEAD1: params.n_labelled_classes})
    return joint_model(params, build_backbone(params, {HEAD1: params.n_labelled_classes}).state_dict())


#: The three steps, in-process or under torchrun (:class:`thesislib.selfsup.stages.StagedPipeline`).
PIPELINE = StagedPipeline("autonovel", "thesislib.methods.autonovel.train", STAGES, ("joint",), autonovel_config,
                          load_data, _stage, _model_for)


def run_stage(stage: str, params: AutoNovelParams, device: str | torch.device = "auto", **kwargs: Any
              ) -> tuple[nn.Module, History]:
    """Train ``stage`` in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes (keywords:
    ``data``, ``init``, ``nproc``, ``output``, ``timeout``); ``supervised`` with ``init=None`` starts from
    scratch (w/o S.S.)."""
    return PIPELINE.run(stage, params, device, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.autonovel.train --params p.(json|yaml)
    --stage rotnet|metric|supervised|joint [--init prev.pt] [--output DIR] [--device D]``."""
    return PIPELINE.main(argv)


if __name__ == "__main__":
    sys.exit(main())


# ImageNet (Table 3): appended block ------------------------------------------------------------------------


class _StepRows:
    """Batch sampler of :class:`UnlabelledStream`: from optimiser step ``start`` on, forever, this process's
    share of :func:`~thesislib.engine.cycling_rows` as an :class:`~thesislib.engine.sampler.IndexBatch`
    whose data seed is a function of ``(seed, step)`` (so the crops are those of a rerun or a resume)."""

    def __init__(self, n: int, count: int, share: int, rank: int, seed: int, start: int) -> None:
        self.n, self.count, self.share, self.rank, self.seed, self.start = n, count, share, rank, seed, start

    def __iter__(self) -> Iterator[IndexBatch]:
        step = self.start
        while True:
            rows = cycling_rows(self.n, self.count, self.seed, step)
            rows = rows[self.rank * self.share: (self.rank + 1) * self.share]
            yield IndexBatch(rows.tolist(), data_seed(self.seed, STREAM_EPOCH_OFFSET + step))
            step += 1


#: Added to the step for the unlabelled stream's data seeds, apart from the engine's per-epoch seeds.
STREAM_EPOCH_OFFSET = 1 << 40


class UnlabelledStream:
    """The unlabelled rows of each optimiser step (the released ``TwoStreamBatchSampler``'s second stream),
    read from disk by their own DataLoader workers: ``batch(step)`` returns this process's
    ``count / world`` items (two views each, (b, 2, 3, S, S)) of step ``step``. Steps are expected in order; a
    jump (a resume) restarts the loader at that step."""

    def __init__(self, dataset: Dataset, count: int, seed: int, num_workers: int, pin_memory: bool) -> None:
        world, self.rank = get_world_size(), get_rank()
        if count % world:
            raise ConfigError(f"AutoNovelParams: unlabelled_batch_size {count} is not divisible by {world} processes")
        self.dataset, self.count, self.share, self.seed = dataset, count, count // world, seed
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self._batches: Iterator[Any] | None = None
        self._next = -1

    def batch(self, step: int) -> Tensor:
        if self._batches is None or step != self._next:
            rows = _StepRows(len(self.dataset), self.count, self.share, self.rank, self.seed, step)  # type: ignore[arg-type]
            self._batches = iter(DataLoader(SeededDataset(self.dataset), batch_sampler=rows,
                                            num_workers=self.num_workers, pin_memory=self.pin_memory))
        self._next = step + 1
        return next(self._batches)[0]


def streamed_joint_batches(params: AutoNovelParams, data: NovelImageNet, clock: EpochClock
                           ) -> tuple[Dataset, Callable[[Tensor, Tensor], tuple[tuple[Tensor, Tensor], Tensor]]]:
    """:func:`joint_batches` for ImageNet, streamed from disk: the engine walks the labelled images once per
    epoch (B - b per batch, two views each), and each step appends the b unlabelled images of an endless
    reshuffle of the subset (:class:`UnlabelledStream`), target -1. The step's images come back as the two
    views' batches (x1, x2), each (B, 3, S, S) and contiguous (:func:`two_views` passes them through)."""
    views = data.unlabelled_views()
    if len(views) == 0:
        raise ConfigError("AutoNovelParams: unlabelled_batch_size > 0 but no unlabelled subset is loaded (subset)")
    stream = UnlabelledStream(views, params.unlabelled_batch_size, params.seed, params.num_workers,
                              torch.cuda.is_available())

    def add_unlabelled(x: Tensor, target: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        xu = stream.batch(clock.trainer.step).to(x.device, non_blocking=True)
        # one contiguous (B, 3, S, S) batch per view: no (B, 2, 3, S, S) concatenation, no strided view copies
        views = (torch.cat([x[:, 0], xu[:, 0]]), torch.cat([x[:, 1], xu[:, 1]]))
        return views, torch.cat([target, target.new_full((len(xu),), -1)])

    return data.joint_labelled_set, add_unlabelled
