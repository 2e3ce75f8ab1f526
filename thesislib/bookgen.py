"""Pages of the book generated from the repository state: the replication dashboard and the
environment section of the status page. ``make book`` writes them to ``book/_generated/``."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from thesislib.chapters import CHAPTERS, PARTS
from thesislib.notebook import markdown_table
from thesislib.paths import describe_roots
from thesislib.replication import metric_label, paper_numbers, replication_rows, unmatched_results
from thesislib.repro import git_commit, package_versions


def dashboard_markdown() -> str:
    """One table per chapter with printed numbers: paper, this repository, scale, hardware, commit."""
    out = [
        "# Replication dashboard",
        "",
        "Every row is a number printed in a source document beside this repository's number for the "
        "same experiment and metric. This repository's column is read from `results/`, which only "
        "`thesislib record` writes, from the output of a real `thesislib run`; an experiment without "
        "such a run reads *not run*. Smoke-scale runs on procedural or bundled data are different "
        "experiments with their own ids: their numbers are on the chapter pages, and a recorded one "
        "is listed under its chapter's table as a run without a printed counterpart.",
        "",
    ]
    for part in PARTS:
        chapters = [c for c in CHAPTERS if c.part == part.id and paper_numbers(c.id)]
        if not chapters:
            continue
        out += [f"## {part.author}: {part.title}", ""]
        for chapter in chapters:
            rows = []
            for row in replication_rows(chapter.id):
                ours = row.ours
                rows.append([row.paper.label, metric_label(chapter.id, row.paper.metric), row.paper.source,
                             f"{row.paper.value:.2f}", row.ours_text,
                             ours.scale if ours else "–", ours.hardware if ours else "–",
                             ours.commit if ours else "–"])
            out += [f"### {chapter.title}", "",
                    markdown_table(rows, ["experiment", "metric", "source", "paper", "this repository",
                                          "scale", "hardware", "commit"]), ""]
            extra = unmatched_results(chapter.id)
            if extra:
                rows = [[r.experiment, r.metric, f"{r.value:.2f}", r.scale, r.hardware, r.commit] for r in extra]
                out += ["Recorded runs without a printed counterpart:", "",
                        markdown_table(rows, ["experiment", "metric", "value", "scale", "hardware", "commit"]), ""]
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
