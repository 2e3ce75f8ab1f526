"""Keep each notebook pair (``.py`` jupytext source + ``.ipynb``) identical and output-free, and
each chapter notebook's ``parameters`` cell equal to the one its parameter dataclass generates
(:func:`thesislib.params.parameter_cell`)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

from thesislib.chapters import built_chapters
from thesislib.params import parameter_cell

PAIR_FORMATS = "ipynb,py:percent"
PARAMETERS_MARKER = '# %% tags=["parameters"]'


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def notebook_sources(root: Path) -> list[Path]:
    return sorted(p for p in (root / "notebooks").rglob("*.py") if ".ipynb_checkpoints" not in p.parts)


def check_pairs(root: Path) -> list[str]:
    """Problems with the pairs under ``root/notebooks`` (empty list: all good)."""
    problems: list[str] = []
    sources = notebook_sources(root)
    for ipynb in sorted((root / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in ipynb.parts and not ipynb.with_suffix(".py").is_file():
            problems.append(f"{ipynb} has no paired .py source")
    for py in sources:
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.is_file():
            problems.append(f"{py} has no paired {ipynb.name}: run `make sync`")
            continue
        text_nb, json_nb = jupytext.read(py), jupytext.read(ipynb)
        if _cells(text_nb) != _cells(json_nb):
            problems.append(f"{py} and {ipynb.name} hold different cells: run `make sync`")
        if text_nb.metadata.get("jupytext", {}).get("formats") != PAIR_FORMATS:
            problems.append(f"{py}: jupytext formats metadata is not {PAIR_FORMATS!r}")
        if json_nb.metadata.get("kernelspec", {}).get("name") != "python3":
            problems.append(f"{ipynb}: kernelspec must be python3 (the project's environment)")
        if any(c.get("outputs") or c.get("execution_count") for c in json_nb.cells if c.cell_type == "code"):
            problems.append(f"{ipynb} is committed with outputs: run `make sync` to strip them")
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in json_nb.cells):
            problems.append(f"{ipynb} has no cell tagged 'parameters'")
    return problems


def _parameters_span(lines: list[str], path: Path) -> tuple[int, int]:
    """Line indices ``[start, end)`` of the parameters cell's body in a percent-format source."""
    try:
        start = lines.index(PARAMETERS_MARKER) + 1
    except ValueError:
        raise ValueError(f"{path} has no line {PARAMETERS_MARKER!r}") from None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("# %%")), len(lines))
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def parameter_cell_problems(root: Path) -> list[str]:
    """Chapters whose notebook ``parameters`` cell differs from the one their dataclass generates."""
    problems = []
    for chapter in built_chapters():
        py = chapter.notebook(root).with_suffix(".py")
        if not chapter.params or not py.is_file():
            continue
        lines = py.read_text().splitlines()
        try:
            start, end = _parameters_span(lines, py)
        except ValueError as err:
            problems.append(str(err))
            continue
        expected = parameter_cell(chapter.params_class()).splitlines()
        if lines[start:end] != expected:
            changed = sorted(set(lines[start:end]) ^ set(expected))
            problems.append(f"{py}: the parameters cell differs from {chapter.params} "
                            f"({len(changed)} differing lines, e.g. {changed[0]!r}): run `make sync`")
    return problems


def write_parameter_cells(root: Path) -> list[Path]:
    """Rewrite each chapter notebook's ``parameters`` cell from its dataclass; the changed sources."""
    changed = []
    for chapter in built_chapters():
        py = chapter.notebook(root).with_suffix(".py")
        if not chapter.params or not py.is_file():
            continue
        text = py.read_text()
        lines = text.splitlines()
        start, end = _parameters_span(lines, py)
        new = lines[:start] + parameter_cell(chapter.params_class()).splitlines() + lines[end:]
        new_text = "\n".join(new) + ("\n" if text.endswith("\n") else "")
        if new_text != text:
            py.write_text(new_text)
            changed.append(py)
    return changed


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts from an ``.ipynb`` in place; True if it changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
    if changed:
        nbformat.write(notebook, path)
    return changed


def sync_pairs(root: Path) -> list[Path]:
    """Bring every pair in sync (the newer file wins, as in Jupyter), regenerate the parameters
    cells from the chapters' dataclasses (:func:`write_parameter_cells`) and strip the outputs."""
    touched = _sync_all(root)
    if write_parameter_cells(root):
        _sync_all(root)
    return touched


def _sync_all(root: Path) -> list[Path]:
    from jupytext.cli import jupytext as jupytext_cli

    touched = []
    for py in notebook_sources(root):
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            jupytext_cli(["--quiet", "--set-formats", PAIR_FORMATS, "--set-kernel", "python3", str(py)])
        jupytext_cli(["--quiet", "--sync", str(py)])
        strip_outputs(ipynb)
        touched.append(py)
    return touched
