"""Thresholding D^y, largest-component boxes and the chapter's localization metrics, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.methods.micro_annotation.metrics import (
    box_iou,
    corloc,
    fraction_at,
    localization_error,
    per_class_accuracy,
    pixel_iou,
    precision_recall,
    ranking_curve,
    top5_localization,
)
from thesislib.methods.micro_annotation.regions import (
    component_boxes,
    largest_component,
    largest_component_boxes,
    localize,
    mask_box,
    scale_boxes,
    threshold_regions,
    upsample_scores,
)

INF = float("inf")


def test_threshold_is_twenty_percent_of_the_maximum():
    s = torch.tensor([[[10.0, 2.0, 2.1], [0.0, -5.0, 1.9]]])
    assert torch.equal(threshold_regions(s, 0.2), torch.tensor([[[True, False, True], [False, False, False]]]))


def test_suppressed_regions_never_count_and_do_not_set_the_maximum():
    s = torch.tensor([[[-INF, 4.0, 1.0], [0.5, -INF, 0.9]]])
    # max over the finite scores is 4, level 0.8
    assert torch.equal(threshold_regions(s, 0.2), torch.tensor([[[False, True, True], [False, False, True]]]))
    assert not threshold_regions(torch.full((1, 2, 2), -INF)).any()


def test_non_positive_maps_keep_their_maximum():
    s = torch.tensor([[[-3.0, -1.0], [-1.0, -2.0]]])
    assert torch.equal(threshold_regions(s, 0.2), torch.tensor([[[False, True], [True, False]]]))


def test_minmax_rule_of_the_gap_code():
    s = torch.tensor([[[0.0, 10.0, 1.9, 2.1]]])            # min 0, max 10: level 2
    assert threshold_regions(s, 0.2, "minmax").tolist() == [[[False, True, False, True]]]
    s = torch.tensor([[[-10.0, 10.0, -5.0, -6.0]]])         # level -10 + 0.2 * 20 = -6
    assert threshold_regions(s, 0.2, "minmax").tolist() == [[[False, True, True, False]]]
    assert threshold_regions(s, 0.2, "max").tolist() == [[[False, True, False, False]]]


def test_upsampling_keeps_suppressed_regions_out():
    s = torch.tensor([[[1.0, -INF], [3.0, 2.0]]])
    near = upsample_scores(s, (4, 4), "nearest")
    assert torch.equal(near[0, :2, 2:], torch.full((2, 2), -INF))
    assert torch.equal(near[0, 2:, :2], torch.full((2, 2), 3.0))
    bil = upsample_scores(s, (4, 4), "bilinear")
    assert torch.isinf(bil[0, :2, 2:]).all()
    assert torch.isfinite(bil[0, 2:]).all() and torch.isfinite(bil[0, :2, :2]).all()
    plain = upsample_scores(torch.tensor([[[1.0, 1.0], [3.0, 3.0]]]), (4, 4))
    assert torch.allclose(plain[0, :, 0], torch.tensor([1.0, 1.5, 2.5, 3.0]))   # align_corners=False


def test_largest_component_uses_eight_connectivity():
    m = np.zeros((6, 6), dtype=bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True        # a diagonal chain of 3 (one component with 8-connectivity)
    m[4, 3:6] = m[5, 5] = True                # 4 pixels
    big = largest_component(m)
    assert big.sum() == 4 and big[4, 3] and not big[0, 0]
    m[3, 3] = True                             # joins the chain to the block diagonally: 8 pixels
    assert largest_component(m).sum() == 8
    assert not largest_component(np.zeros((3, 3), dtype=bool)).any()


def test_boxes_are_pixel_edge_coordinates():
    m = np.zeros((8, 10), dtype=bool)
    m[2:5, 3:6] = True                         # rows 2..4, columns 3..5
    assert mask_box(m).tolist() == [3, 2, 6, 5]
    assert np.isnan(mask_box(np.zeros((2, 2), dtype=bool))).all()
    m[7, 9] = True
    boxes = component_boxes(m)
    assert sorted(map(tuple, boxes.tolist())) == [(3, 2, 6, 5), (9, 7, 10, 8)]
    got = largest_component_boxes(torch.tensor(np.stack([m, np.zeros_like(m)])))
    assert got[0].tolist() == [3, 2, 6, 5] and np.isnan(got[1]).all()
    assert scale_boxes(np.array([3, 2, 6, 5]), (8, 10), (16, 5)).tolist() == [1.5, 4, 3, 10]


def test_localize_end_to_end():
    s = torch.zeros(1, 4, 4)
    s[0, 1:3, 2] = 5.0
    regions, boxes = localize(s, (8, 8), upsample="nearest")
    assert regions.shape == (1, 8, 8) and boxes[0].tolist() == [4, 2, 6, 6]


def test_box_iou_by_hand_and_the_inclusive_convention():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [np.nan] * 4])
    assert np.allclose(box_iou(a, b), [[25 / 175, 1.0, 0.0, 0.0]])
    # ILSVRC devkit, inclusive pixels: boxes (0,0)-(9,9) and (5,5)-(14,14): 25 / (100 + 100 - 25)
    assert np.isclose(box_iou(np.array([0, 0, 9 + 1, 9 + 1]), np.array([5, 5, 14 + 1, 14 + 1]))[0, 0], 25 / 175)
    # scale invariance
    s = np.array([0.5, 2.0, 0.5, 2.0])
    assert np.isclose(box_iou(a * s, b[:1] * s)[0, 0], 25 / 175)


def test_corloc_takes_the_best_ground_truth_box():
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    gts = [np.array([[0, 0, 10, 12], [50, 50, 60, 60]]), np.array([[5, 0, 15, 10]]), np.array([[0, 0, 1, 1]])]
    assert corloc(pred, gts).tolist() == [True, False, False]


def test_top5_protocol():
    gt_class = np.array([3, 3, 7])
    gt = [np.array([[0, 0, 10, 10]])] * 3
    good, bad = [0, 0, 10, 10], [0, 0, 2, 2]
    pred_classes = np.array([[1, 3, 4, 5, 6], [3, 1, 2, 4, 5], [1, 2, 3, 4, 5]])
    boxes = np.array([[bad, good, bad, bad, bad], [bad, good, good, good, good], [good] * 5], dtype=float)
    # image 0: right class with a good box; image 1: right class, bad box (a good box of a wrong
    # class does not count); image 2: class not among the guesses
    correct = top5_localization(pred_classes, boxes, gt_class, gt)
    assert correct.tolist() == [True, False, False]
    assert np.isclose(localization_error(correct), 100 * 2 / 3)
    with pytest.raises(ValueError, match="G <= 5"):
        top5_localization(np.zeros((1, 6), int), np.zeros((1, 6, 4)), gt_class[:1], gt[:1])


def test_per_class_accuracy_pixel_iou_precision_recall():
    acc = per_class_accuracy(np.array([1, 0, 1, 1]), np.array([0, 0, 2, 2]), 4)
    assert acc[0] == 50 and np.isnan(acc[1]) and acc[2] == 100 and np.isnan(acc[3])
    pred = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], dtype=bool)
    gt = np.array([[[0, 1, 1, 0]], [[0, 0, 0, 1]]], dtype=bool)
    assert pixel_iou(pred, gt) == pytest.approx(1 / 4)            # summed over the batch
    assert precision_recall(pred, gt) == pytest.approx((1 / 2, 1 / 3))


def test_ranking_curve_by_hand():
    lam2 = np.array([0.9, 0.2, 0.5, 0.8])
    gain = np.array([0.0, 6.0, 3.0, 1.0])
    x, y = ranking_curve(lam2, gain)
    assert x.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(y, [0, 0.6, 0.9, 1.0, 1.0])
    assert fraction_at(x, y, 0.125) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="positive total"):
        ranking_curve(lam2, np.zeros(4))
