"""Streaming multi-layer linear probes: every frozen layer's head trained together, features never cached.

The probe protocol of Zhang et al. (2016), used by Jenni Tables 3.4, 3.5, 4.1-4.3, 4.5 and 4.6 (study note 004
§0, §4.3): freeze the network, average-pool each conv layer's map to ~9.2k features (:func:`probe_pool`),
normalise them without affine parameters and train a linear layer with weight decay on top. :mod:`thesislib.eval.
probe` extracts the features once into memory (N x ~9.2k per layer), which limits it to small training sets and to
one fixed view per image; :func:`streaming_probe` instead runs the frozen trunk on every batch:

* one trunk forward per batch, ``model.conv_layers(x, upto=<deepest requested layer>)``, gives every requested
  layer's map; each is pooled by :func:`probe_pool` and fed to its own head (:class:`ProbeHeads`);
* the heads of all layers are one module trained through :func:`thesislib.engine.fit` (its seeded epoch order,
  AMP, DDP, checkpoint / exact resume of the heads); the trunk stays outside it: eval mode (its BN running
  statistics do not move), no gradient, ``torch.no_grad`` around its forward; with ``amp`` on CUDA the trunk runs
  under bf16 autocast but the heads (standardisation and linear layers) run with autocast off, in float32, as the
  cached probe does (the cached probe's trunk runs in float32: the two modes then differ only by the trunk's bf16
  rounding);
* the training set's own transform runs every epoch, so a random-crop transform gives a fresh crop of every
  image each epoch (the engine seeds each sample's draws from ``(seed, epoch, index)``);
* SGD with momentum 0.9 and weight decay on the weights (not the biases); ``schedule="cosine"``: the learning rate
  cosine-decayed per step from ``lr`` to 0 over the run (the schedule of :func:`thesislib.eval.probe.linear_probe`);
  ``schedule="official"``: the official LCI code's probe schedule (``train/TrainerLinearClassifier.py`` of
  sjenni/LCI, read to settle the protocol): Nesterov momentum 0.9, the rate piecewise constant at ``lr`` x (1, 0.1,
  0.02, 0.004, 0.0008) with drops after 8%, 40%, 70% and 90% of the steps (``lr`` 0.1 there);
* evaluation through :func:`thesislib.engine.evaluate`: the single centre crop, and with ``test_crops=10`` also the
  multi-crop score (the † rows): the softmax (sigmoid for multi-label) averaged over the ten standard crops
  (:func:`ten_crops`: four corners and the centre, each also mirrored);
* ``multilabel=True`` (e.g. CelebA's 40 attributes, Table 4.3): one logistic regression per label, binary
  cross-entropy averaged over the labels, scored by the mean per-label average precision
  (:func:`thesislib.eval.multilabel.average_precision`).

**Standardisation (a decision).** The official code puts ``BatchNorm(affine=False)`` before each linear layer,
normalising with batch statistics while training and running averages at test time. Here a first pass over the
training set (its transform, one view per image, seeded, through :func:`thesislib.engine.evaluate`) estimates
each feature's mean and standard deviation in float64, and the heads standardise with these fixed numbers
(:class:`thesislib.eval.probe.Standardize`; a constant feature keeps std 1). Why: the probe then stays a convex
problem with a fixed input scaling, train and test see the same normalisation, no running-average momentum has to
be chosen, and the result equals :func:`thesislib.eval.probe.linear_probe` (which standardises with the whole
training set's statistics) on the same views, so the cached and the streaming modes measure the same thing. The
cost is one extra forward pass (no backward) over the training set, small against the tens of training epochs.
The statistics are buffers of the heads, so they are in the engine's checkpoints and a resumed run does not
recompute them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError
from thesislib.data.round_robin import center_crop
from thesislib.engine import (
    Staircase,
    all_gather_object,
    evaluate,
    fit,
    get_world_size,
    is_distributed,
    latest_checkpoint,
    make_scheduler,
    steps_per_epoch,
    train_config,
)
from thesislib.eval.multilabel import APKind, average_precision
from thesislib.eval.probe import PROBE_DIMS, Standardize, probe_pool
from thesislib.eval.transfer import average_crop_probs
from thesislib.params import param

__all__ = ["PROBE_DATA", "PROBE_PROTOCOL_SIDE", "PROBE_SCHEDULES", "ProbeHeads", "StreamingProbeConfig",
           "average_crop_probs", "chapter_probe_config", "check_probe_data", "probe_checkpoint_dir", "probe_data_param",
           "probe_data_set", "probe_data_stem", "probe_features", "streaming_probe", "ten_crops"]

PROBE_PROTOCOL_SIDE = 224
"""The side of the ImageNet / Places probe crops in Zhang et al.'s protocol (Jenni Tables 3.4, 4.5, 4.6; Caffe's 227
is 224 with the LCI code's pooling windows)."""
PROBE_SCHEDULES = ("cosine", "official")
OFFICIAL_DROPS = (0.08, 0.4, 0.7, 0.9)
"""Fractions of the run after which the official schedule's rate drops (to 0.1, 0.02, 0.004, 0.0008 x ``lr``)."""
OFFICIAL_FACTORS = (1.0, 0.1, 0.02, 0.004, 0.0008)

