"""The book, the chapter registry, the notebooks and the configs agree with each other."""

import yaml

from thesislib.chapters import CHAPTERS, PARTS, built_chapters
from thesislib.pairs import check_pairs
from thesislib.paths import project_root
from thesislib.runner import RUNNER_PARAMETERS, notebook_parameters

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


def _page_title(file: str) -> str:
    """The first level-1 heading of a toc entry: what the sidebar shows for it."""
    from thesislib.bookgen import dashboard_markdown

    if file == "book/_generated/dashboard":
        text = dashboard_markdown()
    elif (ROOT / f"{file}.md").is_file():
        text = (ROOT / f"{file}.md").read_text()
    else:
        import nbformat

        nb = nbformat.read(ROOT / f"{file}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def test_each_sidebar_label_appears_once():
    """The sidebar lists every part caption and every page title: a part page titled like its
    caption shows the part twice (the caption, then the page under it)."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    titles = [_page_title(f) for f in _toc_files()[1:]]  # the root page is the site title, not a sidebar entry
    labels = captions + titles
    assert len(labels) == len(set(labels)), sorted(label for label in labels if labels.count(label) > 1)


def test_part_pages_are_titled_by_their_document():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    caption_of = {entry["chapters"][0]["file"]: part["caption"] for part in toc["parts"] for entry in [part]}
    for part in PARTS:
        file = f"book/parts/{part.id}"
        assert _page_title(file) == part.title, file
        assert caption_of[file] != part.title


def test_book_config_serves_mathjax_locally_and_silences_progress(tmp_path):
    """The config jupyter-book reads (and the no-execute variant make book-check writes) loads the
    offline MathJax extension and the book's own extension, and sets no CDN mathjax_path."""
    from thesislib.bookgen import write_book_config

    source = ROOT / "book" / "_config.yml"
    for path in (source, write_book_config(source, tmp_path / "_config.yml", execute=False)):
        sphinx = yaml.safe_load(path.read_text())["sphinx"]
        assert {"sphinx-mathjax-offline", "thesislib.bookgen"} <= set(sphinx["extra_extensions"]), path
        assert "mathjax_path" not in sphinx.get("config", {}) or "://" not in sphinx["config"]["mathjax_path"]


def test_nbval_kernels_run_without_progress_lines():
    recipe = (ROOT / "Makefile").read_text().split("\nnbval:", 1)[1].split("\n\n", 1)[0]
    assert "THESISLIB_PROGRESS=none" in recipe and "--nbval" in recipe
