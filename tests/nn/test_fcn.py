"""Small FCN for smoke runs: 32 -> 16, field of view 61, parameter groups, speed, it learns."""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.data import generate_scenes, sec_scenes
from thesislib.nn import SmallFCN, build_backbone
from thesislib.nn.fcn import FIELD_OF_VIEW, param_groups


def test_shapes():
    model = SmallFCN(num_classes=5).eval()
    x = torch.randn(4, 3, 32, 32)
    assert model(x).shape == (4, 5, 16, 16)
    assert model.features(x).shape == (4, model.num_features, 16, 16)
    assert model(torch.randn(1, 3, 33, 48)).shape == (1, 5, 17, 24)
    assert torch.equal(model.classifier.bias, torch.zeros(5))


def test_field_of_view_is_61_and_contiguous():
    torch.manual_seed(0)
    model = copy.deepcopy(SmallFCN(num_classes=2)).eval()
    for _name, module in list(model.body.named_modules()):           # linearise: no dead ReLU paths
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, child_name, nn.Identity())
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    out = model(x)
    out[0, 0, 32, 32].backward()
    hit = x.grad[0].abs().sum(dim=0) > 0
    rows = torch.nonzero(hit.any(dim=1)).flatten()
    cols = torch.nonzero(hit.any(dim=0)).flatten()
    assert len(rows) == len(cols) == FIELD_OF_VIEW == 61
    assert rows.max() - rows.min() + 1 == 61 and cols.max() - cols.min() + 1 == 61   # no holes
    assert rows.min() <= 64 <= rows.max()                            # centred on output cell 32 -> px 64


def test_param_groups_cover_everything_once():
    model = SmallFCN(num_classes=4)
    groups = param_groups(model, lr=0.1, weight_decay=1e-4, head_lr_mult=10)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head_weight"]["params"] == [model.classifier.weight]
    assert by_name["head_bias"]["params"] == [model.classifier.bias]
    assert by_name["head_weight"]["lr"] == 1.0 and by_name["head_bias"]["weight_decay"] == 0.0
    assert by_name["biases"]["weight_decay"] == 0.0 and by_name["biases"]["lr"] == 0.1
    assert len(by_name["weights"]["params"]) == 5 and len(by_name["biases"]["params"]) == 10  # BN
    ids = sorted(id(p) for g in groups for p in g["params"])
    assert ids == sorted(id(p) for p in model.parameters())
    assert {g["lr"] for g in model.param_groups(0.1, 0.0)} == {0.1}


def test_forward_backward_of_32_is_fast():
    model = build_backbone("small_fcn", num_classes=5)
    x = torch.randn(32, 3, 32, 32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        model(x).sum().backward()
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.25                                   # ~50-90 ms measured; margin for CI


def test_it_learns_pixel_labels_of_scenes():
    torch.manual_seed(0)
    scenes = generate_scenes(sec_scenes(p_photo_background=0.0), 16, seed=0)
    target = scenes.masks[:, ::2, ::2]                                # 16x16, pixel centres of the grid
    freq = torch.bincount(target.flatten(), minlength=5).float() / target.numel()
    prior_only = -(freq[freq > 0] * freq[freq > 0].log()).sum()      # best loss without looking
    model = SmallFCN(num_classes=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        loss = F.cross_entropy(model(scenes.images), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * prior_only.item()