STATS_SEED = 7_368_787
"""Offset of the seed of the statistics pass's random draws (``seed + STATS_SEED``)."""


@dataclass(frozen=True)
class StreamingProbeConfig:
    """Settings of :func:`streaming_probe` (recorded in its result).

    ``crop``: side of the test crops; 0 reads each test image whole (single view; ``test_crops`` must be 0). With
    ``crop`` > 0 the single-crop score reads the centre ``crop`` x ``crop`` window of each test image (test images
    at least that large) and ``test_crops=10`` adds the ten-crop score. ``amp``, ``channels_last``,
    ``num_workers``, ``progress`` as in :class:`thesislib.engine.TrainConfig`; ``checkpoint_dir`` turns on the
    engine's checkpoints of the heads (every epoch, and every ``checkpoint_every`` steps) and resumes from them.
    """

    epochs: int = 10
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    eval_batch_size: int = 256
    seed: int = 0
    dims: int = PROBE_DIMS
    multilabel: bool = False
    ap_kind: APKind = "ranked"
    schedule: Literal["cosine", "official"] = "cosine"
    crop: int = 0
    test_crops: Literal[0, 10] = 0
    num_workers: int = 0
    amp: bool = True
    channels_last: bool = True
    progress: Literal["auto", "bar", "log", "none"] = "none"
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        if self.test_crops not in (0, 10):
            raise ValueError(f"StreamingProbeConfig.test_crops must be 0 or 10 (the ten standard crops), got "
                             f"{self.test_crops!r}")
        if self.schedule not in PROBE_SCHEDULES:
            raise ValueError(f"StreamingProbeConfig.schedule must be one of {PROBE_SCHEDULES}, got {self.schedule!r}")
        if self.test_crops and not self.crop:
            raise ValueError("StreamingProbeConfig.test_crops needs crop > 0 (the crops' side)")
        for name in ("epochs", "batch_size", "eval_batch_size", "dims"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"StreamingProbeConfig.{name} must be >= 1, got {getattr(self, name)!r}")


def probe_features(model: nn.Module, layers: Sequence[str], x: torch.Tensor,
                   dims: int = PROBE_DIMS) -> dict[str, torch.Tensor]:
    """``{layer: (B, D_layer) float32}``: ONE call ``model.conv_layers(x, upto=layers[-1])`` (``layers`` in network
    order), each requested map (B, C, H, W) pooled by :func:`probe_pool` to ~``dims`` features."""
    maps = model.conv_layers(x, upto=layers[-1])
    missing = [layer for layer in layers if layer not in maps]
    if missing:
        raise ValueError(f"layers {missing} are not among {list(maps)} computed up to {layers[-1]!r}: give the probe "
                         "layers in network order")
    return {layer: probe_pool(maps[layer], dims).float() for layer in layers}


