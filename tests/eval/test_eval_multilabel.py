import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from thesislib.eval.multilabel import average_precision, mean_ap, multilabel_counts, multilabel_prf

SCORES5 = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])


@pytest.mark.parametrize("rel,ranked,voc", [
    # precision at ranks 1..5 and at the positives, worked out by hand
    ([1, 0, 1, 0, 1], (1 + 2 / 3 + 3 / 5) / 3, (1 + 2 / 3 + 3 / 5) / 3),   # envelope changes nothing
    ([0, 1, 0, 1, 1], (1 / 2 + 2 / 4 + 3 / 5) / 3, (3 / 5 + 3 / 5 + 3 / 5) / 3),  # 8/15 vs 3/5
    ([1, 0, 0, 1, 1], (1 + 2 / 4 + 3 / 5) / 3, (1 + 3 / 5 + 3 / 5) / 3),   # 0.7 vs 0.7333
    ([0, 0, 0, 0, 1], 1 / 5, 1 / 5),
])
def test_five_item_rankings(rel, ranked, voc):
    targets = torch.tensor(rel)
    perm = torch.tensor([3, 0, 4, 2, 1])  # order of the input must not matter
    assert average_precision(SCORES5[perm], targets[perm], "ranked").item() == pytest.approx(ranked)
    assert average_precision(SCORES5[perm], targets[perm], "voc").item() == pytest.approx(voc)


def test_ties_keep_input_order_and_no_positive_is_nan():
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([0, 1]), "ranked").item() == 0.5
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1, 0]), "ranked").item() == 1.0
    scores = torch.stack([SCORES5, SCORES5], dim=1)
    targets = torch.tensor([[0, 0], [1, 0], [0, 0], [1, 0], [1, 0]])
    ap = average_precision(scores, targets)
    assert ap[0].item() == pytest.approx(0.6) and math.isnan(ap[1].item())
    assert mean_ap(scores, targets).item() == pytest.approx(0.6)
    with pytest.raises(ValueError):
        average_precision(scores, targets, kind="11point")


def _voc_devkit_ap(scores, labels):
    """Literal transcription of the VOC devkit algorithm (loops), as the reference."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order] > 0)
    fp = np.cumsum(labels[order] <= 0)
    rec = tp / max(1, (labels > 0).sum())
    prec = tp / (tp + fp)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def test_vectorised_ap_matches_references_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 6))
    targets = (rng.random((200, 6)) < np.linspace(0.05, 0.6, 6)).astype(np.int64)
    voc = average_precision(torch.from_numpy(scores), torch.from_numpy(targets), "voc")
    ranked = average_precision(torch.from_numpy(scores), torch.from_numpy(targets), "ranked")
    for c in range(6):
        assert voc[c].item() == pytest.approx(_voc_devkit_ap(scores[:, c], targets[:, c]), abs=1e-12)
        # without ties scikit-learn's AP is the non-interpolated Eq. 21
        assert ranked[c].item() == pytest.approx(average_precision_score(targets[:, c], scores[:, c]),
                                                 abs=1e-12)
        assert voc[c].item() >= ranked[c].item() - 1e-12


# 4 images x 3 classes; predictions at threshold 0.5 (0.5 itself counts as predicted)
SCORES = torch.tensor([[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.8, 0.6, 0.3], [0.1, 0.3, 0.5]])
TARGETS = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_counts_hand_computed():
    n_c, n_p, n_g = multilabel_counts(SCORES, TARGETS, 0.5)
    assert n_c.tolist() == [1, 2, 1] and n_p.tolist() == [2, 2, 2] and n_g.tolist() == [2, 2, 1]


def test_prf_hand_computed():
    # per class P = (1/2, 1, 1/2), R = (1/2, 1, 1), F1 = (1/2, 1, 2/3)
    m = multilabel_prf(SCORES, TARGETS)
    assert m["C-P"] == pytest.approx(2 / 3)
    assert m["C-R"] == pytest.approx(5 / 6)
    assert m["C-F1"] == pytest.approx(20 / 27)                   # harmonic mean of C-P, C-R
    assert m["C-F1 (mean per-class)"] == pytest.approx(13 / 18)  # what the tables report
    assert m["O-P"] == pytest.approx(4 / 6)
    assert m["O-R"] == pytest.approx(4 / 5)
    assert m["O-F1"] == pytest.approx(8 / 11)


def test_prf_class_without_predictions_or_positives():
    scores = torch.cat([SCORES, torch.full((4, 1), 0.1)], dim=1)
    targets = torch.cat([TARGETS, torch.zeros(4, 1, dtype=torch.int64)], dim=1)
    zero = multilabel_prf(scores, targets)  # class 3: P = R = F1 = 0 and counts in the means
    assert zero["C-P"] == pytest.approx(2 / 4) and zero["C-R"] == pytest.approx(2.5 / 4)
    assert zero["C-F1 (mean per-class)"] == pytest.approx(13 / 24)
    assert zero["O-F1"] == pytest.approx(8 / 11)
    skip = multilabel_prf(scores, targets, zero_division=float("nan"))  # class 3 left out
    assert skip == pytest.approx(multilabel_prf(SCORES, TARGETS))
    nothing = multilabel_prf(torch.zeros(2, 2), torch.zeros(2, 2))
    assert all(v == 0.0 for v in nothing.values())
