import math

import pytest
import torch

from thesislib.eval.classification import (
    accuracy,
    classification_summary,
    confusion_matrix,
    per_class_accuracy,
    top1_error,
    topk_accuracy,
)

# argmax = [0, 1, 2, 1]; targets [0, 2, 2, 1]: sample 1 wrong (its target 2 is second best)
LOGITS = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.0, 2.0, 1.0]])
TARGETS = torch.tensor([0, 2, 2, 1])


def test_accuracy_and_error_hand_computed():
    assert accuracy(LOGITS, TARGETS).item() == 0.75
    assert accuracy(torch.tensor([0, 1, 2, 1]), TARGETS).item() == 0.75
    assert top1_error(LOGITS, TARGETS).item() == 0.25
    with pytest.raises(TypeError):
        accuracy(torch.tensor([0.0, 1.0, 2.0, 1.0]), TARGETS)
    with pytest.raises(ValueError):
        accuracy(LOGITS, TARGETS[:3])


def test_topk_hand_computed():
    acc = topk_accuracy(LOGITS, TARGETS, ks=(1, 2, 3))
    assert acc[1].item() == 0.75 and acc[2].item() == 1.0 and acc[3].item() == 1.0
    # sample 0 target at rank 3 -> only k=3 counts it
    acc = topk_accuracy(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([0]), ks=(1, 2, 3))
    assert [acc[k].item() for k in (1, 2, 3)] == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        topk_accuracy(LOGITS, TARGETS, ks=(4,))


def test_confusion_matrix_and_per_class():
    cm = confusion_matrix(LOGITS.argmax(1), TARGETS, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert cm.dtype == torch.int64
    pca = per_class_accuracy(LOGITS, TARGETS, 4)
    assert pca[:3].tolist() == [1.0, 1.0, 0.5] and math.isnan(pca[3].item())
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_confusion_matrix_matches_loop():
    gen = torch.Generator().manual_seed(0)
    p = torch.randint(0, 7, (500,), generator=gen)
    t = torch.randint(0, 7, (500,), generator=gen)
    ref = torch.zeros(7, 7, dtype=torch.int64)
    for a, b in zip(t.tolist(), p.tolist()):
        ref[a, b] += 1
    assert torch.equal(confusion_matrix(p, t, 7), ref)


def test_summary_floats():
    s = classification_summary(LOGITS, TARGETS, ks=(1, 5))
    assert s == {"top1_acc": 0.75, "top3_acc": 1.0, "top1_error_pct": 25.0,
                 "mean_per_class_acc": pytest.approx(2.5 / 3)}
    assert all(isinstance(v, float) for v in s.values())
