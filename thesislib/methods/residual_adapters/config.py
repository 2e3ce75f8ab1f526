"""Residual adapters' parameters, declared once (:class:`ResidualAdaptersParams`), and what derives from them.

The class is the notebook's ``parameters`` cell, the validated ``thesislib run`` parameters
(``configs/residual_adapters/{smoke,full}.yaml`` plus ``-p``) and the configuration of one run.
Chapter 4 (``parallel_adapters``) subclasses it.

Decisions recorded here (the thesis is silent, or its code and text differ):

* **Schedule.** The thesis says "80 epochs, 0.1 lowered to 0.01 then 0.001 gradually"; the released
  code trains 120 epochs with x0.1 at epochs 80 and 100. We follow the code, in optimiser steps:
  ``target_steps`` with the drops at 2/3 and 5/6 of it (80/120 and 100/120). Few-shot smoke
  domains have one or two batches per epoch, so steps, not epochs, set the budget.
* **Which pre-trained network each method starts from.** As in Table 1: series adapters and the
  feature extractor use the network pre-trained *with* series adapters (ImNet 59.67 in both rows);
  BN adaptation and fine-tuning use the plain pre-trained network (59.87); scratch starts from a
  random one. Both pre-trainings are shared by every replicate: the thesis pre-trains once on
  ImageNet and then trains each domain; replicates re-draw the few-shot training sets and the
  target runs' seeds. ``seed`` seeds the pre-training (it is in the checkpoint's hash) and the first
  replicate; replicate ``i`` uses ``seed + i`` for its data and target runs only (under torchrun it
  travels as ``--replicate-seed``, so no replicate pre-trains again).
* **Weight decay.** The code decays the 3x3 and the 1x1 filters with their own coefficients and the
  rest (BN, classifier) with a third; here the classifier has its own (``wd_head``), BN none.
  The adapter decay is the thesis's shrinkage knob (0.0005 by default, 0.002-0.005 on small sets).
* **Per-domain adapter decay** ("Res. adapt. decay", method ``series_decay``): ``wd_adapter_by_domain``
  lists ``domain:decay`` pairs; domains not listed keep ``wd_adapter``. The full config uses Ch. 4
  §3.3's size groups (:data:`THESIS_DECAY_GROUPS`), the only per-dataset values the thesis prints
  (Ch. 3 says the values were chosen per dataset by a coarse grid search, without listing them).
* **Finetune all** (``finetune_all``): Ch. 3 §5 fine-tunes "all parameters end-to-end on the ten
  tasks" (the source included), one batch per dataset in round-robin, then "a final pass on the
  adapters only". It starts from the network pre-trained with series adapters (every target's
  modules copied from the source's), every domain's adapters take its per-domain decay; the
  thesis gives no step count, so ``joint_steps`` 0 means (1 + number of targets) x the longest
  target run's steps: every domain gets as many batches as the longest sequential run. The final
  pass trains each target's adapters, BNs and head alone (the ``series`` recipe) in place.
* **Unknown domain** (``dompred``): a light ResNet (three stages of two units) is trained to
  predict the domain (source and targets, natural proportions, centre ``image_size`` crops) for
  ``dompred_steps`` steps at the pre-training batch size and learning rate (the thesis gives no
  schedule); each test image goes to its predicted domain's series-adapter modules. An image sent
  to the wrong domain is counted wrong (that domain's head answers in another label space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError, from_mapping, replace
from thesislib.data.decathlon import DECATHLON_DOMAINS
from thesislib.data.mini_decathlon import SOURCE_DOMAINS, TARGET_DOMAINS
from thesislib.engine import MultiStep, TrainConfig, train_config
from thesislib.nn.multidomain import WeightDecay
from thesislib.params import RunParams, param

METHODS: tuple[str, ...] = ("scratch", "feature", "bn", "series", "finetune")
#: methods that train all domains of a replicate together (not one target at a time)
JOINT_METHODS: tuple[str, ...] = ("finetune_all", "dompred")
#: the thesis's extra Table 1 rows (Ch. 3 §5): per-domain adapter decay, finetune all, domain prediction
EXTRA_METHODS: tuple[str, ...] = ("series_decay",) + JOINT_METHODS
#: Ch. 4 §3.3's adapter weight decay per dataset-size group (study note 003 §2.3)
THESIS_DECAY_GROUPS: dict[str, float] = {
    "aircraft": 0.002, "dtd": 0.002, "vgg-flowers": 0.002,
    "omniglot": 0.0005, "daimlerpedcls": 0.0005, "ucf101": 0.0005,
    "cifar100": 0.0001, "gtsrb": 0.0001, "svhn": 0.0001,
}
#: every method the library can run (Ch. 4 adds parallel adapters and series adapters added to a plain network)
ALL_METHODS: tuple[str, ...] = METHODS + ("parallel", "series_posthoc") + EXTRA_METHODS
METHOD_LABELS = {"scratch": "Scratch", "feature": "Feature extractor", "bn": "BN adapt.",
                 "series": "Res. adapt. (series)", "finetune": "Finetune", "parallel": "Parallel adapt.",
                 "series_posthoc": "Series adapt. (off the shelf)", "series_decay": "Res. adapt. decay",
                 "finetune_all": "Res. adapt. finetune all", "dompred": "Res. adapt. dom-pred"}


@dataclass(frozen=True)
class ResidualAdaptersParams(RunParams):
    """Every parameter of the residual-adapters chapter (defaults: the smoke mini-decathlon;
    ``configs/residual_adapters/full.yaml``: the Visual Decathlon at 64x64 with ResNet-26)."""

    n_seeds: int = param(5, help="replicates (seed .. seed + n_seeds - 1); paired verdicts need 2 or more", min=1)
    nproc: int = param(1, help="torchrun processes (DDP) per training run; 1: in this process", min=1)
    # data
    data: Literal["mini", "decathlon"] = param("mini", help="mini (bundled/procedural, note 1.6a) | decathlon")
    data_root: str = param("", help="directory holding decathlon/ (empty: $THESISLIB_DATA)")
    source: str = param("glyphs", help="pre-training domain: glyphs | photos (mini) | imagenet12 (decathlon) | "
                        "imagenet (decathlon data, ILSVRC CLS-LOC folders resized to 72 px)")
    targets: tuple[str, ...] = param(("digits", "faces", "shapes", "textures"), help="target domains, in order")
    image_size: int = param(16, help="input side (decathlon: 64 crops of the 72-px images)", min=8)
    shots: int = param(10, help="mini: training images per class of each target domain", min=1)
    n_source: int = param(6000, help="mini: training images of the source domain", min=10)
    n_test: int = param(300, help="mini: test images per domain (at most)", min=10)
    tiny_domain: str = param("faces", help="the domain of the adapter weight-decay study")
    # network
    width: float = param(0.25, help="channel factor of ResNet-26 (32w, 64w, 128w, 256w; thesis 1)", min=0.05)
    blocks: tuple[int, ...] = param((1, 1, 1), help="residual units per stage (ResNet-26: 4, 4, 4)")
    # pre-training (source domain)
    pre_steps: int = param(800, help="pre-training optimiser steps", min=1)
    pre_batch_size: int = param(32, help="pre-training batch size (global)", min=1)
    pre_lr: float = param(0.1, help="pre-training SGD learning rate (x0.1 at 2/3 and 5/6 of the steps)", min=0.0)
    pretrain_dir: str = param("", help="cache of pre-trained checkpoints (empty: $THESISLIB_CACHE/residual_adapters)")
    # target domains
    methods: tuple[str, ...] = param(METHODS, help="learning methods compared (scratch feature bn series finetune)")
    target_steps: int = param(60, help="optimiser steps per target domain (x0.1 at 2/3 and 5/6)", min=1)
    target_epochs: int = param(0, help="epochs per target domain (code: 120); 0: target_steps steps", min=0)
    batch_size: int = param(16, help="target batch size (code: 128)", min=1)
    lr: float = param(0.1, help="target SGD learning rate (code: 0.1)", min=0.0)
    momentum: float = param(0.9, help="SGD momentum", min=0.0, max=1.0)
    wd_conv: float = param(5e-4, help="weight decay of the shared 3x3 filters (when trained)", min=0.0)
    wd_adapter: float = param(5e-4, help="weight decay of the 1x1 adapters (thesis default 0.0005)", min=0.0)
    wd_head: float = param(5e-4, help="weight decay of the classifiers", min=0.0)
    wd_adapter_high: float = param(0.05, help="the decay study's larger adapter decay on tiny_domain", min=0.0)
    flip: bool = param(False, help="decathlon: random horizontal flips (never on gtsrb, omniglot, svhn); mini: unused")
    # the thesis's extra rows (Ch. 3 §5): per-domain adapter decay, finetune all, unknown domain
    wd_adapter_by_domain: tuple[str, ...] = param((), help="per-domain adapter decay 'domain:decay' (series_decay, "
                                                  "finetune_all); unlisted domains keep wd_adapter")
    joint_steps: int = param(0, help="finetune_all round-robin steps; 0: (1 + targets) x the longest target run", min=0)
    joint_final: bool = param(True, help="finetune_all: the final adapters-only pass per target (target steps)")
    dompred_steps: int = param(300, help="dompred: domain-predictor optimiser steps (pre_batch_size, pre_lr)", min=1)
    eval_batch_size: int = param(512, help="evaluation batch size", min=1)
    amp: bool = param(True, help="bf16 autocast on CUDA (CPU runs are fp32)")
    num_workers: int = param(0, help="data loader workers", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.blocks) != 3:
            raise ConfigError(f"{type(self).__name__}: blocks gives the units of 3 stages, got {self.blocks}")
        # mini: the source domains (many classes, n_source images) and the few-shot targets are disjoint
        known = TARGET_DOMAINS if self.data == "mini" else DECATHLON_DOMAINS
        sources = SOURCE_DOMAINS if self.data == "mini" else DECATHLON_DOMAINS + ("imagenet",)
        bad = [d for d in self.targets if d not in known] + ([self.source] if self.source not in sources else [])
        if bad:
            raise ConfigError(f"{type(self).__name__}: unknown {self.data} domain(s) {bad}; targets: "
                              f"{', '.join(known)}; sources: {', '.join(sources)}")
        if self.source in self.targets:
            raise ConfigError(f"{type(self).__name__}: the source {self.source!r} is also a target")
        if not self.targets:
            raise ConfigError(f"{type(self).__name__}: targets is empty")
        unknown = [m for m in self.methods if m not in self.known_methods()]
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown method(s) {unknown}; known: {self.known_methods()}")
        if self.tiny_domain and self.tiny_domain not in self.targets:
            raise ConfigError(f"{type(self).__name__}: tiny_domain {self.tiny_domain!r} is not a target")
        self.adapter_decays()  # validates wd_adapter_by_domain

    def adapter_decays(self) -> dict[str, float]:
        """``wd_adapter_by_domain`` as {domain: decay}; a malformed entry, an unknown domain or a
        negative decay is a :class:`ConfigError`."""
        out: dict[str, float] = {}
        for entry in self.wd_adapter_by_domain:
            name, sep, value = str(entry).rpartition(":")
            try:
                decay = float(value)
            except ValueError:
                decay = math.nan
            if not sep or not (decay >= 0.0):
                raise ConfigError(f"{type(self).__name__}: wd_adapter_by_domain entries are 'domain:decay' with "
                                  f"decay >= 0, got {entry!r}")
            if name not in (self.source, *self.targets):
                raise ConfigError(f"{type(self).__name__}: wd_adapter_by_domain names {name!r}, which is neither "
                                  f"the source nor a target ({', '.join((self.source, *self.targets))})")
            out[name] = decay
        return out

    def adapter_decay(self, domain: str) -> float:
        """The adapter decay of ``domain``: its ``wd_adapter_by_domain`` entry, else ``wd_adapter``."""
        return self.adapter_decays().get(domain, self.wd_adapter)

    @classmethod
    def known_methods(cls) -> tuple[str, ...]:
        return ALL_METHODS

    def weight_decay(self, adapter: float | None = None) -> WeightDecay:
        """The per-group decay (:class:`~thesislib.nn.multidomain.WeightDecay`); ``adapter``
        overrides ``wd_adapter``."""
        return WeightDecay(conv3x3=self.wd_conv, adapter=self.wd_adapter if adapter is None else adapter,
                           bn=0.0, head=self.wd_head)


def adapters_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> ResidualAdaptersParams:
    """:class:`ResidualAdaptersParams` from a mapping; unknown keys are errors listing the valid ones."""
    return from_mapping(ResidualAdaptersParams, mapping, **overrides)


def config_for(params: ResidualAdaptersParams, seed: int | None = None) -> ResidualAdaptersParams:
    """The parameters of one replicate (``seed``, default ``params.seed``)."""
    return replace(params, seed=params.seed if seed is None else seed, n_seeds=1)


def step_schedule(steps: int) -> MultiStep:
    """x0.1 at 2/3 and x0.01 at 5/6 of ``steps`` (the code's epochs 80 and 100 of 120)."""
    first = max(1, (2 * steps) // 3)
    return MultiStep((first, max(first + 1, (5 * steps) // 6)), 0.1)


def pretrain_engine_config(params: ResidualAdaptersParams) -> TrainConfig:
    """The engine's config of the source-domain pre-training."""
    return train_config(params, batch_size=params.pre_batch_size, iterations=params.pre_steps,
                        log_every=max(1, params.pre_steps // 20), drop_last=True)


def target_steps(params: ResidualAdaptersParams, n_train: int) -> int:
    """Optimiser steps of one target run: ``target_epochs`` epochs of ``n_train`` images at the
    batch size (``target_steps`` when ``target_epochs`` is 0)."""
    if params.target_epochs == 0:
        return params.target_steps
    batch = min(params.batch_size, n_train)
    return params.target_epochs * max(1, n_train // batch)


def target_engine_config(params: ResidualAdaptersParams, n_train: int, seed: int) -> TrainConfig:
    """The engine's config of one target-domain run on ``n_train`` images (the batch is capped by
    the training set, so a few-shot domain still makes full steps)."""
    steps = target_steps(params, n_train)
    return train_config(params, batch_size=min(params.batch_size, n_train), iterations=steps, seed=seed,
                        log_every=max(1, steps // 10), drop_last=True)


#: methods whose replication-file id differs from their name
EXPERIMENT_NAMES = {"series_decay": "series-decay", "finetune_all": "series-finetune-all",
                    "dompred": "series-dom-pred"}


def experiment_id(params: ResidualAdaptersParams, method: str) -> str:
    """``decathlon/<method>`` for the thesis's protocol (the ids of the replication file); smoke runs
    are ``mini<S>/<method>`` and never collide with them."""
    method = EXPERIMENT_NAMES.get(method, method)
    if params.data == "decathlon" and params.image_size == 64 and tuple(params.blocks) == (4, 4, 4) \
            and params.width == 1.0:
        return f"decathlon/{method}"
    return f"{params.data}{params.image_size}/{method}"
