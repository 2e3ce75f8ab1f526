"""The CLI end to end on a throwaway chapter notebook (a real papermill execution, ~5 s)."""

import dataclasses
import json
import os

import nbformat
import pytest

import thesislib.chapters as chapters
from thesislib.cli import main

TOY_PARAMS = """
from dataclasses import dataclass

from thesislib.params import RunParams, param


@dataclass(frozen=True)
class ToyParams(RunParams):
    lr: float = param(0.1, help="learning rate", min=0.0)
"""

NOTEBOOK_CELLS = [
    ("code", "from toyparams import ToyParams\nfrom thesislib.params import parameter_cell", []),
    ("code", "seed = 0\nn_seeds = 1\nscale = 'smoke'\noutput_dir = ''\ndevice = 'auto'\nthreads = 1\n"
             "progress = 'none'\nlr = 0.1", ["parameters"]),
    ("code", "import thesislib.notebook as tnb\n"
             "p = tnb.parameters(ToyParams, globals())\ndevice = tnb.setup(p.seed, 'cpu', threads=1)\n"
             "tnb.save_run(p.output_dir, {'chapter': 'gsoftmax', 'scale': p.scale,\n"
             "             'experiments': {'toy': {'seed': p.seed, 'lr': p.lr}}}, p, device)", []),
]


@pytest.fixture
def fake_checkout(tmp_path, monkeypatch):
    """A checkout whose only chapter notebook is a toy standing for gsoftmax, with its parameters
    declared by ``toyparams.ToyParams`` (importable by the test and by the notebook's kernel)."""
    (tmp_path / "toyparams.py").write_text(TOY_PARAMS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    toy = [dataclasses.replace(c, params="toyparams:ToyParams") if c.id == "gsoftmax" else c
           for c in chapters.CHAPTERS]
    monkeypatch.setattr(chapters, "CHAPTERS", tuple(toy))
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
    assert provenance["config"] == {"seed": 3, "n_seeds": 1, "scale": "smoke", "output_dir": str(run_dir),
                                    "device": "auto", "threads": 1, "progress": "none", "lr": 0.5}
    assert provenance["command"] == "thesislib run gsoftmax --scale smoke -p seed=3"
    assert "THESISLIB_COMMAND" not in os.environ  # set for the command's duration only


def test_unknown_parameter_fails_and_lists_valid_names(fake_checkout, capsys):
    assert main(["run", "gsoftmax", "-p", "nosuch=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'nosuch'" in err and "valid names are: device, lr, n_seeds, progress, seed" in err
    assert not (fake_checkout / "runs").exists()


def test_a_wrong_type_or_range_fails_before_papermill_and_leaves_no_run_dir(fake_checkout, capsys):
    assert main(["run", "gsoftmax", "-p", "lr=-1"]) == 2
    assert "lr = -1.0 is below its minimum 0.0" in capsys.readouterr().err
    assert main(["run", "gsoftmax", "-p", "threads=many"]) == 2
    assert "threads" in capsys.readouterr().err
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
    out = capsys.readouterr().out
    assert "lr = 0.1  # float; learning rate (min 0.0)" in out and "n_seeds = 1" in out
