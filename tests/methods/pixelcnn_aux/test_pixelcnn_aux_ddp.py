"""The torchrun entry point of a PixelCNN part: two gloo processes train the same weights as one.

The PixelCNNs have no BatchNorm and the flips are drawn per item (seeded per sample by the engine), so
with dropout off the two-process run is the one-process optimisation up to float summation order
(about 1e-5 here after Adam), while the weights move by about 2e-2 and flipping differently changes
them by about as much: a per-rank flip draw would fail the 1e-4 tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from thesislib.config import to_dict
from thesislib.methods.pixelcnn_aux.config import pixelcnn_aux_config
from thesislib.methods.pixelcnn_aux.train import _train_images, main, train_part

FIELDS = dict(n_train=64, n_test=16, iterations=4, batch_size=16, nr_filters=8, n_mix=2, dropout=0.0,
              flip=True, seed=3, embed_width=8, embed_channels=8)


def test_two_gloo_processes_train_a_part_as_one(tmp_path: Path, torchrun_gloo) -> None:
    params = pixelcnn_aux_config(FIELDS)
    single, _ = train_part(params, "color", _train_images(params, "color"), torch.device("cpu"))
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--part", "color", "--output", tmp_path / "out", "--device", "cpu"])
    state = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    reference = single.state_dict()
    assert set(state) == set(reference)
    for name, value in reference.items():
        assert torch.allclose(state[name], value, atol=1e-4, rtol=0.0), name
    unflipped, _ = train_part(pixelcnn_aux_config({**FIELDS, "flip": False}), "color",
                              _train_images(params, "color"), torch.device("cpu"))
    assert max(float((unflipped.state_dict()[k] - v).abs().max()) for k, v in reference.items()) > 1e-3
