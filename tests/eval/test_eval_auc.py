import pytest
import torch

from thesislib.eval import binary_auc


def _pairwise(s, y):
    pos, neg = s[y.bool()], s[~y.bool()]
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def test_hand_computed_cases():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) -> 3/4
    assert float(binary_auc(torch.tensor([0.9, 0.4, 0.5, 0.1]), torch.tensor([1, 1, 0, 0]))) == pytest.approx(0.75)
    assert float(binary_auc(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1, 0, 0]))) == 1.0
    assert float(binary_auc(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1, 0, 0]))) == 0.0
    # a constant score is 0.5 whatever the prior (the majority answer earns nothing)
    assert float(binary_auc(torch.zeros(10), torch.tensor([1] * 7 + [0] * 3))) == 0.5


def test_matches_pairwise_reference_with_ties():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (200,), generator=g).float()
    y = torch.rand(200, generator=g) < 0.3
    assert float(binary_auc(s.view(10, 20), y.view(10, 20))) == pytest.approx(_pairwise(s, y), abs=1e-12)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="both classes"):
        binary_auc(torch.rand(5), torch.ones(5))
