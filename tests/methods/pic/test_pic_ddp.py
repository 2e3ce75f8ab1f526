"""PIC's torchrun entry point: two gloo processes train the same PIC and g^w-only weights as one.

PIC has no BatchNorm, dropout is off here and the flips are drawn per item (seeded per sample by the
engine), so the two-process run of :func:`thesislib.methods.pic.train.main` is the one-process
optimisation of :func:`~thesislib.methods.pic.train.train_both` up to float summation order (4e-6
for PIC, 2e-7 for g^w-only when written), while the weights move by 1.2e-2 from their initialisation
and flipping other items changes them by 1.3-1.5e-2: ranks that drew their own data order or their
own flips would fail the 1e-4 tolerance (the last assertions measure both scales; a rank whose
training images are mirrored gives 1.6e-2 and fails)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from thesislib.config import to_dict
from thesislib.methods.pic.config import pic_config
from thesislib.methods.pic.data import load_data
from thesislib.methods.pic.model import build_gw_only, build_pic
from thesislib.methods.pic.train import main, train_both
from thesislib.repro import seed_everything

FIELDS = dict(n_train=32, n_test=8, iterations=4, batch_size=8, gw_widths=(8, 8), gw_blocks=(1, 1),
              gw_strides=(1, 2), gw_dilations=(1, 1), gw_out=8, nr_resnet=1, nr_filters=8, n_mix=2,
              dropout=0.0, flip=True, lr=3e-3, seed=5, n_seeds=1)
TOL = 1e-4


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_gloo_processes_train_pic_and_gw_only_as_one(tmp_path: Path, torchrun_gloo) -> None:
    params = pic_config(FIELDS)
    data = load_data(params)
    device = torch.device("cpu")
    pic, gw, histories = train_both(params, device, data)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    out = tmp_path / "out"
    for name, single in (("pic.pt", pic), ("gw_only.pt", gw)):
        state = torch.load(out / name, weights_only=True)
        diff = _max_diff(state, single.state_dict())
        print(f"{name}: two processes vs one, max |diff| {diff:.2g}")
        assert diff < TOL, f"{name}: two processes differ from one by {diff:.2g}"

    record = json.loads((out / "metrics.json").read_text())
    assert set(record["history"]) == {"pic", "gw_only"}
    assert record["history"]["pic"]["train"][-1]["step"] == params.iterations

    # The scales the tolerance separates: how far training moved the weights, and how far other flips move them.
    seed_everything(params.seed)
    initial = build_pic(params).state_dict()
    assert _max_diff(initial, pic.state_dict()) > 1e-3
    seed_everything(params.seed)
    assert _max_diff(build_gw_only(params).state_dict(), gw.state_dict()) > 1e-3
    unflipped, unflipped_gw, _ = train_both(pic_config({**FIELDS, "flip": False}), device, data)
    assert _max_diff(unflipped.state_dict(), pic.state_dict()) > 10 * TOL
    assert _max_diff(unflipped_gw.state_dict(), gw.state_dict()) > 10 * TOL
