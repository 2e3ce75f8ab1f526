"""Pages of the book generated from the repository state: the replication dashboard and the
environment section of the status page. ``make book`` writes them to ``book/_generated/``.

The module is also the book's Sphinx extension (``extra_extensions`` in ``book/_config.yml``):
:func:`setup` sets ``THESISLIB_PROGRESS=none`` in the build process, so the kernels that execute
the notebooks for the book inherit it and the engine's progress lines never reach a page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import yaml

from thesislib.chapters import CHAPTERS, PARTS
from thesislib.engine.progress import ENV_PROGRESS
from thesislib.notebook import markdown_table
from thesislib.paths import describe_roots
from thesislib.replication import metric_label, paper_numbers, replication_rows, unmatched_results
from thesislib.repro import git_commit, package_versions


def _short(label: str) -> str:
    """'mIoU (%), with test-time CRF' -> 'mIoU': the metric name without unit and qualifiers."""
    return label.split(" (")[0].split(",")[0]


def _chapter_tables(chapter_id: str) -> list[str]:
    rows = replication_rows(chapter_id)
    by_experiment: dict[str, list] = {}
    for row in rows:
        by_experiment.setdefault(row.paper.experiment, []).append(row)
    headline = []
    for _experiment, exp_rows in by_experiment.items():
        shown = [r for r in exp_rows if r.paper.headline] or exp_rows[:1]
        label = lambda r: _short(metric_label(chapter_id, r.paper.metric))  # noqa: E731
        paper = " · ".join(f"{label(r)} {r.paper.value:g}" for r in shown)
        ours_rows = [r for r in shown if r.ours is not None]
        ours = " · ".join(f"{label(r)} {r.ours_text}" for r in ours_rows) if ours_rows else "not run"
        recorded = ours_rows[0].ours if ours_rows else None
        headline.append([exp_rows[0].paper.label, exp_rows[0].paper.source, paper, ours,
                         recorded.scale if recorded else "–", recorded.hardware if recorded else "–",
                         recorded.commit if recorded else "–"])
    out = [markdown_table(headline, ["experiment", "source", "paper", "this repository", "scale", "hardware",
                                     "commit"]), ""]
    full = []
    for _experiment, exp_rows in by_experiment.items():
        for k, row in enumerate(exp_rows):
            full.append([row.paper.label if k == 0 else "", metric_label(chapter_id, row.paper.metric),
                         f"{row.paper.value:g}", row.ours_text])
    out += [f":::{{dropdown}} Every printed number of this chapter ({len(full)})", "",
            markdown_table(full, ["experiment", "metric", "paper", "this repository"]), ":::", ""]
    extra = unmatched_results(chapter_id)
    if extra:
        rows_extra = [[r.experiment, r.metric, f"{r.value:.2f}", r.scale, r.hardware, r.commit] for r in extra]
        out += [f":::{{dropdown}} Recorded runs without a printed counterpart ({len(rows_extra)})", "",
                markdown_table(rows_extra, ["experiment", "metric", "value", "scale", "hardware", "commit"]),
                ":::", ""]
    return out


def dashboard_markdown() -> str:
    """Per chapter: one row per printed experiment (its headline metrics), every number in a dropdown."""
    out = [
        "# Replication dashboard",
        "",
        "Each row is an experiment of a source document: the numbers it prints (its headline metrics; "
        "the dropdown under each table has every printed number) beside this repository's numbers for "
        "the same experiment and metric. This repository's column is read from `results/`, which only "
        "`thesislib record` writes, from the output of a real `thesislib run`, with the scale, hardware "
        "and commit of that run; an experiment without such a run reads *not run*. Smoke-scale runs on "
        "procedural or bundled data are different experiments with their own ids: their numbers are on "
        "the chapter pages, and a recorded one is listed under its chapter as a run without a printed "
        "counterpart.",
        "",
    ]
    for part in PARTS:
        chapters = [c for c in CHAPTERS if c.part == part.id and paper_numbers(c.id)]
        if not chapters:
            continue
        out += [f"## {part.author}: {part.title}", ""]
        for chapter in chapters:
            out += [f"### {chapter.title}", "", *_chapter_tables(chapter.id)]
    planned = [c for c in CHAPTERS if not paper_numbers(c.id)]
    if planned:
        out += ["## Chapters without numbers yet", "",
                ", ".join(c.title for c in planned) + ": planned; their printed numbers are typed in "
                "when the chapter is built.", ""]
    return "\n".join(out)


def environment_markdown() -> str:
    """Versions, commit and hardware of the machine that built the book."""
    versions = package_versions()
    commit = git_commit()
    rows = [[name, version or "not installed"] for name, version in versions.items()]
    hardware = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
    lines = [
        f"- commit: `{commit['commit'] or 'unknown'}`" + (" (with uncommitted changes)" if commit["dirty"] else ""),
        f"- accelerator: {hardware}; CPU threads available to torch: {torch.get_num_threads()}",
        *(f"- `{k}`: `{v}`" for k, v in describe_roots().items()),
        "",
        markdown_table(rows, ["package", "version"]),
    ]
    return "\n".join(lines) + "\n"


def write_generated(book_dir: Path) -> list[Path]:
    target = book_dir / "_generated"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("dashboard.md", dashboard_markdown()), ("environment.md", environment_markdown())):
        path = target / name
        path.write_text(text)
        written.append(path)
    return written


def write_book_config(source: Path, output: Path, execute: bool = True) -> Path:
    """Copy the book configuration, optionally switching notebook execution off."""
    config = yaml.safe_load(source.read_text())
    if not execute:
        config.setdefault("execute", {})["execute_notebooks"] = "off"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(yaml.safe_dump(config, sort_keys=False))
    return output


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: silence progress reporting in every notebook kernel the build starts.

    The kernels (myst-nb / jupyter-cache, via nbclient) inherit this process's environment, and
    ``THESISLIB_PROGRESS=none`` overrides every progress mode (bar or log lines) in
    :func:`thesislib.engine.progress.resolve_progress`. It is forced, not defaulted: the Makefile
    exports ``THESISLIB_PROGRESS=log`` for test runs, and those lines would land in the pages.
    """
    os.environ[ENV_PROGRESS] = "none"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
