"""The torchrun entry point: two gloo processes pre-train and train every method of one replicate;
rank 0 writes the networks, and the adapters' source domain is still the pre-trained one."""

from __future__ import annotations

import json
from pathlib import Path

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
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    runs = load_runs(params, tmp_path / "out")
    assert set(runs) == {("series", "faces"), ("finetune", "faces")}
    series = torch.load(checkpoint_path(params, "series"), weights_only=True)
    state = runs["series", "faces"].net.state_dict()
    for name, value in series.items():  # the source domain (index 0) and the shared filters are untouched
        assert torch.equal(state[name], value), name
    plain = torch.load(checkpoint_path(params, "none"), weights_only=True)
    tuned = runs["finetune", "faces"].net.state_dict()
    assert not torch.equal(tuned["stem.conv.weight"], plain["stem.conv.weight"])
