"""Naive vs exact fast sampling: identical samples for the same generator."""

from __future__ import annotations

import pytest
import torch

from thesislib.nn.pixelcnn import (
    PixelCNNpp,
    categorical_step,
    dmol_params_count,
    dmol_step,
    sample_fast,
    sample_naive,
    time_naive_rows,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("variance_reduction,map_", [(0.0, False), (0.3, True)])
def test_fast_equals_naive_rgb_conditioned(variance_reduction, map_):
    torch.manual_seed(0)
    model = PixelCNNpp(3, dmol_params_count(3, 2), nr_resnet=1, nr_filters=8, cond_channels=2, updown=False,
                       dropout=0.5)
    h = torch.randn(2, 2, 12, 11)
    step = dmol_step(3, 2, bins=256, variance_reduction=variance_reduction, map=map_)
    a = sample_naive(model, (2, 3, 12, 11), step, gen(1), h=h)
    b = sample_fast(model, (2, 3, 12, 11), step, gen(1), h=h)
    assert torch.equal(a, b)
    assert a.unique().numel() > (1 if map_ else 20)                 # not a constant image
    c = sample_fast(model, (2, 3, 12, 11), step, gen(2), h=h)
    assert map_ or not torch.equal(a, c)                             # the generator matters


def test_fast_equals_naive_pic_canvas_with_given_channel():
    """PIC's canvas: the L channel is given, the two chroma channels are sampled (C = 2 DMOL)."""
    torch.manual_seed(1)
    model = PixelCNNpp(3, dmol_params_count(2, 3), nr_resnet=2, nr_filters=8, updown=False, dropout=0.0)
    canvas = torch.zeros(1, 3, 10, 10)
    canvas[:, 0] = torch.rand(10, 10) * 2 - 1
    step = dmol_step(2, 3, bins=256)
    a = sample_naive(model, (1, 3, 10, 10), step, gen(3), canvas=canvas, target_channels=[1, 2])
    b = sample_fast(model, (1, 3, 10, 10), step, gen(3), canvas=canvas, target_channels=[1, 2])
    assert torch.equal(a, b) and torch.equal(a[:, 0], canvas[:, 0])


def test_fast_equals_naive_categorical_16_levels():
    torch.manual_seed(2)
    model = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=False, dropout=0.0)
    a = sample_naive(model, (3, 1, 9, 9), categorical_step(), gen(4))
    b = sample_fast(model, (3, 1, 9, 9), categorical_step(), gen(4))
    assert torch.equal(a, b)


def test_naive_runs_for_updown_and_fast_refuses_it():
    torch.manual_seed(0)
    model = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=True, dropout=0.0)
    x = sample_naive(model, (1, 1, 4, 4), categorical_step(), gen(0))
    assert x.shape == (1, 1, 4, 4) and x.abs().max() <= 1
    with pytest.raises(ValueError, match="updown=False"):
        sample_fast(model, (1, 1, 4, 4), categorical_step(), gen(0))
    with pytest.raises(ValueError, match="target_channels"):
        sample_naive(model, (1, 1, 4, 4), categorical_step(), gen(0), target_channels=[1])


def test_time_naive_rows_draws_the_first_rows_of_a_full_run():
    torch.manual_seed(0)
    model = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=False, dropout=0.0)
    full = sample_naive(model, (2, 1, 6, 5), categorical_step(), gen(7))
    seconds, rows = time_naive_rows(model, (2, 1, 6, 5), categorical_step(), 2, gen(7))
    assert seconds > 0 and rows.shape == (2, 1, 2, 5) and torch.equal(rows, full[:, :, :2])
    with pytest.raises(ValueError, match="rows must be"):
        time_naive_rows(model, (2, 1, 6, 5), categorical_step(), 7, gen(7))
