"""Evaluation: test NLL per part through :func:`thesislib.engine.evaluate`, bits/dim (Eq. 4.5's
bound and its split, bpd per pyramid resolution), sampling (ancestral, Eq. 4.2: X̂ ~ p(X̂), then
X ~ p(X | X̂); the pyramid from its base up), the recognisability score and the sampling speed.

Sampling uses the library's exact cached sampler (:func:`thesislib.nn.pixelcnn.sample_cached`, after
Ramachandran et al. 2017: every layer's activations are cached and each position computed once; the
same samples as the naive sampler) for both PixelCNN++ variants. f_w runs once per image (per pyramid
level), never per pixel. The speed table also times the naive sampler and the receptive-field crop
sampler (:func:`thesislib.nn.pixelcnn.sample_fast`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data.color import GRAY4_LEVELS, gray4
from thesislib.engine import evaluate
from thesislib.eval.likelihood import TwoPartBpd, bits_per_dim, two_part_bits_per_dim
from thesislib.methods.pixelcnn_aux.losses import image_log_prob
from thesislib.methods.pixelcnn_aux.model import PartModel, to_model_input
from thesislib.methods.pixelcnn_aux.train import batch_inputs
from thesislib.nn.pixelcnn import (
    categorical_step,
    dmol_step,
    sample_cached,
    sample_fast,
    sample_naive,
    time_naive_rows,
    to_index,
)
from thesislib.paths import results_root

__all__ = ["SAMPLERS", "SAMPLING_BENCHMARK_COLUMNS", "PyramidBpd", "SpeedRow", "bits_of", "classify_digits",
           "digit_classifier", "neighbour_difference", "part_nats", "pyramid_bpd", "sample_part", "sample_pyramid",
           "sampling_benchmarks", "sampling_speed", "to_uint8", "two_part_bpd"]


def part_nats(model: PartModel, items: Dataset, device: torch.device, batch_size: int = 256) -> Tensor:
    """-log p per test item in nats, (N,) float64 (sharded over DDP ranks and gathered)."""
    def fn(m: PartModel, batch: dict[str, Tensor]) -> Tensor:
        x, aux = batch_inputs(m, batch)
        return -image_log_prob(m(x, aux), x, m.spec.out_kind, m.n_mix)
    return evaluate(model, items, fn, device, batch_size=batch_size, amp=False).double()


def two_part_bpd(gray_nats: Tensor, color_nats: Tensor, dims: int) -> TwoPartBpd:
    """Eq. 4.5's bound -log p(X̂) - log p(X|X̂) and its split, both in bits per dim X (``dims`` = 3 H W)."""
    return two_part_bits_per_dim(gray_nats.sum(), color_nats.sum(), len(gray_nats) * dims)


@dataclass(frozen=True)
class PyramidBpd:
    """Per resolution (from the base up): ``sides``; ``conditional`` = -log p(X_s | X_{s/2}) (the
    base: -log p(X_base)) in bits per dim of X_s; ``bound`` = the whole pyramid's bound for the image
    at side s, -log p(X_base) - Σ_{levels <= s} log p(X_l | X_{l/2}), in bits per dim of X_s."""

    sides: list[int]
    conditional: list[float]
    bound: list[float]


def pyramid_bpd(nats: Sequence[Tensor], sides: Sequence[int]) -> PyramidBpd:
    """``nats[k]``: (N,) test NLLs of the part at ``sides[k]`` (base first)."""
    if len(nats) != len(sides):
        raise ValueError(f"{len(nats)} parts against {len(sides)} resolutions")
    conditional, bound, total = [], [], 0.0
    for n, side in zip(nats, sides, strict=True):
        dims = len(n) * 3 * side * side
        total += float(n.sum())
        conditional.append(bits_per_dim(n.sum(), dims))
        bound.append(bits_per_dim(total, dims))
    return PyramidBpd(list(sides), conditional, bound)


def to_uint8(x: Tensor, levels: int = 256) -> Tensor:
    """Sampler output in [-1, 1] -> uint8 levels 0..levels-1."""
    return to_index(x, levels).to(torch.uint8)