class ProbeHeads(nn.Module):
    """One affine-free standardisation + linear layer per probed layer: ``{layer: (B, D_layer)} -> {layer: (B, K)}``.

    ``dims``: ``{layer: D_layer}``; ``mean`` / ``std``: ``{layer: (D_layer,)}`` buffers (placeholders 0 / 1 until
    the statistics pass or a checkpoint fills them). The linear layers start at zero (the loss is convex)."""

    def __init__(self, dims: dict[str, int], num_outputs: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({
            layer: nn.Sequential(Standardize(torch.zeros(d), torch.ones(d)),
                                 nn.utils.skip_init(nn.Linear, d, num_outputs))  # no random init: zeroed below
            for layer, d in dims.items()})
        for head in self.heads.values():
            nn.init.zeros_(head[1].weight)
            nn.init.zeros_(head[1].bias)

    def set_statistics(self, mean: dict[str, torch.Tensor], std: dict[str, torch.Tensor]) -> None:
        for layer, head in self.heads.items():
            head[0].mean.copy_(mean[layer])
            head[0].std.copy_(std[layer])

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {layer: head(feats[layer]) for layer, head in self.heads.items()}


def ten_crops(images: torch.Tensor, size: int) -> torch.Tensor:
    """The ten standard test crops of ``images`` (B, C, H, W), H, W >= ``size``: (B, 10, C, size, size) in the order
    centre, top-left, top-right, bottom-left, bottom-right, then the same five mirrored left-right (the Caffe /
    AlexNet "oversample" crops; index 0 is the single centre crop)."""
    h, w = images.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"images {h}x{w} are smaller than the crop {size}")
    top, left = (h - size) // 2, (w - size) // 2
    corners = [(top, left), (0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
    five = [images[..., t:t + size, c:c + size] for t, c in corners]
    return torch.stack(five + [x.flip(-1) for x in five], dim=1)


def _statistics(trunk: nn.Module, layers: Sequence[str], train: Dataset, device: torch.device,
                config: StreamingProbeConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Mean and std (unbiased=False, float64 sums) of every layer's pooled features over one seeded pass of
    ``train``, summed over DDP ranks. Sample ``i``'s view is drawn from ``(seed + STATS_SEED, i)``
    (:func:`thesislib.engine.evaluate`'s ``seed``), so the statistics do not depend on the number of ranks."""
    sums: dict[str, list[torch.Tensor]] = {}

    def accumulate(net: nn.Module, batch: Any) -> torch.Tensor:
        feats = probe_features(net, layers, batch[0], config.dims)
        for layer, f in feats.items():
            f = f.double()
            if layer not in sums:
                sums[layer] = [torch.zeros(f.shape[1], dtype=torch.float64, device=f.device) for _ in range(2)]
            sums[layer][0] += f.sum(dim=0)
            sums[layer][1] += f.pow(2).sum(dim=0)
        return torch.ones(batch[0].shape[0])

    counts = evaluate(trunk, train, accumulate, device, batch_size=config.eval_batch_size,
                      num_workers=config.num_workers, amp=config.amp, channels_last=config.channels_last,
                      seed=config.seed + STATS_SEED)
    n = float(counts.numel())
    local = {layer: torch.stack(s).cpu() for layer, s in sums.items()}
    if is_distributed() and get_world_size() > 1:  # evaluate gathered the counts of all ranks; sum the sums too
        parts = all_gather_object(local)
        local = {layer: sum(p[layer] for p in parts if layer in p) for layer in layers}
    mean, std = {}, {}
    for layer in layers:
        m = local[layer][0] / n
        s = (local[layer][1] / n - m * m).clamp_min(0.0).sqrt()
        mean[layer] = m.float()
        std[layer] = torch.where(s > 1e-8, s, torch.ones_like(s)).float()
    return mean, std


def _first_item(train: Dataset) -> Any:
    """``train[0]`` (for the heads' shapes) read with Python's, NumPy's and torch's global generators saved and
    restored, so that a random transform does not consume the caller's streams."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        return train[0]
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


def _num_outputs(first: Any, multilabel: bool, num_classes: int | None) -> int:
    target = torch.as_tensor(first[1])
    if multilabel:
        if target.ndim != 1:
            raise ValueError(f"multilabel targets must be (C,) 0/1 vectors, got shape {tuple(target.shape)}")
        return int(target.shape[0])
    if num_classes is None:
        raise ValueError("streaming_probe needs num_classes for single-label targets (the training set is not "
                         "scanned for its labels)")
    return int(num_classes)


def streaming_probe(model: nn.Module, layers: Sequence[str], train: Dataset, test: Dataset,
                    device: torch.device | str, config: StreamingProbeConfig = StreamingProbeConfig(),
                    num_classes: int | None = None) -> dict[str, Any]:
    """Train a linear probe on every layer of ``layers`` of the frozen ``model`` at once, streaming the features.

    ``model`` has ``conv_layers(x, upto=) -> {layer: (B, C_l, H_l, W_l)}`` (``layers`` in network order);
    ``train`` yields ``(image (C, S, S), target)`` (its transform may draw a random crop / flip: a fresh one every
    epoch), ``test`` ``(image (C, H, W), target)`` with H, W >= ``config.crop`` (or any size when ``crop`` is 0);
    targets are int class indices (``num_classes`` K required) or, with ``config.multilabel``, (K,) 0/1 vectors.

    Each head minimises the cross-entropy (binary cross-entropy per label) of ``W (x - mu) / sigma + b`` plus
    ``weight_decay / 2 ||W||^2`` (biases not decayed) by SGD (momentum ``config.momentum``, lr cosine-decayed per step
    from ``config.lr`` to 0), ``config.epochs`` epochs of ``config.batch_size`` through :func:`thesislib.engine.fit`
    (the heads of all layers are one module; their losses are summed, so each head gets its own gradient). ``model``
    is in eval mode with ``requires_grad`` off for the run (both restored afterwards; on CUDA with
    ``channels_last`` it is converted for the run and back to the contiguous format after). The caller's global
    random generators are left as they were (the first item is read with them saved; every pass is seeded).

    Returns ``{"layers": {layer: {"dims": D, "test_acc": top-1 of the centre crop, "test_acc_10crop" (with
    test_crops=10)}}, "heads": ProbeHeads, "history": History, "config": config}``; multi-label: per layer
    ``"test_ap"`` (mean per-label AP over the labels with a positive), ``"test_ap_per_class"`` (K, NaN where a label
    has no positive), ``"test_acc"`` (mean per-label accuracy at p >= 0.5), and ``"test_ap_10crop"`` with
    test_crops=10. Accuracies and APs are fractions in [0, 1].
    """
    if not layers:
        raise ValueError("streaming_probe: no layer to probe")
    device = torch.device(device)
    layers = list(layers)
    first = _first_item(train)
    out_dim = _num_outputs(first, config.multilabel, num_classes)
    was_training = model.training
    grads = [p.requires_grad for p in model.parameters()]
    model.to(device).eval().requires_grad_(False)
    channels_last = config.channels_last and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            probe_x = torch.as_tensor(first[0]).unsqueeze(0).to(device)
            dims = {layer: int(f.shape[1]) for layer, f in probe_features(model, layers, probe_x, config.dims).items()}
        heads = ProbeHeads(dims, out_dim).to(device)
        resuming = bool(config.checkpoint_dir) and latest_checkpoint(config.checkpoint_dir) is not None
        if not resuming:  # a resumed run reads the statistics from the checkpointed buffers
            mean, std = _statistics(model, layers, train, device, config)
            heads.set_statistics({k: v.to(device) for k, v in mean.items()}, {k: v.to(device) for k, v in std.items()})
        history = _fit_heads(model, heads, layers, train, device, config)
        results = _score(model, heads, layers, test, device, config)
    finally:
        model.train(was_training)
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    for layer, d in dims.items():
        results[layer]["dims"] = d
    return {"layers": results, "heads": heads, "history": history, "config": config}


def _fit_heads(model: nn.Module, heads: ProbeHeads, layers: list[str], train: Dataset, device: torch.device,
               config: StreamingProbeConfig) -> Any:
    weights = [h[1].weight for h in heads.heads.values()]
    biases = [h[1].bias for h in heads.heads.values()]
    official = config.schedule == "official"
    opt = torch.optim.SGD([{"params": weights, "weight_decay": config.weight_decay},
                           {"params": biases, "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum,
                          nesterov=official)
    world = get_world_size() if is_distributed() else 1
    total = config.epochs * steps_per_epoch(len(train), config.batch_size, False, world)  # type: ignore[arg-type]
    if official:
        starts = [0] + [max(1, int(total * f)) for f in OFFICIAL_DROPS]
        # pieces that start at the same step (a very short run): the last one holds from there on
        pieces = tuple(dict(zip(starts, OFFICIAL_FACTORS)).items())
        sched: torch.optim.lr_scheduler.LRScheduler = make_scheduler(opt, Staircase(pieces))
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total))
    loss_fn = F.binary_cross_entropy_with_logits if config.multilabel else F.cross_entropy

    def step_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        with torch.no_grad():
            feats = probe_features(model, layers, x, config.dims)
        logits = _heads_fp32(net, feats)
        target = (y > 0).float() if config.multilabel else y.long()
        losses = {layer: loss_fn(out.float(), target) for layer, out in logits.items()}
        metrics = {f"loss_{layer}": v.detach() for layer, v in losses.items()}
        if not config.multilabel:
            metrics.update({f"acc_{layer}": (out.argmax(1) == target).float().mean() for layer, out in logits.items()})
        return torch.stack(list(losses.values())).sum(), metrics

    cfg = train_config(config, batch_size=config.batch_size, epochs=config.epochs, amp=config.amp,
                       channels_last=config.channels_last, progress=config.progress, num_workers=config.num_workers,
                       checkpoint_dir=config.checkpoint_dir, checkpoint_every=config.checkpoint_every,
                       log_every=max(1, total // 20))
    return fit(heads, opt, train, step_fn, cfg, device, scheduler=sched)


def _heads_fp32(heads: nn.Module, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``heads(feats)`` with autocast off: the standardisation and the linear layers in float32 (as the cached probe)
    while the trunk's forward keeps the engine's bf16 autocast (``amp``)."""
    device_type = next(iter(feats.values())).device.type
    with torch.autocast(device_type, enabled=False):
        return heads({k: v.float() for k, v in feats.items()})


def _score(model: nn.Module, heads: ProbeHeads, layers: list[str], test: Dataset, device: torch.device,
           config: StreamingProbeConfig) -> dict[str, dict[str, Any]]:
    """Test scores per layer. Single-label: each batch returns only the predicted class per image and mode (int64
    (B,)), so the gathered result is N x layers x modes integers, not the (N, K) logits (50,000 x 1,000 x 5 x 2
    floats on ImageNet); multi-label keeps the (B, K) scores the AP needs (K = 40 on CelebA)."""
    n_crops = config.test_crops

    def fn(net: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        single = center_crop(x, config.crop) if config.crop else x
        keep = (lambda v: v.float()) if config.multilabel else (lambda v: v.argmax(1))  # (B, K) scores | (B,) top-1
        out = {f"single_{k}": keep(v) for k, v in _heads_fp32(net, probe_features(model, layers, single,
                                                                                  config.dims)).items()}
        if n_crops:
            crops = ten_crops(x, config.crop).flatten(0, 1)
            logits = _heads_fp32(net, probe_features(model, layers, crops, config.dims))
            out.update({f"multi_{k}": keep(average_crop_probs(v, n_crops, config.multilabel))
                        for k, v in logits.items()})
        out["target"] = torch.as_tensor(y)
        return out

    res = evaluate(heads, test, fn, device, batch_size=max(1, config.eval_batch_size // max(1, n_crops)),
                   num_workers=config.num_workers, amp=config.amp, channels_last=config.channels_last,
                   seed=config.seed)
    y = res["target"]
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        single = res[f"single_{layer}"]
        if config.multilabel:
            pos = (y > 0)
            ap = average_precision(single.double(), pos, kind=config.ap_kind)
            row: dict[str, Any] = {"test_acc": float(((single >= 0) == pos).double().mean()),
                                   "test_ap": float(ap.nanmean()), "test_ap_per_class": [float(v) for v in ap]}
            if n_crops:
                row["test_ap_10crop"] = float(average_precision(res[f"multi_{layer}"].double(), pos,
                                                                kind=config.ap_kind).nanmean())
        else:
            row = {"test_acc": float((single == y).double().mean())}
            if n_crops:
                row["test_acc_10crop"] = float((res[f"multi_{layer}"] == y).double().mean())
        out[layer] = row
    return out


def chapter_probe_config(params: Any, seed: int, *, multilabel: bool = False, crop: int = 0, test_crops: int = 0,
                         checkpoint_dir: str | None = None) -> StreamingProbeConfig:
    """The :class:`StreamingProbeConfig` of a chapter whose parameters name the probe protocol the same way (Jenni
    ch. 3-4): ``probe_epochs``, ``probe_weight_decay``, ``probe_batch_size`` (the heads' training batch; 0:
    ``eval_batch_size``, as the cached probe), ``eval_batch_size`` (the statistics and test passes), ``probe_dims``,
    ``probe_schedule``, and the run fields ``num_workers``, ``amp``, ``progress``."""
    return StreamingProbeConfig(
        epochs=params.probe_epochs, weight_decay=params.probe_weight_decay,
        batch_size=params.probe_batch_size or params.eval_batch_size,
        eval_batch_size=params.eval_batch_size, seed=seed, dims=params.probe_dims, multilabel=multilabel,
        schedule=params.probe_schedule, crop=crop, test_crops=test_crops,  # type: ignore[arg-type]
        num_workers=params.num_workers, amp=params.amp, progress=params.progress, checkpoint_dir=checkpoint_dir)



# --- The probes' labelled data: the training set of C itself, or Places205 (Jenni Tables 3.5 and 4.6) ---

PROBE_DATA = ("same", "places205")
"""``probe_data`` choices: ``same`` (the data set C trained on) | ``places205`` (all of Places205: the probes of the
ImageNet-trained C of Tables 3.5 and 4.6)."""


def probe_data_param(table: str) -> Any:
    """The ``probe_data`` parameter of a chapter whose streaming probes can read Places205 (``table``: the table of
    its Places probes, named in the help), declared once for Jenni ch. 3 and ch. 4."""
    return param("same", help=f"the probes' labelled data: same (the data set C trained on) | places205 (all of "
                              f"Places205, {table}: probes of the ImageNet-trained C; data imagenet, probe_mode "
                              f"streaming)", choices=PROBE_DATA)


def check_probe_data(owner: str, data: str, probe_data: str, streaming: bool) -> None:
    """Raise :class:`thesislib.config.ConfigError` (naming ``owner``) unless ``probe_data`` fits the run: Places205
    probes need C trained on ImageNet (``data`` imagenet) and the streaming probe (all of Places205 train)."""
    if probe_data not in PROBE_DATA:
        raise ConfigError(f"{owner}: probe_data {probe_data!r} is not among {list(PROBE_DATA)}")
    if probe_data == "places205" and not (data == "imagenet" and streaming):
        raise ConfigError(f"{owner}: probe_data places205 (probes of the ImageNet-trained C on all of Places205) "
                          f"needs data imagenet and probe_mode streaming, not data={data!r}, "
                          f"probe_mode={'streaming' if streaming else 'cached'!r}")


def probe_data_set(data: str, probe_data: str) -> str:
    """The name of the probes' data set (:func:`thesislib.data.imagenet.linear_probe_sets`'s ``name``): ``data``
    itself, or ``probe_data`` when it is not ``same``."""
    return data if probe_data == "same" else probe_data


def probe_data_stem(stem: str, probe_data: str) -> str:
    """The dataset part of a recorded id: ``places`` for the Places205 probes (the replication yamls' ``places/*``
    rows of Tables 3.5 and 4.6), else ``stem`` (the training data's own stem)."""
    return "places" if probe_data == "places205" else stem


def probe_checkpoint_dir(checkpoint_dir: str, probe_set: str, name: str, seed: int) -> str | None:
    """Where a streaming probe's heads are checkpointed: ``<checkpoint_dir>/probe-<probe_set>-<name>-s<seed>`` (one
    directory per probe data set, so the Places205 probes of a run resumed from a finished ImageNet run do not
    resume the ImageNet heads); None without ``checkpoint_dir``."""
    return f"{checkpoint_dir}/probe-{probe_set}-{name}-s{seed}" if checkpoint_dir else None
