"""EMA closed form, gradient clipping by global norm, and gradient accumulation equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from engine_testkit import MLP, RegressionSet, params, regression_step
from torch import nn

from thesislib.engine import ModelEMA, TrainConfig, Trainer, epoch_order, fit

CPU = torch.device("cpu")


def test_ema_closed_form_after_two_updates() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    p0 = [p.detach().clone() for p in model.parameters()]
    ema = ModelEMA(model, decay=0.9)
    snapshots = []
    for k in (1, 2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(float(k))
            model[1].running_mean.fill_(10.0 * k)
        snapshots.append([p.detach().clone() for p in model.parameters()])
        ema.update(model)
    for e, a, b, c in zip(ema.module.parameters(), p0, *snapshots):
        torch.testing.assert_close(e, 0.81 * a + 0.09 * b + 0.1 * c)
    assert torch.equal(ema.module[1].running_mean, torch.full((2,), 20.0))  # buffers copied, not averaged
    assert ema.num_updates == 2 and not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())
    restored = ModelEMA(model, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9 and all(torch.equal(a, b) for a, b in zip(params(restored.module), params(ema.module)))


def test_grad_clip_caps_the_global_norm() -> None:
    data = RegressionSet(16)

    def loud_step(model, batch):
        x, y = batch
        return 1000.0 * F.mse_loss(model(x), y), {}

    torch.manual_seed(0)
    model = MLP()
    start = [p.detach().clone() for p in model.parameters()]
    first = epoch_order(16, seed=0, epoch=0)[:8]
    loss = 1000.0 * F.mse_loss(model(data.x[first]), data.y[first])
    expected_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in
                                                          torch.autograd.grad(loss, list(model.parameters()))]))
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=1.0), data, loud_step,
                      TrainConfig(batch_size=8, max_steps=1, grad_clip=0.25, progress="none"), CPU)
    history = trainer.fit()
    moved = torch.sqrt(sum(((p.detach() - s) ** 2).sum() for p, s in zip(model.parameters(), start)))
    assert expected_norm > 10  # the clip is active
    assert moved.item() == pytest.approx(0.25, rel=1e-5)  # SGD lr=1: the step is the clipped gradient
    assert history.get("grad_norm")[0] == pytest.approx(expected_norm.item(), rel=1e-5)


@pytest.mark.parametrize("accum", [2, 4])
def test_grad_accumulation_matches_one_big_batch(accum: int) -> None:
    def train(grad_accum: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = MLP()
        fit(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), RegressionSet(37), regression_step,
            TrainConfig(epochs=2, batch_size=8, grad_accum=grad_accum, progress="none"), CPU)
        return params(model)

    # 37 samples: the last batch of 5 is split into micro-batches weighted by their sizes
    for a, b in zip(train(1), train(accum)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ema_inside_fit_updates_once_per_optimizer_step() -> None:
    torch.manual_seed(0)
    model = MLP()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), RegressionSet(37), regression_step,
                      TrainConfig(epochs=2, batch_size=8, grad_accum=2, ema_decay=0.9, progress="none"), CPU)
    trainer.fit()
    assert trainer.ema.num_updates == trainer.step == 10
    assert not all(torch.equal(a, b) for a, b in zip(params(trainer.ema.module), params(model)))