@torch.no_grad()
def sample_part(model: PartModel, n: int, generator: torch.Generator, aux: Tensor | None = None,
                variance_reduction: float = 0.0, map: bool = False) -> Tensor:  # noqa: A002
    """``n`` samples of one part as uint8 (n, C, S, S) (C = 3 RGB, or 1 with the 4-bit levels).

    ``aux``: uint8 conditioning images (n, ...) for a conditional part (X̂, or the coarse image);
    ``variance_reduction`` / ``map``: the tricks of thesis §4.4.2 (DMOL parts; MAP also for X̂)."""
    model.eval()
    spec = model.spec
    device = next(model.parameters()).device
    h = None
    if spec.cond is not None:
        if aux is None or len(aux) != n:
            raise ValueError(f"part {spec.name} needs {n} conditioning images")
        h = model.condition(to_model_input(aux.to(device), 1 if spec.cond == "gray" else 3))  # f_w: once
    if spec.out_kind == "dmol":
        step = dmol_step(3, model.n_mix, variance_reduction=variance_reduction, map=map)
    else:
        step = categorical_step(map=map)
    out = sample_cached(model.pixelcnn, (n, spec.in_channels, spec.side, spec.side), step, generator, h=h)
    return to_uint8(out, 256 if spec.in_channels == 3 else GRAY4_LEVELS).cpu()


def sample_pyramid(models: Sequence[PartModel], n: int, generator: torch.Generator,
                   variance_reduction: float = 0.0, map: bool = False) -> list[Tensor]:  # noqa: A002
    """Ancestral pyramid sampling: X_base ~ p, then each level given the one below; returns the
    uint8 samples of every resolution, base first (the Fig. 4.6 progression)."""
    levels = [sample_part(models[0], n, generator, variance_reduction=variance_reduction, map=map)]
    for model in models[1:]:
        levels.append(sample_part(model, n, generator, aux=levels[-1], variance_reduction=variance_reduction,
                                  map=map))
    return levels


def neighbour_difference(images: Tensor) -> Tensor:
    """Mean absolute difference of horizontally adjacent sub-pixels per image (0..255 scale):
    uint8 (N, C, H, W) -> (N,) float64. A pixel-noise measure (MAP samples should have less)."""
    x = images.double()
    return (x[..., 1:] - x[..., :-1]).abs().flatten(1).mean(1)


def digit_classifier(gray_levels: Tensor, labels: Tensor, seed: int = 0) -> LogisticRegression:
    """Logistic regression on flattened 4-bit images (N, 1, S, S) -> digit class (the note's
    recognisability classifier, trained on the real digits' X̂)."""
    clf = LogisticRegression(max_iter=500, C=1.0, random_state=seed)
    clf.fit(gray_levels.flatten(1).double().numpy() / (GRAY4_LEVELS - 1), labels.numpy())
    return clf


def classify_digits(clf: LogisticRegression, images: Tensor) -> np.ndarray:
    """Top class probability (N,) of 4-bit images (N, 1, S, S), or of RGB uint8 images (N, 3, S, S)
    through their X̂ = gray4."""
    levels = gray4(images) if images.shape[1] == 3 else images
    return clf.predict_proba(levels.flatten(1).double().numpy() / (GRAY4_LEVELS - 1)).max(axis=1)


SAMPLERS = {"naive": sample_naive, "crop": sample_fast, "cached": sample_cached}


@dataclass(frozen=True)
class SpeedRow:
    """One row of the sampling-speed table: seconds per generated pixel (per image of the batch),
    sampling steps (PixelCNN calls: one per generated pixel position and level) and f_w calls per
    sampled batch, the work in forward-pass equivalents per image (layer positions computed, over one
    forward pass of the model at its size: naive H W, crop the crops' mean area over H W, cached 1 per
    level) and the model's parameter count."""

    model: str
    sampler: str
    batch: int
    side: int
    seconds: float
    seconds_per_pixel: float
    pixelcnn_calls: int
    embed_calls: int
    forward_equivalents: float
    parameters: int


def _params(models: Sequence[PartModel]) -> int:
    return sum(p.numel() for m in models for p in m.parameters())


def _crop_work(model: PartModel) -> float:
    """Mean receptive-field crop area of :func:`sample_fast` over all pixels, in forward passes / image."""
    up, left, right = model.pixelcnn.receptive_field()
    side = model.spec.side
    idx = np.arange(side)
    rows = np.minimum(idx, up) + 1
    cols = np.minimum(idx, left) + np.minimum(side - 1 - idx, right) + 1
    return float(rows.sum() * cols.sum()) / side ** 2


