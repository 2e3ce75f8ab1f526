"""The torchrun entry point: two gloo processes pre-train and train every method of one replicate;
rank 0 writes the networks, and the adapters' source domain is still the pre-trained one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from thesislib.config import to_dict
from thesislib.methods.residual_adapters.config import adapters_config
from thesislib.methods.residual_adapters.train import checkpoint_path, load_runs, main

FIELDS = dict(n_source=64, n_test=16, shots=4, width=0.125, pre_steps=3, pre_batch_size=16, target_steps=2,
              batch_size=8, targets=("faces",), tiny_domain="faces", methods=("series", "finetune"),
              progress="none", seed=1)


def test_two_gloo_processes_train_a_replicate(tmp_path: Path, torchrun_gloo) -> None:
    params = adapters_config(FIELDS, pretrain_dir=str(tmp_path / "ckpt"))
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--device", "cpu", "--stage", "pretrain"])
    assert checkpoint_path(params, "series").is_file() and checkpoint_path(params, "none").is_file()
    assert not (tmp_path / "out").exists()
    cached = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    # another replicate (seed 5) reuses the pre-training of the params' seed: nothing new is cached
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu", "--replicate-seed", "5"])
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == cached
    runs = load_runs(params, tmp_path / "out")
    assert set(runs) == {("series", "faces"), ("finetune", "faces")}
    series = torch.load(checkpoint_path(params, "series"), weights_only=True)
    state = runs["series", "faces"].net.state_dict()
    for name, value in series.items():  # the source domain (index 0) and the shared filters are untouched
        assert torch.equal(state[name], value), name
    plain = torch.load(checkpoint_path(params, "none"), weights_only=True)
    tuned = runs["finetune", "faces"].net.state_dict()
    assert not torch.equal(tuned["stem.conv.weight"], plain["stem.conv.weight"])


def test_launch_keeps_the_pretraining_seed_and_passes_the_replicate_seed(tmp_path: Path, monkeypatch) -> None:
    """Review R2 #3: the replicate seed must not overwrite the params' (pre-training) seed."""
    from thesislib.methods.residual_adapters import train as T

    seen = {}

    def fake_launch(module, args, nproc, timeout):
        seen["params"] = json.loads(Path(args[args.index("--params") + 1]).read_text())
        seen["args"] = [str(a) for a in args]

    monkeypatch.setattr(T, "launch", fake_launch)
    params = adapters_config(FIELDS, pretrain_dir=str(tmp_path / "ckpt"))
    T._launch(params, 7, "replicate", "cpu", 2, tmp_path / "out", T.MODULE, None)
    assert seen["params"]["seed"] == params.seed == 1
    assert seen["args"][seen["args"].index("--replicate-seed") + 1] == "7"
    assert checkpoint_path(adapters_config(seen["params"]), "none") == checkpoint_path(params, "none")


@pytest.mark.slow
def test_notebook_path_with_nproc_2_launches_torchrun(tmp_path: Path) -> None:
    """``nproc`` 2: the pre-training and the target runs go through ``torchrun`` (real processes)."""
    from thesislib.methods.residual_adapters import experiments as E
    from thesislib.methods.residual_adapters.train import pretrain_networks

    params = adapters_config(FIELDS, pretrain_dir=str(tmp_path / "ckpt"), nproc=2, tiny_domain="")
    pretrained = pretrain_networks(params, "cpu", timeout=300)
    assert checkpoint_path(params, "series").is_file()
    result = E.run_replicate(params, 1, pretrained, torch.device("cpu"))
    assert set(result.acc) == {"series", "finetune"}
    assert result.source_after["series"]["faces"] == result.acc["series"]["glyphs"]
