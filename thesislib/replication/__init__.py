"""Paper numbers beside this repository's numbers.

Two sources, never mixed:

* ``thesislib/replication/<chapter>.yaml`` holds the numbers printed in the source
  document (table, experiment, metric), typed in once and tested for consistency;
* ``results/<chapter>/*.json`` holds the metrics of real runs of this repository, each
  with its provenance (commit, hardware, scale). They are written by
  ``thesislib record <run-dir>`` from a ``thesislib run`` output, never by hand.

:func:`replication_rows` joins them: a paper experiment with no recorded run reads
"not run". The book's dashboard and each chapter's replication table use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from thesislib.paths import results_root
from thesislib.repro import write_json

NOT_RUN = "not run"


@dataclass(frozen=True)
class PaperNumber:
    chapter: str
    experiment: str
    label: str
    source: str
    metric: str
    value: float
    lower_is_better: bool
    headline: bool = False


@dataclass(frozen=True)
class RecordedResult:
    chapter: str
    experiment: str
    metric: str
    value: float
    scale: str
    hardware: str
    commit: str
    file: str
    std: float | None = None
    n_seeds: int | None = None


@dataclass(frozen=True)
class ReplicationRow:
    paper: PaperNumber
    ours: RecordedResult | None

    @property
    def ours_text(self) -> str:
        if self.ours is None:
            return NOT_RUN
        spread = f" ± {self.ours.std:.2f}" if self.ours.std is not None else ""
        seeds = f" ({self.ours.n_seeds} seeds)" if self.ours.n_seeds else ""
        return f"{self.ours.value:.2f}{spread}{seeds}"


def paper_numbers(chapter: str) -> list[PaperNumber]:
    """The printed numbers of one chapter (empty when the chapter has none typed in yet)."""
    path = resources.files("thesislib.replication").joinpath(f"{chapter}.yaml")
    if not path.is_file():
        return []
    spec = yaml.safe_load(path.read_text())
    metrics_meta = spec.get("metrics", {})
    numbers = []
    for exp in spec["experiments"]:
        for metric, value in exp["metrics"].items():
            meta = metrics_meta.get(metric, {})
            numbers.append(PaperNumber(chapter, exp["id"], exp["label"], exp["source"], metric,
                                       float(value), bool(meta.get("lower_is_better", False)),
                                       bool(meta.get("headline", False))))
    return numbers


def metric_label(chapter: str, metric: str) -> str:
    path = resources.files("thesislib.replication").joinpath(f"{chapter}.yaml")
    if path.is_file():
        meta = yaml.safe_load(path.read_text()).get("metrics", {}).get(metric, {})
        return meta.get("label", metric)
    return metric


def recorded_results(chapter: str, root: Path | None = None) -> list[RecordedResult]:
    """Every metric of every recorded run of ``chapter`` under ``results/<chapter>/``."""
    directory = (root or results_root()) / chapter
    found: list[RecordedResult] = []
    for file in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = json.loads(file.read_text())
        prov = record.get("provenance", {})
        commit = (prov.get("commit") or "unknown")[:10] + ("+dirty" if prov.get("dirty") else "")
        for experiment, metrics in record.get("experiments", {}).items():
            for metric, value in metrics.items():
                if isinstance(value, dict):
                    mean, std, n = value.get("mean"), value.get("std"), value.get("n")
                elif isinstance(value, (int, float)):
                    mean, std, n = value, None, None
                else:
                    continue
                found.append(RecordedResult(chapter, experiment, metric, float(mean),
                                            record.get("scale", "unknown"),
                                            prov.get("hardware") or "unknown", commit, str(file),
                                            None if std is None else float(std), n))
    return found


def replication_rows(chapter: str, root: Path | None = None) -> list[ReplicationRow]:
    """Each paper number with the latest recorded run of the same experiment and metric."""
    latest: dict[tuple[str, str], RecordedResult] = {}
    for result in recorded_results(chapter, root):  # files sort by their time stamp
        latest[(result.experiment, result.metric)] = result
    return [ReplicationRow(p, latest.get((p.experiment, p.metric))) for p in paper_numbers(chapter)]


def unmatched_results(chapter: str, root: Path | None = None) -> list[RecordedResult]:
    """Recorded results with no paper counterpart (e.g. recorded smoke runs on procedural data)."""
    keys = {(p.experiment, p.metric) for p in paper_numbers(chapter)}
    return [r for r in recorded_results(chapter, root) if (r.experiment, r.metric) not in keys]


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value) of a run's seeds."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else math.nan)


def format_mean_sd(values: Sequence[float], fmt: str = ".2f") -> str:
    """``"mean ± sd"`` of :func:`mean_sd` in format ``fmt`` (the mean alone for a single value)."""
    mean, sd = mean_sd(values)
    return format(mean, fmt) if math.isnan(sd) else f"{mean:{fmt}} ± {sd:{fmt}}"


def summarize_seeds(runs: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, dict[str, Any]]:
    """The ``experiments`` part of a ``metrics.json`` from per-seed metrics.

    ``runs`` maps an experiment id to one ``{metric: value}`` per seed (or replicate). A metric
    measured once is stored as a plain value, several times as ``{"mean", "std", "n"}`` (sample
    standard deviation), which is what :func:`recorded_results` and the dashboard read.
    """
    out: dict[str, dict[str, Any]] = {}
    for experiment, seeds in runs.items():
        entry: dict[str, Any] = {}
        for metric in seeds[0]:
            values = [s[metric] for s in seeds if metric in s]
            if len(values) == 1:
                entry[metric] = values[0]
            else:
                mean, sd = mean_sd(values)
                entry[metric] = {"mean": mean, "std": sd, "n": len(values)}
        out[experiment] = entry
    return out


def record_run(run_dir: str | Path, root: Path | None = None) -> Path:
    """Copy a finished run's metrics and provenance into ``results/<chapter>/<stamp>.json``."""
    run_dir = Path(run_dir)
    metrics_file, prov_file = run_dir / "metrics.json", run_dir / "provenance.json"
    for file in (metrics_file, prov_file):
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: is {run_dir} the output of a finished run?")
    metrics: dict[str, Any] = json.loads(metrics_file.read_text())
    chapter = metrics.get("chapter")
    if not chapter or "experiments" not in metrics:
        raise ValueError(f"{metrics_file} lacks 'chapter' or 'experiments'")
    record = {**metrics, "provenance": json.loads(prov_file.read_text()), "run": run_dir.name}
    out = (root or results_root()) / chapter / f"{run_dir.name}.json"
    return write_json(out, record)
