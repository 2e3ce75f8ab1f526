"""The CLI end to end on a throwaway chapter notebook (a real papermill execution, ~5 s)."""

import json

import nbformat
import pytest

import thesislib.chapters as chapters
from thesislib.cli import main

NOTEBOOK_CELLS = [
    ("code", "seed = 0\nlr = 0.1\nscale = 'smoke'\noutput_dir = ''", ["parameters"]),
    ("code", "from dataclasses import dataclass\nimport thesislib.notebook as tnb\n"
             "@dataclass(frozen=True)\nclass P:\n    seed: int = 0\n    lr: float = 0.1\n"
             "    scale: str = 'smoke'\n    output_dir: str = ''\n"
             "p = tnb.parameters(P, globals())\ndevice = tnb.setup(p.seed, 'cpu', threads=1)\n"
             "tnb.save_run(p.output_dir, {'chapter': 'gsoftmax', 'scale': p.scale,\n"
             "             'experiments': {'toy': {'seed': p.seed, 'lr': p.lr}}}, p, device)", []),
]


@pytest.fixture
def fake_checkout(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for _kind, source, tags in NOTEBOOK_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path = tmp_path / "notebooks" / "luo2020" / "01_gsoftmax.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    (tmp_path / "configs" / "gsoftmax").mkdir(parents=True)
    (tmp_path / "configs" / "gsoftmax" / "smoke.yaml").write_text("lr: 0.5\n")
    monkeypatch.setattr(chapters, "project_root", lambda: tmp_path)
    monkeypatch.setenv("THESISLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_run_writes_notebook_metrics_and_provenance(fake_checkout, capsys):
    assert main(["run", "gsoftmax", "--scale", "smoke", "-p", "seed=3"]) == 0
    (run_dir,) = (fake_checkout / "runs" / "gsoftmax").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["01_gsoftmax.ipynb", "metrics.json", "provenance.json"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["experiments"]["toy"] == {"seed": 3, "lr": 0.5}
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["config"] == {"seed": 3, "lr": 0.5, "scale": "smoke", "output_dir": str(run_dir)}


def test_unknown_parameter_fails_and_lists_valid_names(fake_checkout, capsys):
    assert main(["run", "gsoftmax", "-p", "nosuch=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'nosuch'" in err and "valid names are: lr, seed" in err
    assert not (fake_checkout / "runs").exists()


def test_unknown_scale_and_chapter(fake_checkout, capsys):
    assert main(["run", "gsoftmax", "--scale", "huge"]) == 2
    assert "available: smoke" in capsys.readouterr().err
    assert main(["run", "nosuch"]) == 2
    assert "chapters are:" in capsys.readouterr().err


def test_list_and_params(fake_checkout, capsys):
    assert main(["list"]) == 0
    assert "gsoftmax" in capsys.readouterr().out
    assert main(["params", "gsoftmax"]) == 0
    assert "lr = 0.1" in capsys.readouterr().out
