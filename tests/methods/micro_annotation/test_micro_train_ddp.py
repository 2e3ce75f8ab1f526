"""The CAM classifier's torchrun entry point: two gloo processes on CPU train the same network as one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from thesislib.config import to_dict
from thesislib.methods.micro_annotation.config import micro_params
from thesislib.methods.micro_annotation.model import build_cam_classifier
from thesislib.methods.micro_annotation.train import WEIGHTS_FILE, main, train_here
from thesislib.repro import seed_everything

FIELDS = dict(n_train=64, n_test=16, epochs=2, batch_size=16, cam_width=4, cam_extra=8, seed=5)


def test_two_gloo_processes_train_the_cam_classifier_as_one(tmp_path: Path, torchrun_gloo) -> None:
    params = micro_params(**FIELDS)
    single = train_here(params, torch.device("cpu"))          # first: the forked workers inherit the imports
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    state = torch.load(tmp_path / "out" / WEIGHTS_FILE, weights_only=True)
    assert set(state) == set(single.state_dict())
    # the same global batches (16 = 8 + 8) and steps; BatchNorm normalises each rank's half on gloo
    # (no SyncBatchNorm on CPU), so the weights stay near the one-process run, not equal to it
    seed_everything(FIELDS["seed"])
    start = build_cam_classifier("cam_small", 4, width=4, extra=8).state_dict()
    name = "trunk.0.weight"
    moved = (single.state_dict()[name] - start[name]).norm()
    assert moved > 0 and (state[name] - single.state_dict()[name]).norm() < 0.75 * moved
