"""The torchrun entry point of LCI runs as two gloo processes and writes usable weights.

C, F and D use BatchNorm / spectral norm (per-rank statistics without SyncBatchNorm on CPU), so this checks the
wiring (DDP over the alternating C/D/F update, per-rank draws, rank 0's outputs), not weight equality with one
process."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from thesislib.config import to_dict
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.train import load_outputs, main

FIELDS = dict(load_size=16, image_size=12, patch_size=8, border=2, classifier_width=0.03, fc_dim=256, conv1_kernel=3,
              conv1_stride=2, inpainter_width=4, iterations=2, batch_size=8, n_unlabelled=32, progress="none", seed=1)


def test_two_gloo_processes_train(tmp_path: Path, torchrun_gloo) -> None:
    params = lci_config(FIELDS)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    nets = load_outputs(params, tmp_path / "out")
    assert set(nets) == {"cls", "inp", "disc"}
    for module in nets.values():
        assert all(torch.isfinite(v).all() for v in module.state_dict().values() if v.is_floating_point())
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history


def test_bad_params_are_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({**FIELDS, "patch_size": 10}))
    assert main(["--params", str(path)]) == 2
    assert "patch_size" in capsys.readouterr().err
