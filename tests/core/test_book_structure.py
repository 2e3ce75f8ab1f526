"""The book, the chapter registry, the notebooks and the configs agree with each other."""

import yaml

from thesislib.chapters import CHAPTERS, PARTS, built_chapters
from thesislib.cli import RUNNER_PARAMETERS, notebook_parameters
from thesislib.pairs import check_pairs
from thesislib.paths import project_root

ROOT = project_root()


def _toc_files():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            files.append(entry["file"]) if "file" in entry else None
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc["parts"])
    return files


def test_built_chapters_are_in_the_toc_with_notebook_and_configs():
    files = _toc_files()
    for chapter in built_chapters():
        assert f"notebooks/{chapter.part}/{chapter.stem}" in files
        assert chapter.notebook().is_file() and chapter.notebook().with_suffix(".py").is_file()
        assert {"smoke", "full"} <= set(chapter.scales())
        params = notebook_parameters(chapter)
        assert set(RUNNER_PARAMETERS) <= set(params), "every chapter notebook takes output_dir and scale"


def test_planned_chapters_have_no_page_and_are_listed_as_planned():
    files = _toc_files()
    for chapter in CHAPTERS:
        page = (ROOT / "book" / "parts" / f"{chapter.part}.md").read_text()
        row = next(line for line in page.splitlines() if line.startswith(f"| {chapter.number} |"))
        assert row.rstrip().endswith(f"| {chapter.status} |"), row
        if chapter.status == "planned":
            assert not any(chapter.stem in f for f in files)


def test_every_part_has_a_page_in_the_toc():
    files = _toc_files()
    for part in PARTS:
        assert f"book/parts/{part.id}" in files


def test_notebook_pairs_are_in_sync_and_stripped():
    assert check_pairs(ROOT) == []


def test_papermill_sees_every_name_of_the_parameters_cell():
    """papermill drops a parameter line it cannot parse (e.g. a comment containing '='): the CLI
    would then reject a real parameter as unknown. Compare with Python's own parse of the cell."""
    import ast

    import nbformat

    for chapter in built_chapters():
        nb = nbformat.read(chapter.notebook(), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)]
        assert list(notebook_parameters(chapter)) == assigned, chapter.id