def sampling_speed(name: str, models: Sequence[PartModel], batch: int, sampler: str = "cached",
                   seed: int = 0, naive_rows: int = 0) -> SpeedRow:
    """Time one ancestral sample of ``batch`` images from ``models`` (one single-scale model, or a
    pyramid base first) with one of :data:`SAMPLERS`: ``naive`` (one full forward per pixel), ``crop``
    (the receptive-field crop per pixel, ``updown=False``) or ``cached`` (every layer position computed
    once); naive and crop time a single-scale model. Network evaluations: one PixelCNN call per
    generated pixel position and level, one f_w call per conditional level. ``naive_rows`` > 0 times the
    naive sampler on that many rows and extrapolates (:func:`~thesislib.nn.pixelcnn.time_naive_rows`)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    if sampler != "cached" and len(models) != 1:
        raise ValueError(f"the {sampler} timing is for a single-scale model")
    generator = torch.Generator(device=next(models[0].parameters()).device).manual_seed(seed)
    for m in models:
        m.eval()
    started = time.perf_counter()
    seconds = None
    if sampler == "cached":
        sample_pyramid(models, batch, generator)
        work = float(len(models))
    elif sampler == "naive" and naive_rows > 0:
        spec = models[0].spec
        seconds, _ = time_naive_rows(models[0].pixelcnn, (batch, spec.in_channels, spec.side, spec.side),
                                     dmol_step(3, models[0].n_mix), min(naive_rows, spec.side), generator)
        work = float(spec.side ** 2)
    else:
        model = models[0]
        spec = model.spec
        SAMPLERS[sampler](model.pixelcnn, (batch, spec.in_channels, spec.side, spec.side),
                          dmol_step(3, model.n_mix), generator)
        work = float(spec.side ** 2) if sampler == "naive" else _crop_work(model)
    seconds = time.perf_counter() - started if seconds is None else seconds
    top = models[-1].spec.side
    calls = sum(m.spec.side ** 2 for m in models)
    embeds = sum(1 for m in models if m.spec.cond is not None)
    label = sampler if sampler == "naive" else f"{sampler} (exact)"
    return SpeedRow(name, label, batch, top, seconds, seconds / (batch * top * top), calls, embeds, work,
                    _params(models))


SAMPLING_BENCHMARK_COLUMNS = ("variant", "batch", "naive samples/s", "crop samples/s", "cached samples/s",
                              "crop / naive", "cached / naive", "identical to naive")


def sampling_benchmarks(root: Path | None = None) -> list[dict[str, Any]]:
    """The records of ``benchmarks/pixelcnn_sampling.py`` under ``<results>/pixelcnn/sampling_*.json``,
    each ``{"file", "hardware", "config", "rows"}`` with rows as :data:`SAMPLING_BENCHMARK_COLUMNS`."""
    directory = (root or results_root()) / "pixelcnn"
    records = []
    for file in sorted(directory.glob("sampling_*.json")) if directory.is_dir() else []:
        data = json.loads(file.read_text())
        rows = []
        for r in data.get("rows", []):
            def num(key: str, fmt: str, r: dict[str, Any] = r) -> str:
                return "n/a" if r.get(key) is None else format(r[key], fmt)
            same = [r[k] for k in ("crop_identical", "cached_identical") if r.get(k) is not None]
            rows.append((f"updown={r.get('updown')}", r.get("batch"), num("naive_samples_per_s", ".4f"),
                         num("crop_samples_per_s", ".4f"), num("cached_samples_per_s", ".4f"),
                         num("crop_ratio", ".1f"), num("cached_ratio", ".1f"), "yes" if same and all(same) else "no"))
        prov = data.get("provenance", {})
        records.append({"file": file.name, "hardware": prov.get("hardware", "unknown"),
                        "config": prov.get("config", {}), "rows": rows})
    return records


def bits_of(nats: Tensor, dims: int) -> float:
    """bits/dim of summed test NLLs over ``len(nats)`` images of ``dims`` dimensions each."""
    return bits_per_dim(nats.sum(), len(nats) * dims)
