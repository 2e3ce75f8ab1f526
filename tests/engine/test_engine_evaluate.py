"""``evaluate`` runs in order, in eval mode, without gradients, and concatenates outputs."""

from __future__ import annotations

import torch
from engine_testkit import MLP, RegressionSet

from thesislib.engine import evaluate


def test_evaluate_concatenates_in_dataset_order() -> None:
    torch.manual_seed(0)
    model = MLP(dropout=0.5)
    data = RegressionSet(37)

    def fn(m, batch):
        x, y = batch
        out = m(x)
        assert not torch.is_grad_enabled() and not m.training
        return {"out": out, "err": (out - y).abs().sum(1)}

    result = evaluate(model, data, fn, torch.device("cpu"), batch_size=10)
    assert model.training  # restored
    with torch.no_grad():
        expected = model.eval()(data.x)
    torch.testing.assert_close(result["out"], expected)
    assert result["err"].shape == (37,)
    pair = evaluate(model, data, lambda m, b: (m(b[0]), b[1]), torch.device("cpu"), batch_size=16)
    assert isinstance(pair, tuple) and torch.equal(pair[1], data.y)
