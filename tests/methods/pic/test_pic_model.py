"""PIC's data, loss, causality, samplers and measurements on hand-computed cases."""

import math

import torch

from thesislib.data.color import ab_to_unit
from thesislib.data.pixelcnn_smoke import ambiguity_images
from thesislib.methods.pic.config import PICParams
from thesislib.methods.pic.data import ambiguity_labels, lab_inputs
from thesislib.methods.pic.evaluate import ambiguity_scores, dmol_mean, sample_pic
from thesislib.methods.pic.losses import chroma_bits_per_dim
from thesislib.methods.pic.model import build_pic, gw_head

TINY = dict(gw_widths=(4, 8), gw_blocks=(1, 1), gw_strides=(1, 2), gw_dilations=(1, 1), gw_out=12,
            nr_resnet=1, nr_filters=8, n_mix=2, gw_aux_weight=1.0)


def test_lab_inputs_of_a_gray_image():
    rgb = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    big_l, canvas = lab_inputs(rgb, 2)
    assert big_l.shape == (1, 1, 4, 4) and canvas.shape == (1, 3, 2, 2)
    # L* of sRGB 128 is 53.585; a = b = 0 falls in bin 128, at 128 / 127.5 - 1
    assert torch.allclose(big_l, torch.full_like(big_l, 53.585 / 50 - 1), atol=1e-3)
    assert torch.allclose(canvas[:, 1:], torch.full_like(canvas[:, 1:], 128 / 127.5 - 1), atol=1e-6)
    assert torch.allclose(canvas[:, :1], torch.full_like(canvas[:, :1], 53.585 / 50 - 1), atol=1e-3)


def test_block_labels_keep_only_uniform_blocks():
    images = ambiguity_images(3, seed=1, size=16)
    labels = ambiguity_labels(images, 2)
    r = images.region.view(3, 8, 2, 8, 2)
    uniform = (r.amax((2, 4)) == r.amin((2, 4)))
    assert torch.equal(labels.region >= 0, uniform)
    assert torch.equal(labels.region[uniform], r.amax((2, 4))[uniform])


def test_bits_per_dim_hand_case():
    # one component, both means on bin 128, log-scale -7: the bin (half-width h = 1/255) holds
    # sigma(h/s) - sigma(-h/s) of the mass, s = e^-7, in each of a and b
    ab = torch.full((1, 2, 2, 3), 128 / 127.5 - 1)
    out = torch.zeros(1, 6, 2, 3)
    out[:, 1:3] = 128 / 127.5 - 1
    out[:, 3:5] = -7.0
    h, s = 1 / 255, math.exp(-7.0)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = -math.log2(sig(h / s) - sig(-h / s))
    assert abs(chroma_bits_per_dim(ab, out, 1).item() - expected) < 1e-4
    # a very wide logistic (s = e^5): the bin mass is about 2h / (4 s), i.e. log2(4 e^5 * 127.5) bits
    wide = out.clone()
    wide[:, 3:5] = 5.0
    assert abs(chroma_bits_per_dim(ab, wide, 1).item() - math.log2(4 * math.exp(5.0) * 127.5)) < 5e-3
    # normalised per dimension: a larger image with the same per-pixel model costs the same
    assert torch.allclose(chroma_bits_per_dim(ab.repeat(1, 1, 2, 2), wide.repeat(1, 1, 2, 2), 1),
                          chroma_bits_per_dim(ab, wide, 1))


def test_pic_is_causal_in_the_chroma_and_sees_all_of_L():
    torch.manual_seed(0)
    model = build_pic(PICParams(**TINY)).eval()
    big_l = torch.randn(1, 1, 12, 12, requires_grad=True)
    canvas = torch.randn(1, 3, 6, 6, requires_grad=True)
    i, j = 3, 2
    out = model(canvas, big_l=big_l)
    out[0, :, i, j].sum().backward()
    g = canvas.grad[0].abs().sum(0)
    order = torch.arange(36).view(6, 6)
    assert g[order >= i * 6 + j].sum() == 0                        # nothing at or after (i, j)
    assert g[order < i * 6 + j].sum() > 0
    assert (big_l.grad[0, 0].abs() > 0).float().mean() > 0.5        # g^w conditions on L broadly


def test_fast_sampling_equals_naive_and_keeps_L():
    torch.manual_seed(0)
    params = PICParams(**TINY)
    model = build_pic(params).eval()
    big_l, canvas = lab_inputs(ambiguity_images(2, seed=3, size=12).images, 2)
    a = sample_pic(model, big_l, canvas[:, :1], 2, torch.Generator().manual_seed(5), fast=True)
    b = sample_pic(model, big_l, canvas[:, :1], 2, torch.Generator().manual_seed(5), fast=False)
    assert a.shape == (2, 2, 6, 6) and torch.equal(a, b)
    grid = torch.linspace(-1, 1, 256)
    assert torch.isclose(a.reshape(-1, 1), grid[None]).any(1).all()   # on the bin centres
    head = gw_head(model, params)
    assert head(big_l).shape == (2, params.dmol_outputs, 6, 6)
    assert head.embedding is model.embedding


def test_dmol_mean_of_one_component_is_its_coupled_mean():
    out = torch.zeros(1, 6, 1, 1)
    out[0, 1], out[0, 2] = 0.2, -0.1            # mu_a, mu'_b
    out[0, 5] = math.atanh(0.5)                 # coupling alpha = 0.5
    mean = dmol_mean(out, 1)
    assert torch.allclose(mean[0, :, 0, 0], torch.tensor([0.2, -0.1 + 0.5 * 0.2]))


def test_ambiguity_scores_of_truth_and_of_speckle():
    images = ambiguity_images(6, seed=2, size=16)
    labels = ambiguity_labels(images, 2)
    _, canvas = lab_inputs(images.images, 2)
    truth = ambiguity_scores(canvas[None, :, 1:], labels)
    assert truth.purity == 1.0 and truth.consistency == 1.0 and truth.diversity == 0.0
    yellow_share = images.disk_yellow[labels.disk.amax((1, 2)) >= 0].float()
    # speckle: every disk pixel alternately blue and yellow in a checkerboard
    blue, yellow = ab_to_unit(torch.tensor([10.0, -59.0])), ab_to_unit(torch.tensor([1.0, 48.0]))
    speckled = canvas[:, 1:].clone()
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 == 0
    disk = labels.disk >= 0
    for n in range(6):
        for y in range(8):
            for x in range(8):
                if disk[n, y, x]:
                    speckled[n, :, y, x] = blue if checker[y, x] else yellow
    scores = ambiguity_scores(speckled[None], labels)
    assert scores.purity < 1.0 and scores.consistency == 1.0
    assert 0.0 <= truth.blue_rate <= 1.0 and yellow_share.numel() > 0
