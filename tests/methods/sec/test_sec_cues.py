"""Weak localization: CAM foreground cues, saliency background cues, conflicts and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from thesislib.methods.sec.cues import (
    background_cues,
    combine_cues,
    conflicts,
    cue_statistics,
    downsample_masks,
    foreground_cues,
    median_filter3,
    replace_foreground,
    saliency_map,
)
from thesislib.methods.sec.losses import NO_CUE


def test_foreground_cues_threshold_present_classes_only():
    cams = torch.tensor([[[[0.0, 1.0, 10.0]], [[5.0, 5.0, 5.0]], [[-1.0, -2.0, -3.0]]]])  # (1, 3, 1, 3)
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    cues = foreground_cues(cams, labels, tau=0.2)
    assert cues[0, 0, 0].tolist() == [False, False, True]      # > 0.2 * 10 = 2
    assert not cues[0, 1].any()                                 # absent class
    assert not cues[0, 2].any()                                 # present but no positive evidence
    assert foreground_cues(cams, labels, tau=0.05)[0, 0, 0].tolist() == [False, True, True]
    with pytest.raises(ValueError):
        foreground_cues(cams, labels[:, :2])


def test_background_cues_take_the_lowest_fraction():
    torch.manual_seed(0)
    sal = torch.rand(3, 10, 10)
    bg = background_cues(sal, 0.1)
    assert bg.shape == sal.shape and (bg.flatten(1).sum(1) == 10).all()
    for i in range(3):
        assert sal[i][bg[i]].max() < sal[i][~bg[i]].min()
    ties = torch.zeros(1, 4, 5)  # all equal: nothing is strictly below the threshold
    assert not background_cues(ties, 0.1).any()


def test_median_filter_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.random((2, 7, 9)).astype(np.float32)
    got = median_filter3(torch.from_numpy(x)).numpy()
    want = np.stack([ndimage.median_filter(m, size=3, mode="reflect") for m in x])
    np.testing.assert_allclose(got, want)


def test_combine_cues_drops_conflicts():
    fg = torch.zeros(1, 2, 2, 3, dtype=torch.bool)
    bg = torch.zeros(1, 2, 3, dtype=torch.bool)
    fg[0, 0, 0, 0] = True                       # class 1 alone
    fg[0, 1, 0, 1] = True                       # class 2 alone
    fg[0, 0, 0, 2] = fg[0, 1, 0, 2] = True      # two classes
    bg[0, 1, 0] = True                          # background alone
    fg[0, 1, 1, 1] = bg[0, 1, 1] = True         # class 2 and background
    cues = combine_cues(fg, bg)
    assert cues.dtype == torch.uint8
    assert cues[0].tolist() == [[1, 2, NO_CUE], [0, NO_CUE, NO_CUE]]
    assert conflicts(fg, bg).tolist() == [2]


def test_cue_statistics_hand_computed():
    cues = torch.tensor([[[0, 1, NO_CUE, 2]]], dtype=torch.uint8)
    masks = torch.tensor([[[0, 1, 1, 255]]])
    stats = cue_statistics(cues, masks)
    assert stats["coverage"] == 0.75 and stats["fg_coverage"] == 0.5 and stats["bg_coverage"] == 0.25
    assert stats["precision"] == 1.0            # the class-2 cue sits on an ignored pixel
    assert stats["fg_precision"] == 1.0 and stats["bg_precision"] == 1.0
    assert stats["fg_recall"] == 0.5            # one of the two true foreground locations
    wrong = cue_statistics(torch.tensor([[[1, 0]]], dtype=torch.uint8), torch.tensor([[[0, 0]]]))
    assert wrong["fg_precision"] == 0.0 and wrong["bg_precision"] == 1.0
    assert downsample_masks(torch.arange(16).view(1, 4, 4), (2, 2)).shape == (1, 2, 2)


class _Linear(nn.Module):
    """scores = W . flatten(x): its input gradient is W, independent of x."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,kchw->bk", x, self.w)


def test_input_saliency_is_the_max_abs_gradient():
    model = _Linear()
    x = torch.rand(2, 3, 4, 4)
    sal = saliency_map(model, x, median=False)
    assert torch.allclose(sal, model.w.sum(0).abs().amax(0).expand(2, 4, 4))
    present = saliency_map(model, x, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), classes="present", median=False)
    assert torch.allclose(present[0], model.w[0].abs().amax(0)) and torch.allclose(present[1], model.w[1].abs().amax(0))
    assert model.w.grad is None
    pooled = saliency_map(model, x, size=(2, 2), median=False)
    assert torch.allclose(pooled, torch.nn.functional.avg_pool2d(sal[:, None], 2)[:, 0])


def test_layer_saliency_is_taken_before_an_inplace_relu():
    """Caffe's conv4_1 diff is the gradient w.r.t. the convolution's output: the ReLU after it
    (in place here, as in VGG) must not mask the captured gradient."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 1)
    head = nn.Conv2d(4, 2, 1)
    model = nn.Sequential()
    model.add_module("conv", conv)
    model.add_module("relu", nn.ReLU(inplace=True))
    model.add_module("head", head)
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    x = torch.randn(1, 3, 3, 3)
    sal = saliency_map(model, x, layer="conv", median=False)
    a = conv(x)
    relu_mask = (a > 0).float()
    grad = head.weight.sum(0).view(1, 4, 1, 1) * relu_mask / 9.0   # d(sum of scores)/d(conv output)
    assert torch.allclose(sal, grad.abs().amax(1), atol=1e-6)
    assert (relu_mask == 0).any()  # the test would be vacuous without negative pre-activations
    with pytest.raises(ValueError, match="no layer"):
        saliency_map(model, x, layer="nosuch")


def test_replace_foreground_keeps_background_and_drops_conflicts():
    n = NO_CUE
    cues = torch.tensor([[[0, 0, 3], [n, 3, 7]]], dtype=torch.uint8)      # (1, 2, 3)
    fg = torch.tensor([[[0, 5, 0], [2, 0, 0]]], dtype=torch.uint8)
    out = replace_foreground(cues, fg)
    # (0,0): background kept; (0,1): background claimed by fg class 5 -> dropped; (0,2): old fg 3 gone;
    # (1,0): new fg 2; (1,1) and (1,2): old fg gone, nothing new
    assert out.tolist() == [[[0, n, n], [2, n, n]]] and out.dtype == torch.uint8
    expected = torch.where(cues == 0, cues, torch.full_like(cues, n))
    assert torch.equal(replace_foreground(cues, torch.zeros_like(cues)), expected)
    with pytest.raises(ValueError, match="differ"):
        replace_foreground(cues, fg[:, :1])
