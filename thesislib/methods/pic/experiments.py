"""The notebook's experiments: replicates of PIC and its g^w-only baseline, and the verdicts.

One *replicate* (a seed) draws its own ambiguity images (train and test), trains PIC and the g^w-only
baseline on them (:func:`thesislib.methods.pic.train.run`), and measures, on the same test images:

* ``bpd_pic``, ``bpd_gw``: test NLL of the chroma in bits/dim (thesis §5.4.1, Eq. 5.3');
* for ``n_repeats`` colourings of each of the first ``n_sample_images`` gray inputs, drawn with
  the exact fast sampler from PIC and independently per pixel from g^w-only, plus g^w-only's MAP
  and mixture mean: the :class:`~thesislib.methods.pic.evaluate.AmbiguityScores` (disk purity,
  share of disks coloured blue or yellow, blue rate, diversity over repeated samples,
  square/background consistency, disk chroma);
* ``sat_pic``, ``sat_gw_map`` (and ``sat_gw_mean``, ``sat_true``): average perceptual saturation (%)
  of the output images (the §5.4.3 ablation, 36.4 % vs 32.7 % on ILSVRC).

:data:`CLAIMS` turns the note's expectations (§4.6(a)) into paired verdicts over replicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from thesislib.engine import History
from thesislib.methods.pic.config import PICParams, config_for, experiment_id
from thesislib.methods.pic.data import PICData, load_data
from thesislib.methods.pic.evaluate import ambiguity_scores, chroma_bpd, image_saturation, sample_gw, sample_pic
from thesislib.methods.pic.model import PIC, GwOnly
from thesislib.methods.pic.train import run
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict


@dataclass(eq=False)
class ReplicateResult:
    """One replicate: metrics, the trained models (kept for figures when asked) and the samples."""

    seed: int
    metrics: dict[str, float]
    seconds: float
    histories: dict[str, History]
    pic: PIC | None = field(default=None, repr=False)
    gw: GwOnly | None = field(default=None, repr=False)
    data: PICData | None = field(default=None, repr=False)
    samples: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


def colourings(params: PICParams, pic: PIC, gw: GwOnly, data: PICData, device: torch.device,
               seed: int) -> dict[str, torch.Tensor]:
    """``n_repeats`` colourings of the first ``n_sample_images`` test inputs: ``{"pic", "gw_sample",
    "gw_map"}`` ab (R, N, 2, h, w) and ``"gw_mean"`` (1, N, 2, h, w), with the inputs ``"L"``
    (N, 1, H, W) and the true ``"ab"`` (1, N, 2, h, w). One generator seeded by ``seed``."""
    big_l, canvas = data.test_batch(params.n_sample_images)
    r, n = params.n_repeats, big_l.shape[0]
    lr, cr = big_l.repeat(r, 1, 1, 1), canvas[:, :1].repeat(r, 1, 1, 1)
    gen = torch.Generator(device=device).manual_seed(seed)
    shape = (r, n, 2, *canvas.shape[-2:])
    out = {"L": big_l, "ab": canvas[None, :, 1:],
           "pic": sample_pic(pic, lr, cr, params.n_mix, gen).view(shape).cpu(),
           "gw_sample": sample_gw(gw, lr, params.n_mix, "sample", gen).view(shape).cpu(),
           "gw_map": sample_gw(gw, lr, params.n_mix, "map", gen).view(shape).cpu(),
           "gw_mean": sample_gw(gw, big_l, params.n_mix, "mean")[None].cpu()}
    return out


def measure(params: PICParams, pic: PIC, gw: GwOnly, data: PICData, device: torch.device,
            seed: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """The metrics of one replicate (module docstring) and its colourings."""
    metrics = {"bpd_pic": chroma_bpd(pic, data.test, device, params.n_mix, params.eval_batch_size),
               "bpd_gw": chroma_bpd(gw, data.test, device, params.n_mix, params.eval_batch_size)}
    samples = colourings(params, pic, gw, data, device, seed)
    big_l = samples["L"]
    for name in ("pic", "gw_map", "gw_mean", "ab"):
        ab = samples[name]
        sat = image_saturation(big_l.repeat(ab.shape[0], 1, 1, 1), ab.flatten(0, 1))
        metrics[f"sat_{'true' if name == 'ab' else name}"] = 100.0 * float(sat.mean())
    if data.labels is not None:
        for name in ("pic", "gw_sample", "gw_map", "gw_mean"):
            scores = ambiguity_scores(samples[name], data.labels)
            for key, value in vars(scores).items():
                metrics[f"{key}_{name}"] = value
    return metrics, samples


def run_replicate(params: PICParams, seed: int, device: torch.device, keep: bool = False) -> ReplicateResult:
    """Data, training (PIC and g^w-only) and measurements of replicate ``seed``."""
    config = config_for(params, seed)
    started = time.perf_counter()
    data = load_data(config)
    pic, gw, histories = run(config, device, data=data)
    pic, gw = pic.to(device), gw.to(device)
    metrics, samples = measure(config, pic, gw, data, device, seed)
    result = ReplicateResult(seed, metrics, time.perf_counter() - started, histories)
    if keep:
        result.pic, result.gw, result.data, result.samples = pic, gw, data, samples
    return result


def run_replicates(params: PICParams, device: torch.device, keep_first: bool = True,
                   report: Callable[[str], None] | None = print) -> list[ReplicateResult]:
    """Every replicate of ``params.seeds``; the first keeps its models, data and samples."""
    results = []
    for i, seed in enumerate(params.seeds):
        result = run_replicate(params, seed, device, keep=keep_first and i == 0)
        results.append(result)
        if report is not None:
            m = result.metrics
            extra = (f", disks coloured {m['coloured_pic']:.2f}, purity {m['purity_pic']:.2f} vs "
                     f"{m['purity_gw_sample']:.2f}, blue {m['blue_rate_pic']:.2f}" if "purity_pic" in m else "")
            report(f"seed {seed}: bpd PIC {m['bpd_pic']:.3f} vs g^w-only {m['bpd_gw']:.3f}{extra} "
                   f"({result.seconds:.1f} s)")
    return results


def aggregate(params: PICParams, results: Sequence[ReplicateResult]) -> dict[str, dict[str, Any]]:
    """``{experiment id: {metric: {"mean", "std", "n"}}}`` for ``metrics.json``: PIC's and g^w-only's
    bits/dim and saturation under their ids, every other measurement under PIC's id."""
    pic_rows, gw_rows = [], []
    for r in results:
        m = r.metrics
        pic_rows.append({"bpd": m["bpd_pic"], "saturation": m["sat_pic"],
                         **{k: v for k, v in m.items() if k not in ("bpd_pic", "bpd_gw", "sat_pic", "sat_gw_map")}})
        gw_rows.append({"bpd": m["bpd_gw"], "saturation": m["sat_gw_map"]})
    return summarize_seeds({experiment_id(params, "pic"): pic_rows, experiment_id(params, "gw-only"): gw_rows})


