"""The paper's protocol and experiment ids of the G-softmax chapter.

:func:`experiment_id` names a run ``<dataset>/<backbone tag>/<method tag>``; it is exactly an id of
``thesislib/replication/gsoftmax.yaml`` when the run follows the paper's protocol
(:func:`paper_protocol`) on the paper's full data, and names its deviations
(``cifar10/wrn-40-14/softmax[epochs=30]``) otherwise, so a shortened run can never be mistaken for
the paper's experiment.
"""

from __future__ import annotations

import re
from typing import Any

from thesislib.methods.gsoftmax.config import PAPER_MALLEABLE, RunSpec, parse_backbone

PAPER_LAM: dict[str, float] = {"cifar10": 0.5, "cifar100": 1.0, "coco": 1.0}
#: (train, test) images of the paper's data (COCO: images with at least one label, as in SRN)
PAPER_DATA_SIZES: dict[str, tuple[int, int]] = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
                                                "coco": (82_081, 40_137)}
_WRN_PROTOCOL = dict(epochs=300, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="multistep",
                     milestones=(60, 120, 160, 220, 260), gamma=0.2)
_MALLEABLE_PROTOCOL = dict(epochs=1100, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                           schedule="malleable", malleable_pieces=PAPER_MALLEABLE, malleable_base=10.0)
_COCO_PROTOCOL = dict(epochs=8, batch_size=16, lr=1e-5, momentum=0.9, weight_decay=1e-4, schedule="constant")


def paper_protocol(config: RunSpec) -> dict[str, Any]:
    """The optimisation settings the paper states for ``config.dataset`` (empty for digits/mosaics).

    CIFAR: WRN (Sec. IV-A; the malleable run when ``schedule == "malleable"``); COCO: Sec. IV-B.
    Nesterov momentum is not stated by the paper and is not part of the protocol.
    """
    if config.dataset in ("cifar10", "cifar100"):
        return dict(_MALLEABLE_PROTOCOL if config.schedule == "malleable" else _WRN_PROTOCOL)
    if config.dataset == "coco":
        return dict(_COCO_PROTOCOL)
    return {}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _setting(config: RunSpec, key: str) -> Any:
    """A run's optimisation setting: its per-part property, else the shared parameter."""
    return getattr(config, key) if hasattr(type(config), key) else getattr(config.params, key)


def protocol_deviations(config: RunSpec, num_train: int | None = None,
                        num_test: int | None = None) -> list[str]:
    """``"key=value"`` for every way ``config`` (and the loaded data sizes, if given) departs from
    the paper's protocol on a paper data set; empty for digits/mosaics and for faithful runs."""
    protocol = paper_protocol(config)
    if not protocol:
        return []
    schedule_keys = {"multistep": ("milestones", "gamma"), "malleable": ("malleable_pieces", "malleable_base")}
    keys = ["epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule"]
    if config.schedule == protocol["schedule"]:
        keys += schedule_keys.get(config.schedule, ())
    out = [f"{k}={_fmt(_setting(config, k))}" for k in keys if _setting(config, k) != protocol[k]]
    if config.max_steps is not None:
        out.append(f"max_steps={config.max_steps}")
    if config.dataset == "coco" and not config.params.weights_path:
        out.append("init=random")
    if num_train is not None and num_test is not None:
        full_train, full_test = PAPER_DATA_SIZES[config.dataset]
        tolerance = 0.99 if config.dataset == "coco" else 1.0       # COCO: label-filter counts vary a little
        if num_train < tolerance * full_train or num_test < tolerance * full_test:
            out.append(f"data={num_train}/{num_test}")
    return out


def id_slug(eid: str) -> str:
    """An experiment id as one directory name (``/``, brackets, commas and the like become ``_``)."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", eid).strip("_")


def backbone_tag(config: RunSpec) -> str:
    """``wrn-40-14``, ``wrn-40-14-malleable`` (CIFAR with the malleable LR), ``resnet101-gmp-448``, ``mlp``."""
    spec = parse_backbone(config.backbone)
    if spec.kind == "resnet-gmp":
        return f"{spec.arch}-gmp-{config.params.image_size}"
    if config.dataset in ("cifar10", "cifar100") and config.schedule == "malleable":
        return f"{config.backbone}-malleable"
    return config.backbone


def method_tag(config: RunSpec) -> str:
    """``softmax``, ``lsoftmax``, ``gsoftmax`` or e.g. ``gsoftmax(mu=-0.1,sigma=1)``, ``gsoftmax(lam=1)``.

    On the paper's data sets lam is named only when it differs from the paper's value there (CIFAR-10
    0.5, CIFAR-100 and COCO 1) and the margin of L-softmax only when it is not 2; on the smoke data
    sets both are always named. (mu, sigma) are named when they differ from (0, 1).
    """
    paper = config.dataset in PAPER_LAM
    args: list[str] = []
    if config.method == "gsoftmax":
        if not paper or config.lam != PAPER_LAM[config.dataset]:
            args.append(f"lam={config.lam:g}")
        if (config.mu_init, config.sigma_init) != (0.0, 1.0):
            args += [f"mu={config.mu_init:g}", f"sigma={config.sigma_init:g}"]
        if config.params.sigma_param != "exp":
            args.append(f"sigma_param={config.params.sigma_param}")
        if not config.params.learn_gaussians:
            args.append("frozen")
    elif config.method == "lsoftmax" and (not paper or config.params.lsoftmax_margin != 2):
        args.append(f"m={config.params.lsoftmax_margin}")
    if config.multilabel and config.multilabel_reading != "pairwise":
        args.append(f"reading={config.multilabel_reading}")
    return config.method + (f"({','.join(args)})" if args else "")


def experiment_id(config: RunSpec, num_train: int | None = None, num_test: int | None = None) -> str:
    """``<dataset>/<backbone tag>/<method tag>`` plus ``[deviations]`` from the paper's protocol.

    A faithful run on the paper's data gets exactly its id in ``replication/gsoftmax.yaml``
    (e.g. ``cifar10/wrn-40-14/gsoftmax``, ``coco/resnet101-gmp-448/gsoftmax(mu=-0.1,sigma=1)``); a
    shortened or otherwise changed one gets e.g. ``cifar10/wrn-40-14/softmax[epochs=30]``, so it can
    never be mistaken for the paper's experiment. Pass the loaded data sizes to also check that the
    full data set was used. The seed is not part of the id (seeds are aggregated under it).
    """
    base = f"{config.dataset}/{backbone_tag(config)}/{method_tag(config)}"
    deviations = protocol_deviations(config, num_train, num_test)
    return base + (f"[{','.join(deviations)}]" if deviations else "")
