"""Claims over replicates of several variants of a method, each scored by the same metrics.

For chapters whose replicate results are ``metrics[variant][metric]`` (the clustering chapters: ACC,
NMI, ARI per variant and baseline): per-variant values over replicates, the ``metrics.json`` summary
in percent, paired verdicts for ``(id, claim, variant a, variant b, expected)`` claims, and one
sentence per verdict generated from its label and interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thesislib.config import ConfigError, replace
from thesislib.replication import summarize_seeds
from thesislib.replication.verdicts import Verdict, paired_verdict

Metrics = Mapping[str, Mapping[str, float]]
#: variant name -> (label, overrides of the chapter's parameters)
Variants = Mapping[str, tuple[str, Mapping[str, Any]]]
Claim = tuple[str, str, str, str, str]


def variant_values(runs: Sequence[Metrics], variant: str, metric: str = "acc") -> list[float]:
    """``metric`` of ``variant`` in every replicate."""
    return [m[variant][metric] for m in runs]


def percent_summary(runs: Sequence[Metrics], ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{ids[variant]: {metric: {"mean", "std", "n"}}}`` with every value x100 (the thesis's percent)."""
    return summarize_seeds({ids[n]: [{k: 100.0 * v for k, v in m[n].items()} for m in runs] for n in ids})


def variant_verdicts(runs: Sequence[Metrics], claims: Sequence[Claim], metric: str = "acc") -> list[Verdict]:
    """Paired verdicts of ``a``'s minus ``b``'s ``metric`` for the claims whose two variants were run."""
    have = set(runs[0]) if runs else set()
    return [paired_verdict(cid, text, variant_values(runs, a, metric), variant_values(runs, b, metric),
                           expected=expected)  # type: ignore[arg-type]
            for cid, text, a, b, expected in claims if a in have and b in have]


def verdict_sentence(v: Verdict, what: str = "difference", fmt: str = "+.3f") -> str:
    """One sentence saying what the verdict supports, generated from its label and interval."""
    if v.label == "too few replicates":
        return f"*{v.claim}*: too few replicates to decide (n = {v.n})."
    said = {"higher": "reproduced", "lower": "contradicted (the difference has the opposite sign)",
            "no clear difference": "not decided (the interval contains 0)"}[v.label]
    if v.expected != "higher":
        said = ("consistent with the claim" if v.holds else "not supported") + f" (verdict: {v.label})"
    return f"*{v.claim}*: {said}; {what} {v.interval_text(fmt)} over {v.n} replicates (95% interval)."


def replicate_params(params: Any, seed: int | None = None) -> Any:
    """The frozen run parameters of one replicate: ``seed`` (default ``params.seed``) and ``n_seeds`` 1."""
    return replace(params, seed=params.seed if seed is None else seed, n_seeds=1)


def apply_variant(params: Any, variants: Variants, name: str) -> Any:
    """``params`` with the overrides of variant ``name`` of ``variants``; an unknown name is a
    :class:`~thesislib.config.ConfigError` listing the valid ones."""
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; valid names are: {', '.join(variants)}")
    return replace(params, **variants[name][1])
