"""Helpers the chapter notebooks share: parameters, setup, run outputs and tables.

Parameters. Every chapter notebook has a papermill ``parameters`` cell whose names are
exactly the fields of a frozen dataclass in the library; the next cell calls
:func:`parameters`, which builds that dataclass from the notebook's globals. When the
notebook runs under papermill (through ``thesislib run`` or plain ``papermill -p ...``),
papermill inserts an ``injected-parameters`` cell beginning with ``# Parameters``;
:func:`parameters` reads that cell back from the kernel's input history and rejects any
name the dataclass does not define, listing the valid ones. An unknown ``-p nosuch=1``
therefore fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from thesislib.config import ConfigError, check_known, from_mapping, to_dict
from thesislib.device import resolve_device, set_threads
from thesislib.replication import metric_label, paper_numbers, replication_rows
from thesislib.replication.seeds import load_seed_record, seed_rows, seed_summary
from thesislib.repro import provenance, seed_everything, set_deterministic, write_json

T = TypeVar("T")

PAPERMILL_MARKER = "# Parameters"


def _injected_names(history: Iterable[str]) -> list[str]:
    """Names assigned in papermill's injected cells found in the kernel's input history."""
    names: list[str] = []
    for source in history:
        if not isinstance(source, str) or not source.lstrip().startswith(PAPERMILL_MARKER):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                if isinstance(target, ast.Name):
                    names.append(target.id)
    return names


def _kernel_history() -> list[str]:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return []
    shell = get_ipython()
    if shell is None:
        return []
    return list(shell.user_ns.get("In", []))


def parameters(cls: type[T], namespace: Mapping[str, Any], history: Iterable[str] | None = None) -> T:
    """Build the notebook's parameter dataclass from its globals.

    ``namespace`` is the notebook's ``globals()``. Unknown papermill parameters raise
    :class:`ConfigError` with the list of valid names; values are coerced to field types.
    """
    fields = [f.name for f in dataclasses.fields(cls)]
    injected = _injected_names(_kernel_history() if history is None else history)
    check_known(injected, fields, "notebook parameter")
    missing = [name for name in fields if name not in namespace]
    if missing:
        raise ConfigError(f"the parameters cell does not define {', '.join(missing)}")
    return from_mapping(cls, {name: namespace[name] for name in fields}, what="notebook parameter")


def setup(seed: int, device: str = "auto", threads: int | None = None,
          deterministic: bool = True) -> torch.device:
    """Seed every generator, ask for deterministic kernels (:func:`~thesislib.repro.set_deterministic`,
    warn-only), set the CPU thread count and resolve the device, in one call.

    ``$THESISLIB_THREADS``, when set, overrides ``threads`` (e.g. to give runs sharing a machine
    one thread each).
    """
    env_threads = os.environ.get("THESISLIB_THREADS", "").strip()
    set_threads(int(env_threads) if env_threads else threads)
    seed_everything(seed)
    set_deterministic(deterministic)
    return resolve_device(device)


def save_run(output_dir: str | Path | None, metrics: Mapping[str, Any], params: Any,
             device: torch.device, **extra: Any) -> Path | None:
    """Write ``metrics.json`` and ``provenance.json`` into ``output_dir`` (nothing if it is empty).

    ``metrics`` follows the results schema read by :mod:`thesislib.replication`:
    ``{"chapter": ..., "scale": ..., "experiments": {experiment_id: {metric: value}}}``.
    """
    if not output_dir:
        return None
    out = Path(output_dir)
    config = to_dict(params) if dataclasses.is_dataclass(params) else dict(params)
    write_json(out / "metrics.json", dict(metrics))
    write_json(out / "provenance.json", provenance(config=config, device=device, **extra))
    return out


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], floatfmt: str = ".2f") -> str:
    """A GitHub-flavoured markdown table (floats formatted with ``floatfmt``; None as an en dash).

    A ``|`` in a header or a cell is escaped (``max |dQ|`` stays one column) and a line break
    becomes a space, so every row has exactly ``len(headers)`` cells.
    """

    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return format(value, floatfmt)
        return _escape_cell(str(value))

    lines = ["| " + " | ".join(_escape_cell(str(h)) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], floatfmt: str = ".2f",
               caption: str | None = None) -> None:
    """Display a markdown table (with an optional bold caption) in the notebook; plain text outside IPython."""
    text = markdown_table(rows, headers, floatfmt)
    if caption:
        text = f"**{caption}**\n\n{text}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover
        print(text)


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``: wall time of a block, for the budget lines."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def _escape_cell(text: str) -> str:
    """One table cell: ``|`` escaped (an already escaped ``\\|`` is left alone), line breaks as spaces."""
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(text.splitlines()))


def show_markdown(text: str) -> None:
    """Display ``text`` as rendered markdown (MyST in the book: math, bold, lists, tables) in the
    notebook; print it outside IPython. Use it for findings and verdicts written as sentences,
    which a ``print`` would leave as one long clipped line in an output box."""
    if not isinstance(text, str):
        raise TypeError(f"show_markdown expects a str of markdown, got {type(text).__name__}")
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        print(text)
        return
    display(Markdown(text))


def findings_markdown(rows: Sequence[str] | Sequence[Sequence[Any]], headers: Sequence[str] | None = None,
                      caption: str | None = None, floatfmt: str = ".2f") -> str:
    """Findings or verdicts as markdown: a table when ``rows`` are sequences of cells (one per
    entry of ``headers``), a bulleted list when they are sentences (``headers`` is then None).

    ``caption`` is a bold line above. An empty ``rows`` reads *no findings*. A row whose length
    differs from ``headers`` is an error naming the row, rather than a table that renders as text.
    """
    head = [f"**{caption}**", ""] if caption else []
    if len(rows) == 0:
        return "\n".join(head + ["*no findings*"])
    sentences = [isinstance(r, str) for r in rows]
    if all(sentences):
        if headers is not None:
            raise ValueError("findings given as sentences take no headers; pass rows of cells for a table")
        return "\n".join(head + [f"- {' '.join(str(r).splitlines())}" for r in rows])
    if any(sentences):
        raise ValueError("findings rows mix sentences (str) and rows of cells; use one kind")
    if headers is None:
        raise ValueError("findings given as rows of cells need headers (one per column)")
    for k, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"findings row {k} has {len(row)} cells, headers has {len(headers)}: {list(row)!r}")
    return "\n".join(head + [markdown_table(rows, headers, floatfmt)])


def show_findings(rows: Sequence[str] | Sequence[Sequence[Any]], headers: Sequence[str] | None = None,
                  caption: str | None = None, floatfmt: str = ".2f") -> None:
    """Display :func:`findings_markdown` (a table of verdicts, or a list of sentences) rendered."""
    show_markdown(findings_markdown(rows, headers, caption, floatfmt))


def show_seed_record(chapter: str, scale: str = "smoke") -> dict[str, Any] | None:
    """Show a chapter's recorded seed study (``thesislib seeds``): per claim its verdict at every base
    seed and at how many it held, then one summary sentence; a note when none is recorded. Returns
    the record."""
    record = load_seed_record(chapter, scale)
    if record is None:
        show_markdown(f"*No seed record yet (run `thesislib seeds {chapter} --base 101 202`).*")
        return None
    rows, headers = seed_rows(record)
    show_table(rows, headers)
    show_markdown(seed_summary(record))
    return record


def replication_table(chapter: str, *, metrics: Collection[str] | None = None, source: bool = False,
                      metric: bool = True, thesis_header: str = "thesis",
                      root: Path | None = None) -> tuple[list[list[Any]], list[str]]:
    """Rows and headers of a chapter's replication table (:func:`show_replication` displays them).

    One row per number printed in the thesis (``thesislib/replication/<chapter>.yaml``):
    experiment, [source], [metric label], the thesis's value, this repository's latest recorded
    value (``results/<chapter>/``, or "not run"), and that run's scale and hardware (empty when
    not run). ``metrics`` keeps only those metric ids (each must be one of the chapter's);
    ``source`` adds the table/figure column; ``metric=False`` drops the metric column (for a
    chapter with one metric, named in ``thesis_header``); ``root`` replaces ``results/`` (tests).
    """
    numbers = paper_numbers(chapter)
    if not numbers:
        raise ValueError(f"chapter {chapter!r} has no printed numbers (thesislib/replication/{chapter}.yaml)")
    if isinstance(metrics, str):
        raise TypeError(f"metrics must be a collection of metric ids, not the str {metrics!r}")
    if metrics is not None:
        known = sorted({n.metric for n in numbers})
        unknown = sorted(set(metrics) - set(known))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)} for chapter {chapter!r}; "
                             f"valid: {', '.join(known)}")
    headers = ["experiment", *(["source"] if source else []), *(["metric"] if metric else []),
               thesis_header, "this repository", "scale", "hardware"]
    rows: list[list[Any]] = []
    for r in replication_rows(chapter, root):
        if metrics is not None and r.paper.metric not in metrics:
            continue
        rows.append([r.paper.experiment, *([r.paper.source] if source else []),
                     *([metric_label(chapter, r.paper.metric)] if metric else []), r.paper.value, r.ours_text,
                     r.ours.scale if r.ours else "", r.ours.hardware if r.ours else ""])
    return rows, headers


def show_replication(chapter: str, *, metrics: Collection[str] | None = None, source: bool = False,
                     metric: bool = True, thesis_header: str = "thesis", floatfmt: str = ".3g",
                     root: Path | None = None) -> None:
    """Display the chapter's replication table: the thesis's numbers beside this repository's
    recorded full-scale runs (see :func:`replication_table` for the columns and options;
    ``floatfmt`` formats the thesis's values)."""
    rows, headers = replication_table(chapter, metrics=metrics, source=source, metric=metric,
                                      thesis_header=thesis_header, root=root)
    show_table(rows, headers, floatfmt=floatfmt)
