"""``evaluate`` runs in order, in eval mode, without gradients, and concatenates outputs."""

from __future__ import annotations

import torch
from engine_testkit import MLP, RegressionSet
from torch import nn

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


class _NoisyItems(torch.utils.data.Dataset):
    """Item i: i plus a draw from torch's global generator (a random-crop transform's stand-in)."""

    def __len__(self):
        return 11

    def __getitem__(self, i):
        return torch.tensor([float(i)]) + torch.rand(1)


def test_evaluate_seed_gives_each_sample_its_own_view_whatever_the_batch():
    """``seed``: sample i's draws come from (seed, i): the batch size and the caller's generator
    state do not matter, another seed gives other views (the streaming probe's statistics pass under DDP)."""
    ident = lambda m, x: x  # noqa: E731
    torch.manual_seed(5)
    a = evaluate(nn.Identity(), _NoisyItems(), ident, torch.device("cpu"), batch_size=3, seed=1)
    torch.manual_seed(6)
    b = evaluate(nn.Identity(), _NoisyItems(), ident, torch.device("cpu"), batch_size=5, seed=1)
    assert torch.equal(a, b)
    workers = evaluate(nn.Identity(), _NoisyItems(), ident, torch.device("cpu"), batch_size=4, seed=1, num_workers=2)
    assert torch.equal(workers, a)  # the IndexBatch's seed reaches the worker processes
    part = evaluate(nn.Identity(), torch.utils.data.Subset(_NoisyItems(), range(4, 11)), ident, torch.device("cpu"),
                    batch_size=5, seed=1)
    assert not torch.equal(part, a[4:])  # a Subset renumbers its items: the view follows the index it is read at
    assert not torch.equal(evaluate(nn.Identity(), _NoisyItems(), ident, torch.device("cpu"), seed=2), a)
    assert torch.equal(a.floor().view(-1), torch.arange(11.0))
