"""Real jupyter-book builds: the site's MathJax is a local file, each part is in the sidebar once, and
the notebooks the book executes show no progress lines."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from thesislib.bookgen import setup, write_book_config, write_generated
from thesislib.chapters import PARTS
from thesislib.engine.progress import ENV_PROGRESS, ProgressReporter
from thesislib.paths import project_root

ROOT = project_root()
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def _build(source: Path, config: Path, toc: Path, output: Path, progress: str = "log") -> Path:
    """``jupyter-book build`` as ``make book-check`` runs it (without -W: warnings are book-check's job)."""
    pytest.importorskip("jupyter_book")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           ENV_PROGRESS: progress, "JUPYTER_PREFER_ENV_PATH": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    done = subprocess.run([str(JUPYTER_BOOK), "build", str(source), "--config", str(config), "--toc", str(toc),
                           "--path-output", str(output), "-n"], cwd=source, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return output / "_build" / "html"


def _config_copy(target: Path, execute: bool, cache: Path) -> Path:
    path = write_book_config(ROOT / "book" / "_config.yml", target, execute=execute)
    config = yaml.safe_load(path.read_text())
    config["execute"]["cache"] = str(cache)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_setup_forces_progress_off_for_the_kernels(monkeypatch, capsys):
    monkeypatch.setenv(ENV_PROGRESS, "log")
    assert setup(object())["parallel_read_safe"]
    assert os.environ[ENV_PROGRESS] == "none"
    reporter = ProgressReporter("log", 10)
    reporter.report({"epoch": 1, "step": 5, "loss": 0.5})
    reporter.message("eval epoch 1 step 5: acc 0.9")
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_book_structure_serves_local_mathjax_and_lists_each_part_once(tmp_path):
    write_generated(ROOT / "book")
    config = _config_copy(tmp_path / "_config.yml", execute=False, cache=tmp_path / "cache")
    site = _build(ROOT, config, ROOT / "book" / "_toc.yml", tmp_path)

    with_math = []
    for page in (p for p in site.rglob("*.html") if "_static" not in p.parts):
        text = page.read_text()
        assert not re.search(r"cdn\.[a-z]+\.(net|org|com)/npm/mathjax|mathjax@", text), page
        sources = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', text)  # Sphinx adds it to pages with math
        for src in sources:
            assert "://" not in src and (page.parent / src).resolve().is_file(), (page, src)
            with_math.append(page.relative_to(site).as_posix())
    assert {"notebooks/kolesnikov2018/02_sec.html", "notebooks/luo2020/01_gsoftmax.html"} <= set(with_math)

    index = (site / "book" / "intro.html").read_text()
    nav = index[index.index("bd-sidenav"):]
    nav = nav[:nav.index("</nav>")]
    entry = r'<span class="caption-text">(.*?)</span>|<a class="reference internal"[^>]*>(.*?)</a>'
    labels = [html.unescape(re.sub(r"<[^>]+>", "", caption or link)).strip()
              for caption, link in re.findall(entry, nav)]
    assert len(labels) == len(set(labels)), labels
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    for part, caption in zip(PARTS, [p["caption"] for p in toc["parts"] if p["caption"].startswith("Part ")]):
        assert labels.count(caption) == 1 and labels.count(part.title) == 1, (caption, labels)


@pytest.mark.slow
def test_executed_notebooks_in_the_book_show_no_progress_lines(tmp_path):
    """The book's config (its extensions) executing a notebook that reports progress in 'log' mode,
    under THESISLIB_PROGRESS=log as the Makefile exports it: the page keeps the cell's own print only."""
    source = tmp_path / "src"
    (source / "book").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "references.bib", source / "book" / "references.bib")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Progress probe"),
        nbformat.v4.new_code_cell(
            "from thesislib.engine.progress import ProgressReporter\n"
            "reporter = ProgressReporter('log', 10)\n"
            "reporter.report({'epoch': 1, 'step': 5, 'loss': 0.5})\n"
            "reporter.message(' '.join(['eval', 'probe', 'line']))\n"
            "print('the cell ran')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, source / "probe.ipynb")
    (source / "_toc.yml").write_text("format: jb-book\nroot: probe\n")
    config = _config_copy(source / "_config.yml", execute=True, cache=tmp_path / "cache")
    data = yaml.safe_load(config.read_text())
    data["execute"]["execute_notebooks"] = "force"
    config.write_text(yaml.safe_dump(data, sort_keys=False))

    page = (_build(source, config, source / "_toc.yml", tmp_path / "out") / "probe.html").read_text()
    assert "the cell ran" in page
    assert "step 5/10" not in page and "eval probe line" not in page  # neither is in the cell's source
