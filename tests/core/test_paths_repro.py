import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch

from thesislib import paths
from thesislib.device import resolve_device
from thesislib.repro import provenance, seed_everything, write_json


def test_roots_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV_DATA, str(tmp_path / "d"))
    monkeypatch.setenv(paths.ENV_RUNS, str(tmp_path / "r"))
    assert paths.data_root() == tmp_path / "d"
    assert paths.runs_root() == tmp_path / "r"


def test_roots_do_not_depend_on_cwd(monkeypatch, tmp_path):
    for name in (paths.ENV_DATA, paths.ENV_CACHE, paths.ENV_RUNS, paths.ENV_RESULTS):
        monkeypatch.delenv(name, raising=False)
    before = paths.describe_roots()
    monkeypatch.chdir(tmp_path)
    assert paths.describe_roots() == before
    assert all(Path(p).is_absolute() for p in before.values())


def test_seed_everything_repeats_all_generators():
    def draw():
        return np.random.rand(), torch.rand(1).item(), __import__("random").random()

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first


def test_provenance_has_commit_versions_device_config_time(tmp_path):
    record = provenance(config={"lr": 0.1}, device=resolve_device("cpu"))
    for key in ("commit", "dirty", "versions", "device", "hardware", "config", "time_utc"):
        assert key in record
    assert record["versions"]["torch"] == importlib.metadata.version("torch")
    path = write_json(tmp_path / "p.json", record)
    assert json.loads(path.read_text())["config"] == {"lr": 0.1}
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        import pytest

        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_notebook_setup_turns_on_deterministic_kernels():
    from thesislib.notebook import setup

    try:
        setup(0, "cpu", threads=1)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
        setup(0, "cpu", threads=1, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_pin_environment_makes_relative_roots_absolute(tmp_path, monkeypatch):
    from thesislib.paths import data_root, pin_environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THESISLIB_DATA", "mydata")
    monkeypatch.setenv("THESISLIB_RUNS", str(tmp_path / "abs"))
    monkeypatch.delenv("THESISLIB_CACHE", raising=False)
    assert pin_environment() == {"THESISLIB_DATA": str(tmp_path / "mydata")}
    monkeypatch.chdir(tmp_path / "..")   # a notebook's own folder, say
    assert data_root() == tmp_path / "mydata"


def test_provenance_records_the_command_as_typed(monkeypatch):
    from thesislib.repro import ENV_COMMAND, provenance, typed_command

    monkeypatch.delenv(ENV_COMMAND, raising=False)
    typed = typed_command(["/x/.venv/bin/thesislib", "run", "sec", "-p", "note=a b"])
    assert typed == "thesislib run sec -p 'note=a b'"
    assert typed_command(["/x/thesislib/__main__.py", "list"]) == "python -m thesislib list"
    monkeypatch.setenv(ENV_COMMAND, "thesislib run gsoftmax -p seed=3")
    assert typed_command() == "thesislib run gsoftmax -p seed=3"
    assert provenance()["command"] == "thesislib run gsoftmax -p seed=3"


def test_dirty_means_code_differs_not_recorded_results(tmp_path):
    import subprocess

    from thesislib.repro import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "results" / "r.json").write_text('{"new": 1}')
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path)["dirty"] is True