def values(results: Sequence[ReplicateResult], key: str) -> list[float]:
    return [r.metrics[key] for r in results]


PURITY_BAR = 0.9
COLOURED_BAR = 0.9
CONSISTENCY_BAR = 0.9
DIVERSITY_BAR = 0.5

#: (id, claim, a, b (a metric key or a number), expected, needs the ambiguity labels)
CLAIMS: tuple[tuple[str, str, str, str | float, str, bool], ...] = (
    ("nll", "PIC's test NLL (bits/dim) is below g^w-only's", "bpd_gw", "bpd_pic", "higher", False),
    ("disk-coloured", f"PIC paints the disks blue or yellow (share of disks mostly one of the two > {COLOURED_BAR})",
     "coloured_pic", COLOURED_BAR, "higher", True),
    ("disk-one-colour", f"PIC colours each disk with one colour (purity > {PURITY_BAR})", "purity_pic",
     PURITY_BAR, "higher", True),
    ("disk-purity>gw", "PIC's disks are purer than g^w-only's independent samples (g^w speckles)",
     "purity_pic", "purity_gw_sample", "higher", True),
    ("half-blue", "about half of PIC's disks come out blue (blue rate vs 0.5)", "blue_rate_pic", 0.5,
     "no clear difference", True),
    ("diverse", f"the same gray disk gets both colours over repeated PIC samples (diversity > {DIVERSITY_BAR})",
     "diversity_pic", DIVERSITY_BAR, "higher", True),
    ("consistent", f"squares stay red and the background green in PIC samples (share > {CONSISTENCY_BAR})",
     "consistency_pic", CONSISTENCY_BAR, "higher", True),
    ("gw-mean-grey", "g^w-only's mixture mean makes the disks greyer than PIC's samples (disk chroma)",
     "disk_chroma_pic", "disk_chroma_gw_mean", "higher", True),
    ("saturation", "PIC samples are more saturated than g^w-only MAP (36.4% vs 32.7% in the thesis)",
     "sat_pic", "sat_gw_map", "higher", False),
)


def claim_verdicts(results: Sequence[ReplicateResult]) -> list[Verdict]:
    """The claims of :data:`CLAIMS` that the results can test, as paired verdicts over replicates."""
    out = []
    for cid, text, a, b, expected, ambiguity in CLAIMS:
        if ambiguity and not all(a in r.metrics for r in results):
            continue
        vb = b if isinstance(b, float) else values(results, b)
        out.append(paired_verdict(cid, text, values(results, a), vb, expected=expected))
    return out


def verdict_sentence(v: Verdict, fmt: str = "+.3f") -> str:
    """One sentence saying what the verdict supports, generated from its label and interval."""
    if v.label == "too few replicates":
        return f"*{v.claim}*: too few replicates to decide (n = {v.n})."
    if v.expected == "no clear difference":
        what = ("consistent with the claim (the interval contains the reference)" if v.holds else
                f"not supported (the interval lies {'above' if v.label == 'higher' else 'below'} the reference)")
    else:
        what = {"higher": "supported", "lower": "contradicted (the difference has the opposite sign)",
                "no clear difference": "not decided (the interval contains 0)"}[v.label]
    return f"*{v.claim}*: {what}; difference {v.interval_text(fmt)} over {v.n} replicates (95% interval)."
