"""Training of the chapter through :mod:`thesislib.engine` (thesis ch. 5 §3, Algorithm 1).

Stages of one replicate (each one engine run or a sequence of them; :class:`~thesislib.selfsup.stages.StagedPipeline`
runs a stage in this process or as ``nproc`` torchrun DDP processes):

1. ``rotnet`` — :func:`pretrain`: RotNet on every training image, labels ignored; or ``imagenet`` —
   :func:`pretrain_imagenet` (Table 2): cross-entropy on Downsampled ImageNet 32x32 (CIFAR ResNet-18), or
   torchvision's ImageNet ResNet-18 weights read from a file (full-size images);
2. ``labelled`` — :func:`train_labelled`: the labelled-set baseline, N_t fine-tuned on the labelled
   images only (cycle 1's phase one);
3. ``alternating`` — :func:`train_alternating`: Algorithm 1, ``cycles`` times: phase one (supervised,
   :func:`supervised_phase`), label assignment (:func:`assign_labels`), the split
   (:func:`~thesislib.methods.scarce_annotations.losses.cycle_subset`), the restart from the RotNet weights, phase two
   (:func:`unsupervised_phase`, L_pseudo + L_temp). As in the released code the model is scored after the
   last phase two. Its history's ``eval`` records hold one line per cycle: ``phase_one_acc`` (test accuracy
   after phase one), ``test_acc`` (after phase two; the last one is the score), ``pseudo_acc`` (of the
   assigned labels on the unlabelled images, read for monitoring only) and ``switch_rate`` (share of
   unlabelled images whose label changed since the previous assignment) and ``train_size`` (|T_i|). With
   ``mode: refinement`` (Table 1) it starts from, and restarts to, the Mean Teacher network given as its
   initial weights, assigns soft labels and never splits;
4. ``pimodel`` — :func:`train_pimodel`: the Π-model (``mt_decay`` 0) or Mean Teacher baseline (two heads and
   the logit distance with ``mt_logit_distance`` >= 0; from random weights with ``pi_init: scratch``);
5. ``supervised`` — :func:`train_supervised`: every training label (Table 2's "Fully Sup.").

By hand: ``[torchrun --standalone --nproc_per_node 4 -m] python -m thesislib.methods.scarce_annotations.train
--params p.yaml --stage rotnet --output DIR``, then ``--stage alternating --init DIR/rotnet.pt``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from thesislib.engine import (
    Constant,
    Cosine,
    History,
    MultiStep,
    Trainer,
    evaluate,
    make_scheduler,
    steps_per_epoch,
    train_config,
)
from thesislib.engine.distributed import get_rank, unwrap
from thesislib.methods.scarce_annotations.config import ScarceParams, scarce_config
from thesislib.methods.scarce_annotations.data import (
    ScarceData,
    augment,
    imagenet32,
    labelled_subset,
    load_data,
    model_input,
)
from thesislib.methods.scarce_annotations.losses import (
    PHASE_ONE_STREAM,
    PHASE_TWO_STREAM,
    TemporalTargets,
    cycle_subset,
    derived_seed,
    logit_distance,
    pi_loss,
    soft_pseudo_labels,
    unlabelled_loss,
)
from thesislib.methods.scarce_annotations.model import (
    CLASS_HEAD,
    CONS_HEAD,
    IMAGENET_HEAD,
    classifier_model,
    imagenet_model,
    restore_trainable,
    rotnet_model,
    trainable_only_heads,
)
from thesislib.nn.staged_backbone import staged_backbone
from thesislib.repro import seed_everything
from thesislib.selfsup import EpochClock, RotNetConfig, sigmoid_rampup, train_rotnet
from thesislib.selfsup.stages import StagedPipeline

__all__ = ["assign_labels", "main", "pretrain", "pretrain_imagenet", "run_stage", "supervised_phase", "test_accuracy",
           "train_alternating", "train_labelled", "train_pimodel", "train_supervised", "unsupervised_phase"]


def _sgd(model: nn.Module, lr: float, params: ScarceParams) -> torch.optim.SGD:
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=lr, momentum=0.9, nesterov=True, weight_decay=params.weight_decay)


def seed_views(seed: int) -> None:
    """Seed the global RNGs that draw the augmentation noise from ``(seed, rank)``: every torchrun rank
    draws its own views (a rank-independent seed would give every rank the same noise)."""
    seed_everything(derived_seed(seed, get_rank()))


def pretrain(params: ScarceParams, data: ScarceData, device: torch.device) -> tuple[nn.Module, History]:
    """RotNet on every training image (seeded from ``params.seed``); returns the network and its history."""
    seed_everything(params.seed)
    model = rotnet_model(params)
    seed_views(params.seed)
    config = RotNetConfig(lr=params.rotnet_lr, milestones=params.rotnet_milestones)
    engine = train_config(params, batch_size=params.rotnet_batch_size, epochs=params.rotnet_epochs)
    history = train_rotnet(model, TensorDataset(data.train_images), engine, device, config,
                           transform=lambda x: augment(x, params))
    return unwrap(model), history


def pretrain_imagenet(params: ScarceParams, data: ScarceData | None, device: torch.device
                      ) -> tuple[nn.Module, History]:
    """The ImageNet-pretrained network of Table 2. ``resnet18_imagenet``: torchvision's ImageNet ResNet-18 from
    ``imagenet_weights`` (nothing to train; empty history). ``resnet18``: the CIFAR ResNet-18 trained with
    cross-entropy on the 1,000 classes of Downsampled ImageNet 32x32, ``imagenet_epochs`` epochs, SGD Nesterov
    at ``imagenet_lr`` /5 from 0-based epochs ``imagenet_milestones``, pad-4 crop + flip (the target data's
    input statistics). ``data`` (the target set) is not read."""
    seed_everything(params.seed)
    model = imagenet_model(params)
    if params.backbone == "resnet18_imagenet":
        return model, History()
    dataset = imagenet32(params)
    config = train_config(params, batch_size=params.imagenet_batch_size, epochs=params.imagenet_epochs)
    opt = _sgd(model, params.imagenet_lr, params)
    spe = steps_per_epoch(len(dataset), config.batch_size, config.drop_last)
    sched = make_scheduler(opt, MultiStep(tuple(m * spe for m in params.imagenet_milestones), 0.2))
    seed_views(params.seed)

    def step(m: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        logits = m(augment(batch[0], params))[IMAGENET_HEAD]
        return F.cross_entropy(logits.float(), batch[1]), {"acc": (logits.argmax(1) == batch[1]).float().mean()}

    history = Trainer(model, opt, dataset, step, config, device, scheduler=sched).fit()
    return unwrap(model), history


def _ce_step(params: ScarceParams, freeze_bn: bool):
    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        if freeze_bn:   # the engine sets train mode every epoch; the frozen representation keeps its BN statistics
            model.eval()
        logits = model(augment(batch[0], params))[CLASS_HEAD]
        return F.cross_entropy(logits.float(), batch[1]), {"acc": (logits.argmax(1) == batch[1]).float().mean()}
    return step


def supervised_phase(model: nn.Module, params: ScarceParams, data: ScarceData, labelled: Tensor,
                     device: torch.device, head_only: bool, seed: int | None = None) -> History:
    """Phase one: cross-entropy on the labelled images ``labelled`` (L,); every unfrozen layer for
    ``refine_epochs`` at ``refine_lr`` (cycle 1, train mode), or the classifier only for ``head_epochs`` at
    ``head_lr`` with the network in **eval mode**: the BatchNorm layers normalise with, and keep, their running
    statistics, so the intermediate representation is not modified (thesis: "only fine-tune the final
    classification layer"; code: ``model.eval()`` when ``outer_loop > 0``). ``seed`` (default ``params.seed``)
    seeds the batch order and the views."""
    seed = params.seed if seed is None else seed
    before = trainable_only_heads(model) if head_only else None
    epochs, lr = (params.head_epochs, params.head_lr) if head_only else (params.refine_epochs, params.refine_lr)
    dataset = TensorDataset(data.train_images[labelled], data.train_labels[labelled])
    config = train_config(params, batch_size=min(params.batch_size, len(labelled)), epochs=epochs, seed=seed)
    seed_views(seed)
    try:
        return Trainer(model, _sgd(model, lr, params), dataset, _ce_step(params, head_only), config, device).fit()
    finally:
        if before is not None:
            restore_trainable(unwrap(model), before)


def _predict(model: nn.Module, images: Tensor, params: ScarceParams, device: torch.device) -> Tensor:
    def fn(m: nn.Module, batch: Any) -> Tensor:
        return torch.softmax(m(model_input(batch[0], params))[CLASS_HEAD].float(), 1)
    return evaluate(unwrap(model), TensorDataset(images), fn, device, batch_size=params.eval_batch_size,
                    amp=params.amp)


def assign_labels(model: nn.Module, params: ScarceParams, data: ScarceData, labelled: Tensor,
                  device: torch.device, soft: bool = False) -> Tensor:
    """Pseudo-labels of every training image from N_t without augmentation: hard (N,), the argmax, or ``soft``
    (N, C), the softmax (refinement mode); the labelled images keep their true labels (released code)."""
    probs = _predict(model, data.train_images, params, device)
    if soft:
        return soft_pseudo_labels(probs, labelled, data.train_labels)
    pseudo = probs.argmax(1)
    pseudo[labelled] = data.train_labels[labelled]
    return pseudo


def test_accuracy(model: nn.Module, params: ScarceParams, data: ScarceData, device: torch.device) -> float:
    """Top-1 accuracy on the test set."""
    pred = _predict(model, data.test_images, params, device).argmax(1)
    return float((pred == data.test_labels).float().mean())


def _phase_two_step(params: ScarceParams, targets: TemporalTargets):
    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, pseudo, idx = batch
        logits = model(augment(x, params))[CLASS_HEAD]
        prev = targets.prev[idx.to(targets.prev.device)]
        loss = unlabelled_loss(logits, pseudo, prev, params.temp_weight)
        targets.record(idx, torch.softmax(logits.float(), 1))
        hard = pseudo.argmax(1) if pseudo.is_floating_point() else pseudo
        return loss, {"agree": (logits.argmax(1) == hard).float().mean()}
    return step


def unsupervised_phase(model: nn.Module, params: ScarceParams, data: ScarceData, subset: Tensor, pseudo: Tensor,
                       device: torch.device, seed: int | None = None) -> History:
    """Phase two on the images ``subset`` (T_i) with their pseudo-labels: (1 - w) L_pseudo + w L_temp,
    ``inner_epochs`` epochs, lr ``inner_lr`` x0.1 from epoch index ``inner_milestones`` (0-based); p^{t-1}
    uniform at the start. ``seed`` (default ``params.seed``; Algorithm 1 passes one per cycle) seeds the batch
    order and the views."""
    seed = params.seed if seed is None else seed
    dataset = TensorDataset(data.train_images[subset], pseudo[subset], subset)
    targets = TemporalTargets(len(data.train_images), data.num_classes, device)
    opt = _sgd(model, params.inner_lr, params)
    config = train_config(params, batch_size=params.batch_size, epochs=params.inner_epochs, seed=seed)
    seed_views(seed)
    spe = steps_per_epoch(len(dataset), config.batch_size, config.drop_last)
    sched = make_scheduler(opt, MultiStep(tuple(m * spe for m in params.inner_milestones), 0.1))
    return Trainer(model, opt, dataset, _phase_two_step(params, targets), config, device, scheduler=sched,
                   on_epoch_end=targets.end_epoch).fit()


def train_labelled(params: ScarceParams, data: ScarceData, device: torch.device, state: dict[str, Tensor]
                   ) -> tuple[nn.Module, History]:
    """The labelled-set baseline: N_t from RotNet fine-tuned on the labelled images (cycle 1's phase one)."""
    labelled = labelled_subset(data.train_labels, params.labels_per_class, data.num_classes, params.seed)
    model = classifier_model(params, state)
    history = supervised_phase(model, params, data, labelled, device, head_only=False)
    return unwrap(model), history


def train_supervised(params: ScarceParams, data: ScarceData, device: torch.device, state: dict[str, Tensor]
                     ) -> tuple[nn.Module, History]:
    """Full supervision (Table 2's reference row): cycle 1's phase one on every training label."""
    model = classifier_model(params, state)
    history = supervised_phase(model, params, data, torch.arange(len(data.train_labels)), device, head_only=False)
    return unwrap(model), history


def train_alternating(params: ScarceParams, data: ScarceData, device: torch.device, state: dict[str, Tensor]
                      ) -> tuple[nn.Module, History]:
    """Algorithm 1 (with the ``split`` / ``reinit`` / ``temp_weight`` switches of the ablations). ``state``: the
    preparation-phase weights, RotNet's (``mode: cycles``) or the Mean Teacher network's (``mode: refinement``:
    its classification layer kept, soft labels, no split, phase one on the classification layer only)."""
    refine = params.mode == "refinement"
    if refine and (state is None or f"heads.{CLASS_HEAD}.weight" not in state):
        raise ValueError("mode refinement refines a Mean Teacher network: the initial weights must be the pimodel "
                         f"stage's output (with heads.{CLASS_HEAD}.*), not a pre-trained trunk")
    labelled = labelled_subset(data.train_labels, params.labels_per_class, data.num_classes, params.seed)
    unlabelled = torch.ones(len(data.train_labels), dtype=torch.bool)
    unlabelled[labelled] = False
    model = classifier_model(params, state, keep_heads=refine)
    n = len(data.train_labels)
    history, previous, started = History(), None, time.perf_counter()
    for cycle in range(params.cycles):
        one_seed = params.seed if cycle == 0 else derived_seed(params.seed, cycle, PHASE_ONE_STREAM)
        supervised_phase(model, params, data, labelled, device, head_only=cycle > 0 or refine, seed=one_seed)
        record: dict[str, Any] = {"step": cycle, "epoch": cycle, "cycle": cycle,
                                  "phase_one_acc": test_accuracy(model, params, data, device)}
        pseudo = assign_labels(model, params, data, labelled, device, soft=refine)
        hard = pseudo.argmax(1) if refine else pseudo
        record["pseudo_acc"] = float((hard[unlabelled] == data.train_labels[unlabelled]).float().mean())
        record["switch_rate"] = (math.nan if previous is None else
                                 float((hard[unlabelled] != previous[unlabelled]).float().mean()))
        previous = hard
        subset = cycle_subset(n, params.seed, cycle, params.split and not refine, params.split_cycles)
        record["train_size"] = len(subset)
        two_seed = derived_seed(params.seed, cycle, PHASE_TWO_STREAM)   # cycles c and c + 3 do not replay each other
        if params.reinit:
            model = classifier_model(params, state, seed=two_seed, keep_heads=refine)
        inner = unsupervised_phase(model, params, data, subset, pseudo, device, seed=two_seed)
        history.train += [{**r, "cycle": cycle} for r in inner.train]
        record["test_acc"] = test_accuracy(model, params, data, device)   # the code scores after the last phase two
        record["time"] = time.perf_counter() - started
        history.eval.append(record)
    return unwrap(model), history


def _pi_step(params: ScarceParams, clock: EpochClock):
    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        heads = model(augment(x, params))
        out1 = heads[CLASS_HEAD]
        # Mean Teacher's two heads: the consistency compares the consistency logits with the teacher's class logits
        p1 = torch.softmax((heads[CONS_HEAD] if params.mt_two_heads else out1).float(), 1)
        v2 = augment(x, params)
        if params.mt_decay > 0:          # Mean Teacher: the second view through the EMA weights, no gradient
            teacher = clock.trainer.ema.module
            teacher.train()              # as the Mean Teacher code: the teacher normalises with batch statistics
            with torch.no_grad():
                p2 = torch.softmax(teacher(v2)[CLASS_HEAD].float(), 1)
        else:                            # Π-model: both views through the student
            p2 = torch.softmax(model(v2)[CLASS_HEAD].float(), 1)
        weight = params.pi_weight * sigmoid_rampup(clock(), params.pi_rampup_epochs)
        loss, parts = pi_loss(out1, y, p1, p2, weight, params.pi_ce_norm)
        if params.mt_two_heads:
            distance = logit_distance(out1, heads[CONS_HEAD])
            loss = loss + params.mt_logit_distance * distance
            parts["logit_distance"] = distance.detach()
        return loss, parts               # w(t) is a function of the epoch: not logged per step (no host-device copy)
    return step


def pimodel_dataset(data: ScarceData, labelled: Tensor, share: float) -> TensorDataset:
    """Every training image once with label -1, plus the labelled images (true labels) repeated
    ceil(share / (1 - share) · U / L) times, so that about ``share`` of each batch is labelled."""
    n_unl = len(data.train_labels) - len(labelled)
    repeat = max(1, math.ceil(share / (1.0 - share) * n_unl / len(labelled)))
    mask = torch.ones(len(data.train_labels), dtype=torch.bool)
    mask[labelled] = False
    rep = labelled.repeat(repeat)
    images = torch.cat([data.train_images[mask], data.train_images[rep]])
    labels = torch.cat([torch.full((n_unl,), -1, dtype=torch.long), data.train_labels[rep]])
    return TensorDataset(images, labels)


def train_pimodel(params: ScarceParams, data: ScarceData, device: torch.device, state: dict[str, Tensor]
                  ) -> tuple[nn.Module, History]:
    """Π-model (``mt_decay`` 0) or Mean Teacher from the pre-trained weights (``pi_init: scratch``: random
    weights): CE + w(t)·MSE (+ the logit distance of Mean Teacher's two heads), ``pi_epochs``; Mean Teacher
    returns the EMA (teacher) network, the one Tarvainen & Valpola evaluate."""
    labelled = labelled_subset(data.train_labels, params.labels_per_class, data.num_classes, params.seed)
    model = classifier_model(params, state if params.pi_init == "pretrained" else None)
    dataset = pimodel_dataset(data, labelled, params.pi_labelled_share)
    config = train_config(params, batch_size=params.batch_size, epochs=params.pi_epochs,
                          ema_decay=params.mt_decay if params.mt_decay > 0 else None)
    opt = _sgd(model, params.pi_lr, params)
    spe = steps_per_epoch(len(dataset), config.batch_size, config.drop_last)
    # Mean Teacher code: lr x 0.5 (1 + cos(pi t / rampdown)), t in epochs (rampdown >= epochs: cut before the end)
    sched = make_scheduler(opt, Cosine(params.pi_rampdown_epochs * spe) if params.pi_rampdown_epochs else Constant())
    clock = EpochClock()
    seed_views(params.seed)
    trainer = Trainer(model, opt, dataset, _pi_step(params, clock), config, device, scheduler=sched)
    clock.trainer = trainer
    history = trainer.fit()
    if params.mt_decay > 0:
        teacher = unwrap(trainer.ema.module)
        teacher.requires_grad_(False)
        return teacher, history
    return unwrap(model), history


def _stage(stage: str, params: ScarceParams, data: ScarceData, device: torch.device,
           init: dict[str, Tensor] | None) -> tuple[nn.Module, History]:
    if stage == "rotnet":
        return pretrain(params, data, device)
    if stage == "imagenet":
        return pretrain_imagenet(params, data, device)
    train = {"labelled": train_labelled, "alternating": train_alternating, "pimodel": train_pimodel,
             "supervised": train_supervised}[stage]
    return train(params, data, device, init)


def _model_for(stage: str, params: ScarceParams) -> nn.Module:
    if stage == "rotnet":
        return rotnet_model(params)
    if stage == "imagenet":
        return staged_backbone(params.backbone, {IMAGENET_HEAD: 1000}, resnet_width=params.resnet_width)
    return classifier_model(params, None)


#: The stages, in-process or under torchrun (:class:`thesislib.selfsup.stages.StagedPipeline`). The refinement
#: is the ``alternating`` stage with ``mode: refinement`` and ``--init`` the ``pimodel`` stage's output.
PIPELINE = StagedPipeline("scarce_annotations", "thesislib.methods.scarce_annotations.train",
                          ("rotnet", "imagenet", "labelled", "alternating", "pimodel", "supervised"),
                          ("labelled", "alternating", "pimodel", "supervised"),
                          scarce_config, load_data, _stage, _model_for)


def run_stage(stage: str, params: ScarceParams, device: str | torch.device = "auto", **kwargs: Any
              ) -> tuple[nn.Module, History]:
    """Train ``stage`` in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes
    (keywords: ``data``, ``init``, ``nproc``, ``output``, ``timeout``)."""
    return PIPELINE.run(stage, params, device, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.scarce_annotations.train --params p.(json|yaml)
    --stage rotnet|imagenet|labelled|alternating|pimodel|supervised [--init rotnet.pt] [--output DIR] [--device D]``."""
    return PIPELINE.main(argv)


if __name__ == "__main__":
    sys.exit(main())
