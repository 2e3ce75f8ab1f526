"""Every built chapter declares its parameters once: the notebook cell, the configs and the CLI
all follow the chapter's RunParams subclass."""

from __future__ import annotations

import dataclasses

import pytest

from thesislib.chapters import built_chapters
from thesislib.cli import main
from thesislib.config import ConfigError, load_yaml
from thesislib.pairs import parameter_cell_problems
from thesislib.params import RunParams, parameter_names
from thesislib.paths import project_root
from thesislib.runner import notebook_parameters, resolve_parameters

ROOT = project_root()
CHAPTERS = built_chapters()


def test_every_notebook_parameters_cell_is_the_generated_one():
    assert parameter_cell_problems(ROOT) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.id)
def test_the_dataclass_is_the_notebooks_parameters_and_every_config_builds_it(chapter):
    cls = chapter.params_class()
    assert issubclass(cls, RunParams) and dataclasses.fields(cls)
    assert cls.__dataclass_params__.frozen
    assert list(notebook_parameters(chapter)) == parameter_names(cls)
    for scale in chapter.scales():
        assert set(load_yaml(chapter.config_dir() / f"{scale}.yaml")) <= set(parameter_names(cls, True)), scale
        try:
            resolve_parameters(chapter, scale, [])  # types and ranges of every config are valid
        except ConfigError as err:  # only a value the user must supply (a weights file, say) may be missing
            assert "pass -p" in str(err), (scale, str(err))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.id)
def test_a_bad_value_is_refused_before_anything_runs(chapter, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THESISLIB_RUNS", str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="n_seeds = 0 is below its minimum 1"):
        resolve_parameters(chapter, "smoke", ["n_seeds=0"])
    with pytest.raises(ConfigError, match="nosuch"):
        resolve_parameters(chapter, "smoke", ["nosuch=1"])
    assert main(["run", chapter.id, "-p", "seed=notanumber"]) == 2
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "no run directory for a refused run"
