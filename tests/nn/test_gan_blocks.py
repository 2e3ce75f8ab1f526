"""Spectral normalisation, the hinge and non-saturating GAN losses, resize-convolutions."""

import math

import torch
from torch import nn

from thesislib.nn.gan import (
    hinge_d_loss,
    hinge_g_loss,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    spectral_normalize,
)
from thesislib.nn.resize_conv import ResizeConv2d, resize_conv_decoder


def test_hinge_losses_on_hand_values():
    d_real = torch.tensor([2.0, 0.5, -1.0])   # relu(1 - x): 0, 0.5, 2 -> mean 5/6
    d_fake = torch.tensor([-2.0, 0.0])        # relu(1 + x): 0, 1 -> mean 1/2
    assert math.isclose(float(hinge_d_loss(d_real, d_fake)), 5 / 6 + 0.5, rel_tol=1e-6)
    assert math.isclose(float(hinge_g_loss(d_fake)), 1.0, rel_tol=1e-6)


def test_nonsaturating_losses_match_log_sigmoid():
    d_real, d_fake = torch.tensor([0.3, -1.2]), torch.tensor([0.7])
    want_d = -(torch.log(torch.sigmoid(d_real)).mean() + torch.log(1 - torch.sigmoid(d_fake)).mean())
    assert torch.allclose(nonsaturating_d_loss(d_real, d_fake), want_d, atol=1e-6)
    assert torch.allclose(nonsaturating_g_loss(d_fake), -torch.log(torch.sigmoid(d_fake)).mean(), atol=1e-6)


def test_spectral_norm_brings_top_singular_value_to_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(8, 4))
    with torch.no_grad():
        net[0].weight.mul_(10)
    spectral_normalize(net, n_power_iterations=1)
    spectral_normalize(net)  # idempotent
    net.train()
    for _ in range(30):  # power iterations run in training forwards
        net[2](torch.zeros(1, 8))
        net[0](torch.zeros(1, 3, 3, 3))
    for layer in (net[0], net[2]):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        assert abs(float(torch.linalg.matrix_norm(w, ord=2)) - 1.0) < 1e-3


def test_resize_conv_doubles_and_decoder_range():
    rc = ResizeConv2d(4, 6)
    assert rc(torch.randn(2, 4, 5, 7)).shape == (2, 6, 10, 14)
    # a constant input stays constant after bilinear resizing: the conv sees a flat map
    with torch.no_grad():
        rc.conv.weight.fill_(1.0)
        rc.conv.bias.zero_()
    flat = rc(torch.ones(1, 4, 3, 3))
    assert torch.allclose(flat[..., 1:-1, 1:-1], torch.full_like(flat[..., 1:-1, 1:-1], 36.0))
    dec = resize_conv_decoder(8, (16, 8, 4))
    y = dec(torch.randn(2, 8, 4, 4))
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
