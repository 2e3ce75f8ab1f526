"""PIC's data, loss, causality, samplers and measurements on hand-computed cases."""

import math

import torch

from thesislib.data.color import ab_to_unit
from thesislib.data.pixelcnn_smoke import ambiguity_images, photo_crops
from thesislib.methods.pic.config import PICParams, experiment_id
from thesislib.methods.pic.data import PHOTO_SIDE, AmbiguityLabels, ambiguity_labels, lab_inputs, load_data
from thesislib.methods.pic.evaluate import (
    REFERENCE_COLOURS,
    ambiguity_scores,
    disk_colour_shares,
    dmol_mean,
    palette_ab,
    sample_pic,
)
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


def _one_disk_labels() -> AmbiguityLabels:
    """One 4x4 image: green background, a red square pixel at (0, 0), a 2x2 disk in the lower right."""
    region = torch.zeros(1, 4, 4, dtype=torch.long)
    region[0, 0, 0] = 1
    region[0, 2:, 2:] = 2
    disk = torch.full((1, 4, 4), -1, dtype=torch.long)
    disk[0, 2:, 2:] = 0
    return AmbiguityLabels(region, disk, torch.tensor([[False]]))


def _paint(disk_colours: list[list[str]]) -> torch.Tensor:
    """ab (R, 1, 2, 4, 4): background green, square red, the disk's four pixels (raster order) per sample."""
    pal = dict(zip(("green", "red", "blue", "yellow", "grey"), [*ab_to_unit(palette_ab()), torch.zeros(2)]))
    out = pal["green"].view(1, 1, 2, 1, 1).repeat(len(disk_colours), 1, 1, 4, 4)
    out[:, 0, :, 0, 0] = pal["red"]
    for r, colours in enumerate(disk_colours):
        for k, name in enumerate(colours):
            out[r, 0, :, 2 + k // 2, 2 + k % 2] = pal[name]
    return out


def test_ambiguity_scores_hand_computed():
    labels = _one_disk_labels()
    # two samples: one all blue, one all yellow -> pure, both coloured, half blue, fully diverse
    s = ambiguity_scores(_paint([["blue"] * 4, ["yellow"] * 4]), labels)
    assert (s.purity, s.coloured, s.blue_rate, s.diversity, s.consistency) == (1.0, 1.0, 0.5, 1.0, 1.0)
    # speckle: 2 blue + 2 yellow in each sample -> purity 1/2, no majority colour, no diversity
    s = ambiguity_scores(_paint([["blue", "yellow", "yellow", "blue"]] * 2), labels)
    assert (s.purity, s.coloured, s.blue_rate, s.diversity) == (0.5, 0.0, 0.0, 0.0)
    # a disk left green (or grey) is not yellow: purity 0, never coloured (the blue-vs-yellow-only
    # classification of the first version scored it purity 1, all yellow)
    for name in ("green", "grey"):
        s = ambiguity_scores(_paint([[name] * 4]), labels)
        assert (s.purity, s.coloured, s.diversity) == (0.0, 0.0, 0.0), name
    # 3 blue + 1 green in sample 1, 3 yellow + 1 grey in sample 2, 4 blue in sample 3
    s = ambiguity_scores(_paint([["blue"] * 3 + ["green"], ["yellow"] * 3 + ["grey"], ["blue"] * 4]), labels)
    assert math.isclose(s.purity, (0.75 + 0.75 + 1.0) / 3, rel_tol=1e-6) and s.coloured == 1.0
    assert math.isclose(s.blue_rate, 2 / 3, rel_tol=1e-6) and math.isclose(s.diversity, 2 / 3, rel_tol=1e-6)
    # the square painted green breaks consistency: 1 of 12 fixed pixels wrong
    wrong = _paint([["blue"] * 4])
    wrong[0, 0, :, 0, 0] = wrong[0, 0, :, 1, 1]
    assert math.isclose(ambiguity_scores(wrong, labels).consistency, 11 / 12, rel_tol=1e-6)


def test_photo_crops_data():
    """data="photos": the note's option B, crops of the bundled photos, a new draw per seed, no labels."""
    params = PICParams(data="photos", n_train=6, n_test=3, seed=4)
    data = load_data(params)
    assert data.kind == "photos" and data.labels is None and len(data.train) == 6 and len(data.test) == 3
    expected = photo_crops(3, seed=4 + 10**6, size=16, side=PHOTO_SIDE * 16).images
    assert torch.equal(data.test_rgb, expected)
    big_l, canvas = data.test_batch(3)
    assert torch.equal(big_l, lab_inputs(expected, 2)[0]) and canvas.shape == (3, 3, 8, 8)
    assert not torch.equal(load_data(PICParams(data="photos", n_train=6, n_test=3, seed=5)).test_rgb, expected)
    assert experiment_id(params) == "photos16/pic"


def test_disk_colour_shares():
    labels = _one_disk_labels()
    shares = disk_colour_shares(_paint([["blue"] * 3 + ["green"], ["yellow", "grey", "grey", "red"]]), labels)
    assert REFERENCE_COLOURS == ("green", "red", "blue", "yellow", "grey")
    assert torch.allclose(shares, torch.tensor([1, 1, 3, 1, 2]) / 8.0)
