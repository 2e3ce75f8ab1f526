"""``TransferConfig.freeze_backbone`` (Jenni Table 3.1's transfer with the conv layers "kept fixed"): the frozen
backbone gets no gradient, its weights and BN statistics do not change, the new fc layers train, the rescaling
touches only them."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from thesislib.eval.transfer import (
    ConvFeatures,
    FrozenFeatures,
    TransferConfig,
    TransferNet,
    finetune_classifier,
    freeze_backbone,
)
from thesislib.nn.alexnet import spot_artifacts_discriminator_trunk

torch.set_num_threads(1)


def _net() -> TransferNet:
    trunk = spot_artifacts_discriminator_trunk(width=0.0625, conv1_kernel=3, conv1_stride=1, input_size=16)
    return TransferNet(ConvFeatures(trunk), 2, input_size=16, fc_dims=(16,), dropout=0.0, pool5=False)


def _data(n: int = 24) -> TensorDataset:
    cls = torch.arange(n) % 2
    x = torch.randn(n, 3, 20, 20) * 0.3 + torch.where(cls[:, None, None, None] == 1, 0.8, -0.8)
    return TensorDataset(x, cls)


@pytest.mark.parametrize("rescale", [False, True])
def test_frozen_backbone_gets_no_gradient_and_does_not_change(rescale: bool) -> None:
    torch.manual_seed(0)
    net, data = _net(), _data()
    before = copy.deepcopy(net.backbone.state_dict())  # weights and the BN after conv5's running statistics
    assert any(k.endswith("running_mean") for k in before)
    head_before = [p.detach().clone() for p in net.head().parameters()]
    cfg = TransferConfig(iterations=12, batch_size=8, lr=1e-2, crop=16, seed=1, rescale=rescale, rescale_images=16,
                         freeze_backbone=True)
    out = finetune_classifier(net, data, TensorDataset(data.tensors[0][:, :, 2:18, 2:18], data.tensors[1]), "cpu",
                              cfg)
    assert isinstance(net.backbone, FrozenFeatures) and not net.backbone.module.training
    after = net.backbone.module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no BN folded, no step, no statistics update
    assert all(p.grad is None and not p.requires_grad for p in net.backbone.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(head_before, net.head().parameters()))  # the fc layers trained
    if rescale:
        assert out["rescale"]["folded"] == 0 and len(out["rescale"]["layers"]) == 2  # fc6 and the classifier only
    assert 0.0 <= out["acc"] <= 1.0


def test_frozen_backbone_stays_in_eval_mode_and_blocks_gradient() -> None:
    torch.manual_seed(0)
    net = freeze_backbone(_net())
    assert freeze_backbone(net).backbone is net.backbone  # idempotent
    net.train()
    assert net.training and net.fc.training and not net.backbone.module.training
    loss = net(torch.randn(4, 3, 16, 16)).sum()
    loss.backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None for p in net.head().parameters())
    with pytest.raises(TypeError, match="Linear has no backbone"):
        freeze_backbone(torch.nn.Linear(2, 2))


def test_unfrozen_transfer_still_fine_tunes_the_backbone() -> None:
    torch.manual_seed(0)
    net, data = _net(), _data()
    weights = [p.detach().clone() for p in net.backbone.parameters()]
    cfg = TransferConfig(iterations=6, batch_size=8, lr=1e-2, crop=16, seed=1, rescale=False)
    finetune_classifier(net, data, TensorDataset(data.tensors[0][:, :, 2:18, 2:18], data.tensors[1]), "cpu", cfg)
    assert isinstance(net.backbone, ConvFeatures)
    assert any(not torch.equal(a, b) for a, b in zip(weights, net.backbone.parameters()))


class _NoHead(torch.nn.Module):
    """A backbone but no ``head()``: freezing works, the frozen rescaling cannot."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x).mean((2, 3)))


def test_frozen_rescaling_without_a_head_raises_a_clear_type_error() -> None:
    data = _data(8)
    test = TensorDataset(data.tensors[0][:, :, 2:18, 2:18], data.tensors[1])
    model = _NoHead()
    cfg = TransferConfig(iterations=1, batch_size=4, crop=16, rescale=True, rescale_images=4, freeze_backbone=True)
    with pytest.raises(TypeError, match="_NoHead has no head"):
        finetune_classifier(model, data, test, "cpu", cfg)
    assert not isinstance(model.backbone, FrozenFeatures)  # raised before anything was changed
    finetune_classifier(model, data, test, "cpu", TransferConfig(iterations=1, batch_size=4, crop=16, rescale=False,
                                                                 freeze_backbone=True))
    assert isinstance(model.backbone, FrozenFeatures)  # without the rescaling head() is not needed
