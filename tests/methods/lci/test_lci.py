"""LCI (Jenni ch. 4): the transformations' invariants, the losses on hand-computed tensors, the networks'
shapes, parameters -> configs, and one short training run through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.data.warp import grid_control_points, grid_warp, jacobian_determinant, warp_coordinates
from thesislib.methods.lci.config import LCIParams, class_names, engine_config, lci_config
from thesislib.methods.lci.data import FACE_PARTS, face_layout, face_stamps, procedural_faces
from thesislib.methods.lci.evaluate import diagnostic_task, rotation_task
from thesislib.methods.lci.experiments import CLAIMS, ReplicateResult, claim_verdicts, experiment_id
from thesislib.methods.lci.losses import autoencoding_loss, border_loss, discriminator_loss, inpainter_loss, ssl_loss
from thesislib.methods.lci.model import GlobalNet, Inpainter, LocalNet, PatchDiscriminator, build_classifier
from thesislib.methods.lci.train import build_networks, inpainter_inputs, train_lci
from thesislib.methods.lci.transforms import (
    assemble,
    augment,
    crop_windows,
    draw,
    erase,
    erase_mask,
    paste_windows,
    random_windows,
    rotate,
)

ROOT = Path(__file__).resolve().parents[3]
TINY = dict(load_size=16, image_size=12, patch_size=8, border=2, classifier_width=0.03, fc_dim=256,
            conv1_kernel=3, conv1_stride=2, inpainter_width=4, iterations=2, batch_size=4, n_unlabelled=16,
            probe_per_class=1, probe_epochs=1, diag_iterations=2, diag_train=16, diag_test=16, diag_width=2,
            face_size=16, progress="none", n_seeds=1)


# ---------------------------------------------------------------- transformations
def test_rotations_are_exact_and_invertible() -> None:
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(rotate(x, 1)[0, 0, 0, :], x[0, 0, :, -1])  # 90° ccw: the first row is the last column
    for k in range(4):
        assert torch.equal(rotate(rotate(x, k), 4 - k), x)
    assert torch.equal(rotate(x, 2), x.flip(2).flip(3))


def test_grid_warp_identity_at_zero_and_keeps_corners() -> None:
    x = torch.rand(3, 1, 20, 20)
    assert torch.allclose(grid_warp(x, 4, 0.0), x, atol=1e-5)
    warped = grid_warp(x, 4, 0.1, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(warped, x, atol=1e-3)
    corners = (slice(None), slice(None), [0, 0, -1, -1], [0, -1, 0, -1])
    assert torch.allclose(warped[corners], x[corners], atol=1e-4)  # pinned corners read themselves
    with pytest.raises(ValueError, match="grid"):
        grid_warp(x, 0, 0.1)


def test_grid_warp_moves_content_by_at_most_d() -> None:
    """A constant-gradient image (value = column) warped with the configured grid and d = 0.1: the displacement
    stays within ~d x side (the spline overshoots the control shifts a little, 1.16 x over 64 draws at grid 2;
    grid 4 reaches 2.9 x)."""
    side = 21
    cols = torch.arange(side, dtype=torch.float32).expand(side, side)[None, None].repeat(16, 1, 1, 1)
    warped = grid_warp(cols, LCIParams().warp_grid, 0.1, generator=torch.Generator().manual_seed(1))
    assert float((warped - cols).abs().max()) <= 0.1 * (side - 1) * 1.25 + 1e-4
    assert float((warped - cols).abs().max()) > 0.1


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs" / "lci").glob("*.yaml")))
def test_configured_warp_never_folds(config: str) -> None:
    """T_4 must change local statistics "only minimally" (thesis §4.2.2): the configured warp's read map keeps a
    positive Jacobian (min det > 0.2 over 50 draws at the config's load size); grid 4 at d = 1/10 folds."""
    params = lci_config(load_yaml(ROOT / "configs" / "lci" / config))
    side = params.load_size
    src, dst = grid_control_points(50, side, side, params.warp_grid, params.warp_shift,
                                   torch.Generator().manual_seed(0))
    assert float(jacobian_determinant(warp_coordinates(src, dst, side, side)).min()) > 0.2
    src, dst = grid_control_points(50, side, side, 4, 0.1, torch.Generator().manual_seed(0))
    assert float(jacobian_determinant(warp_coordinates(src, dst, side, side)).min()) <= 0  # the check can fail


def test_grid_control_points_are_grid_warps_draws() -> None:
    """The read map checked above is the one grid_warp applies (same draws, same sampling)."""
    x = torch.rand(3, 1, 20, 20, dtype=torch.float64)
    src, dst = grid_control_points(3, 20, 20, 2, 0.1, torch.Generator().manual_seed(4))
    read = warp_coordinates(src, dst, 20, 20)
    norm = torch.stack([read[..., 1], read[..., 0]], dim=-1) / 19 * 2 - 1
    expect = torch.nn.functional.grid_sample(x, norm, mode="bilinear", padding_mode="border", align_corners=True)
    assert torch.allclose(grid_warp(x, 2, 0.1, generator=torch.Generator().manual_seed(4)), expect)


def test_erase_mask_border_width() -> None:
    m = erase_mask(8, 2)
    assert m.shape == (1, 1, 8, 8)
    assert m.sum() == 16  # 4x4 centre
    assert m[0, 0, :2].sum() == 0 and m[0, 0, -2:].sum() == 0 and m[0, 0, :, :2].sum() == 0
    assert m[0, 0, 2:6, 2:6].eq(1).all()
    with pytest.raises(ValueError, match="border"):
        erase_mask(4, 2)


def test_erase_keeps_the_border_and_fills_the_centre_with_noise() -> None:
    e, z, m = torch.ones(1, 1, 8, 8), torch.full((1, 1, 8, 8), -3.0), erase_mask(8, 2)
    out = erase(e, m, z)
    assert torch.equal(out[m.expand_as(out) == 0], e[m.expand_as(out) == 0])
    assert torch.equal(out[m.expand_as(out) == 1], z[m.expand_as(out) == 1])


def test_paste_is_exact_and_leaves_the_outside_unchanged() -> None:
    x = torch.randn(3, 2, 12, 12)
    corners = random_windows(3, 12, 5, generator=torch.Generator().manual_seed(0))
    patches = torch.randn(3, 2, 5, 5)
    out = paste_windows(x, patches, corners)
    assert torch.equal(crop_windows(out, corners, 5), patches)
    inside = torch.zeros_like(x, dtype=torch.bool)
    for i, (r, c) in enumerate(corners.tolist()):
        inside[i, :, r:r + 5, c:c + 5] = True
        assert torch.equal(x[i, :, r:r + 5, c:c + 5], crop_windows(x, corners, 5)[i])
    assert torch.equal(out[~inside], x[~inside])
    assert torch.equal(paste_windows(x, crop_windows(x, corners, 5), corners), x)


def test_windows_stay_inside() -> None:
    c = random_windows(200, 10, 4, generator=torch.Generator().manual_seed(0))
    assert int(c.min()) >= 0 and int(c.max()) <= 6


def test_augment_without_rotation_is_a_crop() -> None:
    x = torch.randn(2, 1, 10, 10)
    crops = torch.tensor([[0, 1], [2, 2]])
    out = augment(x, torch.zeros(2), crops, 8)
    assert torch.equal(out[0], x[0, :, 0:8, 1:9]) and torch.equal(out[1], x[1, :, 2:10, 2:10])
    rotated = augment(x, torch.tensor([0.2, 0.0]), crops, 8)
    assert torch.equal(rotated[1], out[1]) and not torch.allclose(rotated[0], out[0])


def test_class_names_follow_the_subset() -> None:
    assert class_names(("rot", "warp", "lci")) == ("identity", "rot90", "rot180", "rot270", "warp", "lci")
    assert class_names(("lci",)) == ("identity", "lci")
    assert class_names(("warp", "rot")) == ("identity", "rot90", "rot180", "rot270", "warp")
    with pytest.raises(ConfigError, match="unknown"):
        class_names(("jigsaw",))


def test_assemble_builds_every_class_and_replaces_half_by_autoencoded_patches() -> None:
    params = lci_config(TINY, small_rotation=0.0)
    x = torch.randn(4, 1, 16, 16)
    draws = draw(params, x, torch.Generator().manual_seed(0))
    assert draws.ae_corners.shape == (2, 2)  # half of 4 images
    r, a = torch.zeros(4, 1, 8, 8), torch.full((2, 1, 8, 8), 5.0)
    inputs, labels = assemble(params, x, draws, r, a)
    assert inputs.shape == (24, 1, 12, 12) and labels.tolist() == [k for k in range(6) for _ in range(4)]
    full = replace(params, image_size=16)
    d16 = type(draws)(draws.lci_corners, draws.noise, draws.ae_corners, draws.warped, draws.angles,
                      torch.zeros_like(draws.crops))
    inputs, _ = assemble(full, x, d16, r, a)
    identity, rot90, lci = inputs[:4], inputs[4:8], inputs[20:]
    assert torch.equal(crop_windows(identity[:2], draws.ae_corners, 8), a)  # the autoencoded half
    assert torch.equal(identity[2:], x[2:])                                 # the other half untouched
    assert torch.equal(rot90, rotate(identity, 1))                          # rotations of the mixed batch
    assert torch.equal(crop_windows(lci, draws.lci_corners, 8), r)          # LCI: F's patch pasted (Eq. 4.4)


def test_no_autoencoding_replaces_nothing() -> None:
    params = lci_config(TINY, autoencode=False)
    draws = draw(params, torch.randn(4, 1, 16, 16))
    assert draws.ae_corners.shape == (0, 2)


# ---------------------------------------------------------------- losses
def test_ssl_loss_is_the_mean_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    expected = (-torch.log_softmax(logits, 1)[0, 0] - torch.log_softmax(logits, 1)[1, 1]) / 2
    assert torch.isclose(ssl_loss(logits, torch.tensor([0, 1])), expected)


def test_hinge_discriminator_loss_by_hand() -> None:
    # real scores 2, 0 -> relu(1-2)=0, relu(1-0)=1: mean 0.5; fake -2, 1 -> relu(1-2)=0, relu(1+1)=2: mean 1
    assert torch.isclose(discriminator_loss(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 1.0])), torch.tensor(1.5))


def test_border_loss_only_on_the_border() -> None:
    m = erase_mask(6, 1)
    e = torch.zeros(1, 1, 6, 6)
    r = torch.zeros(1, 1, 6, 6)
    r[..., 1:5, 1:5] = 7.0  # differences only in the centre: no border loss
    assert border_loss(r, e, m) == 0
    r2 = torch.zeros(1, 1, 6, 6)
    r2[0, 0, 0, 0] = 2.0  # one border entry off by 2; 20 border entries: 4 / 20
    assert torch.isclose(border_loss(r2, e, m), torch.tensor(4.0 / 20))


def test_autoencoding_loss_and_empty_batch() -> None:
    assert torch.isclose(autoencoding_loss(torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)), torch.tensor(1.0))
    assert autoencoding_loss(torch.zeros(0, 1, 2, 2), torch.zeros(0, 1, 2, 2)) == 0


def test_inpainter_loss_sums_its_terms_with_minus_l_ssl() -> None:
    m = erase_mask(6, 1)
    e = torch.zeros(1, 1, 6, 6)
    r = e.clone()
    r[0, 0, 0, 0] = 2.0                          # border MSE 4 / 20 = 0.2
    recon, e_ae = torch.ones(1, 1, 6, 6), torch.zeros(1, 1, 6, 6)  # AE MSE 1
    d_fake = torch.tensor([0.5])                  # hinge generator term -0.5
    l_ssl = torch.tensor(0.3)
    total, terms = inpainter_loss(d_fake, r, e, m, recon, e_ae, l_ssl, 50.0, 10.0)
    assert torch.isclose(total, torch.tensor(-0.5 + 50 * 0.2 + 10 * 1.0 - 0.3))
    assert torch.isclose(terms["neg_ssl"], torch.tensor(-0.3))
    no_c, terms = inpainter_loss(d_fake, r, e, m, recon, e_ae, None, 50.0, 10.0)
    assert torch.isclose(no_c - total, torch.tensor(0.3)) and "neg_ssl" not in terms


def test_minus_l_ssl_pushes_f_to_fool_c() -> None:
    """The gradient of L_F with respect to C's logit of the true class is positive (F lowers C's confidence)."""
    logits = torch.tensor([[1.0, 0.0]], requires_grad=True)
    l_ssl = ssl_loss(logits, torch.tensor([0]))
    z = torch.zeros(1, 1, 4, 4)
    total, _ = inpainter_loss(torch.zeros(1), z, z, erase_mask(4, 1), z, z, l_ssl, 50.0, 50.0)
    total.backward()
    assert float(logits.grad[0, 0]) > 0


# ---------------------------------------------------------------- networks
def test_network_shapes() -> None:
    params = lci_config(TINY)
    f, d = Inpainter(1, 4), PatchDiscriminator(1, 4)
    patch = torch.randn(3, 1, 8, 8)
    assert f(patch).shape == patch.shape and float(f(patch).detach().abs().max()) < 1
    assert d(patch, patch).shape == (3,)
    assert d.features[0].in_channels == 2  # (patch, erased patch) concatenated
    assert hasattr(d.score, "parametrizations")  # spectral norm
    c = build_classifier(params)
    assert c(torch.randn(2, 1, 12, 12)).shape == (2, 6)
    assert build_classifier(replace(params, transforms=("lci",)))(torch.randn(2, 1, 12, 12)).shape == (2, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        f(torch.randn(1, 1, 6, 6))


@pytest.mark.parametrize("rf", [3, 5, 7])
def test_local_net_receptive_field(rf: int) -> None:
    torch.manual_seed(0)
    net = LocalNet(1, 4, 2, rf).eval()
    x = torch.randn(1, 1, 21, 21, requires_grad=True)
    net.net(x)[0, :, 10, 10].sum().backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.numel() > 0 and int(rows.max() - rows.min() + 1) <= rf


def test_global_net_sees_far() -> None:
    net = GlobalNet(1, 2, 2).eval()
    x = torch.randn(1, 1, 40, 40, requires_grad=True)
    net.net(x)[0, :, 2, 2].sum().backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert int(rows.max() - rows.min() + 1) > 20


# ---------------------------------------------------------------- parameters and configs
def test_params_reject_bad_values() -> None:
    with pytest.raises(ConfigError, match="image_size"):
        lci_config(TINY, image_size=20)
    with pytest.raises(ConfigError, match="multiple of 4"):
        lci_config(TINY, patch_size=10)
    with pytest.raises(ConfigError, match="border"):
        lci_config(TINY, border=4)
    with pytest.raises(ConfigError):
        lci_config(TINY, no_such_field=1)


def test_params_reach_the_engine_and_optimisers() -> None:
    params = lci_config(TINY, iterations=7, batch_size=6)
    cfg = engine_config(params)
    assert cfg.max_steps == 7 and cfg.batch_size == 6


@pytest.mark.parametrize("name", ["smoke", "full", "full_stl10", "full_stl10_lci", "full_celeba", "full_imagenet"])
def test_configs_load(name: str) -> None:
    params = lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml"))
    assert isinstance(params, LCIParams)


def test_full_configs_follow_the_thesis() -> None:
    stl = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10.yaml"))
    assert (stl.image_size, stl.batch_size, stl.patch_size, stl.border) == (64, 64, 48, 2)
    assert stl.iterations == 105_000 * 200 // 64 and stl.transforms == ("rot", "warp", "lci")
    optimisation = (stl.lr, stl.lr_end, stl.beta1, stl.beta2, stl.weight_decay, stl.gan_lr)
    assert optimisation == (3e-4, 3e-7, 0.5, 0.99, 1e-4, 2e-4)
    imnet = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_imagenet.yaml"))
    assert (imnet.image_size, imnet.batch_size, imnet.nproc, imnet.border) == (128, 96, 4, 4)
    assert experiment_id(stl) == "stl10/rot+warp+lci"
    lci = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10_lci.yaml"))
    assert experiment_id(lci) == "stl10/lci-baseline"
    assert experiment_id(replace(lci, patch_size=32)) == "stl10/lci-patch32"
    assert experiment_id(replace(lci, frozen_inpainter=True)) == "stl10/lci-frozen-f"


def test_every_recorded_id_is_a_reachable_table_row_or_off_the_table() -> None:
    """Table 4.2's LCI row and the Random rows are reachable, and Tables 4.5 / 4.6's rows from the streaming full
    configs; the cached ImageNet probe (not Table 4.5's protocol), cached fixed-view STL-10 probes and a Table 4.2
    run with an ablation switch land on ids with no paper row (review #4)."""
    from thesislib.methods.lci.experiments import aggregate, random_experiment_id
    from thesislib.replication import paper_numbers

    ids = {n.experiment for n in paper_numbers("lci")}
    stl = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10.yaml"))
    table42 = {"stl10/" + "+".join(t) for t in (("warp",), ("lci",), ("rot",), ("warp", "lci"), ("rot", "warp"),
                                              ("rot", "lci"), ("rot", "warp", "lci"))}
    for key in table42:
        assert experiment_id(replace(stl, transforms=tuple(key[6:].split("+")))) == key and key in ids
    assert random_experiment_id(stl) == "stl10/random" in ids
    assert experiment_id(replace(stl, patch_size=32)) not in ids
    lci = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10_lci.yaml"))
    assert experiment_id(lci) == "stl10/lci-baseline" and random_experiment_id(lci) not in ids
    assert experiment_id(replace(lci, probe_mode="cached", probe_views=10)) == "stl10/lci-fixed-views" not in ids
    for name in ("full_imagenet", "full"):  # the streaming probe on all of train: Table 4.5's rows
        imnet = lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml"))
        assert experiment_id(imnet) == "imagenet/rot+warp+lci" in ids and "imagenet/rot+warp+lci-multicrop" in ids
        assert random_experiment_id(imnet) == "imagenet/random" in ids  # Table 4.5's Random row
        cached = replace(imnet, probe_mode="cached", probe_size=0, probe_test_crops=0)
        assert experiment_id(cached) == "imagenet/rot+warp+lci+reduced-probe" not in ids
        assert random_experiment_id(cached) not in ids
        assert experiment_id(replace(imnet, probe_size=0)) == "imagenet/rot+warp+lci+probe128" not in ids
    places = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_places.yaml"))
    assert experiment_id(places) == "places/rot+warp+lci" in ids and "places/rot+warp+lci-multicrop" in ids
    assert random_experiment_id(places) == "places/random" in ids  # Table 4.6's Random row
    assert experiment_id(replace(stl, probe_mode="cached")) == "stl10/rot+warp+lci+fixed-views" not in ids
    results = [ReplicateResult(s, probe_ssl={"conv1": 0.6}, probe_random={"conv1": 0.5}) for s in range(2)]
    out = aggregate(stl, results)
    assert out["stl10/random"]["probe_conv1"]["mean"] == pytest.approx(50.0)
    assert out["stl10/rot+warp+lci"]["probe_conv1"]["mean"] == pytest.approx(60.0)
    assert not any(k.startswith("random_") for k in out["stl10/rot+warp+lci"])


# ---------------------------------------------------------------- data and diagnostics
def test_procedural_faces() -> None:
    upright = procedural_faces(4, 32, "upright", 0)
    scrambled = procedural_faces(4, 32, "scrambled", 0)
    assert upright.shape == scrambled.shape == (4, 1, 32, 32) and float(upright.abs().max()) <= 1
    assert torch.equal(upright, procedural_faces(4, 32, "upright", 0))
    assert not torch.equal(upright[0], upright[1])
    task = rotation_task(upright, 32, 0)
    assert task.tensors[0].shape == (4, 1, 32, 32) and set(task.tensors[1].tolist()) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="parts"):
        procedural_faces(1, 32, "placed", 0)


def test_face_parts_are_oriented_and_away_from_the_frame() -> None:
    stamps, layout = face_stamps(32), face_layout(32)
    t = stamps["mouth"][0].shape[0]
    for name in FACE_PARTS:
        alpha, value = stamps[name]
        part = alpha * value
        assert all(not torch.allclose(torch.rot90(part, k), part) for k in (1, 2, 3)), name
        r, c = layout[name]
        # jitter ±1 px, local net's padded windows reach 2 px (rf 5) into the frame
        assert min(r, c) - 1 > 2 and max(r, c) + t + 1 < 32 - 2, name
    boxes = [(r, c, r + t - 1, c + t - 1) for r, c in layout.values()]
    for i, a in enumerate(boxes):   # no 5-pixel window covers pixels of two stamps
        for b in boxes[i + 1:]:
            gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3]) - 1
            assert gap >= 4, (a, b)
    # upright faces: the parts sit upright at their places (fully covered pixels hold the part's grey level)
    face = procedural_faces(1, 32, "upright", 5)[0, 0]
    hits = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok = True
            for name in FACE_PARTS:
                alpha, value = stamps[name]
                r, c = layout[name][0] + dy, layout[name][1] + dx
                full = alpha == 1
                ok &= bool(torch.allclose(face[r:r + t, c:c + t][full], value[full]))
            hits += ok
    assert hits == 1


def _eyebrow_detector_counts(images: torch.Tensor) -> list[float]:
    """Per rotation k: windows per image where a fixed 5x5 "eyebrow over the eye" template (cut from the upright
    eye) responds above 90 % of its response to the noise-free eye: a local cue a bag-of-local-patches net could use."""
    alpha, value = face_stamps(32)["left_eye"]
    w = (alpha * value + (1 - alpha) * 0.6)[0:5, 2:7]
    w = w - w.mean()
    tau = 0.9 * float((w * w).sum())
    return [float((torch.nn.functional.conv2d(rotate(images, k), w.view(1, 1, 5, 5)) > tau).float()
                  .sum((1, 2, 3)).mean()) for k in range(4)]


def test_upright_parts_reveal_rotation_locally_scrambled_parts_do_not() -> None:
    up = _eyebrow_detector_counts(procedural_faces(400, 32, "upright", 3))
    assert up[0] > 1.5 and max(up[1:]) < 0.1          # the upright eyebrow is seen only in the upright image
    sc = _eyebrow_detector_counts(procedural_faces(400, 32, "scrambled", 3))
    mean = sum(sc) / 4
    assert mean > 0.5 and all(abs(c - mean) < 0.25 * mean for c in sc)   # same local statistics at every turn


def test_rotation_task_rotates_each_item_by_its_label() -> None:
    x = torch.rand(12, 1, 8, 8)
    images, k = rotation_task(x, 6, 3).tensors
    for i in range(12):
        assert torch.equal(images[i], rotate(x[i:i + 1], int(k[i]))[0, :, 1:7, 1:7])


def test_diagnostic_task_is_balanced_binary() -> None:
    params = lci_config(TINY)
    x = torch.rand(64, 1, 16, 16) * 2 - 1
    task = diagnostic_task(params, "warp", x, None, 0)
    images, labels = task.tensors
    assert images.shape == (64, 1, 12, 12) and 16 < int(labels.sum()) < 48
    untouched = images[labels == 0]
    assert not torch.equal(untouched, x[labels == 0][..., 2:14, 2:14])  # random crops, as C's, not centre crops


def test_diagnostic_task_is_cs_batch_with_its_shortcut_guards() -> None:
    """The local-vs-global task is built as C's batch (review #2): augmentation (random crops, small rotation)
    and, for LCI, the autoencoded patches in the identity images stay on."""
    from thesislib.methods.lci.evaluate import heldout_batch

    params = lci_config(TINY)
    x = torch.rand(64, 1, 16, 16) * 2 - 1
    torch.manual_seed(0)
    inp = build_networks(params)["inp"]
    for name in ("warp", "lci"):
        images, labels = diagnostic_task(params, name, x, inp, 0).tensors
        ref, _ = heldout_batch(replace(params, transforms=(name,)), inp, x, 0)
        assert torch.equal(images, torch.where(labels.bool().view(-1, 1, 1, 1), ref[64:], ref[:64]))
    with_ae, labels = diagnostic_task(params, "lci", x, inp, 0).tensors
    without, _ = diagnostic_task(replace(params, autoencode=False), "lci", x, inp, 0).tensors
    assert not torch.equal(with_ae[labels == 0], without[labels == 0])


def test_claims_use_the_expected_directions() -> None:
    results = [ReplicateResult(s, diagnostics={"warp": {"local": 0.5 + 0.01 * s, "global": 0.9},
                                               "lci": {"local": 0.52 - 0.01 * s, "global": 0.8},
                                               "rot-aligned": {"local": 0.6 + 0.01 * s, "global": 1.0},
                                               "rot-scrambled": {"local": 0.24 + 0.01 * s, "global": 0.9}})
               for s in range(4)]
    vs = {v.id: v for v in claim_verdicts(lci_config(TINY), results)}
    assert set(vs) == set(CLAIMS)
    assert vs["global>local:warp"].holds and vs["local>chance:rot-aligned"].holds
    assert vs["local~chance:rot-scrambled"].holds and vs["global>chance:rot-scrambled"].holds
    assert vs["global>local:rot-scrambled"].holds


# ---------------------------------------------------------------- training
def test_one_training_run_through_the_engine() -> None:
    params = lci_config(TINY)
    images = torch.rand(16, 1, 16, 16) * 2 - 1
    from thesislib.data.tensors import TensorImages
    nets, history = train_lci(params, TensorImages(images), torch.device("cpu"))
    assert set(nets) == {"cls", "inp", "disc"}
    last = history.last()
    for key in ("ssl_acc", "lci_acc", "d_real", "d_fake", "f_gan", "f_border", "f_ae", "f_neg_ssl", "loss_cls",
                "loss_inp", "loss_disc"):
        assert key in last, key
    fresh = build_networks(params)
    assert any(not torch.equal(a, b) for a, b in zip(nets["inp"].state_dict().values(),
                                                      fresh["inp"].state_dict().values()))
    x = images[:4]
    e, e_hat, m, e_ae = inpainter_inputs(params, x, draw(params, x))
    assert e.shape == e_hat.shape == (4, 1, 8, 8) and e_ae.shape == (2, 1, 8, 8)


def test_frozen_inpainter_and_rotation_only_runs() -> None:
    images = torch.rand(16, 1, 16, 16) * 2 - 1
    from thesislib.data.tensors import TensorImages
    nets, history = train_lci(lci_config(TINY, frozen_inpainter=True), TensorImages(images), torch.device("cpu"))
    assert not any(p.requires_grad for p in nets["inp"].parameters())
    assert "f_gan" not in history.last() and "ssl_acc" in history.last()
    nets, _ = train_lci(lci_config(TINY, transforms=("rot",)), TensorImages(images), torch.device("cpu"))
    assert set(nets) == {"cls"}


# ---------------------------------------------------------------- wiring of one alternating step (review #6, #7)
class _ConstantD(torch.nn.Module):
    """A discriminator that ignores its inputs (one trainable score): F's gradient can then come only from C."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, patch: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
        return self.w.expand(patch.shape[0])


def _one_step(params: LCIParams, nets: dict[str, torch.nn.Module]) -> dict[str, dict[str, object]]:
    """One ``lci_update`` step through the engine; per optimiser step (just before it), every network's
    parameters, F's gradients and C's BatchNorm buffers; plus ``"end"``."""
    from thesislib.data.tensors import TensorImages
    from thesislib.engine import Trainer
    from thesislib.methods.lci.train import _optimisers, lci_update

    def state() -> dict[str, object]:
        return {"params": {n: [p.detach().clone() for p in m.parameters()] for n, m in nets.items()},
                "f_grad": [None if p.grad is None else p.grad.clone() for p in nets["inp"].parameters()],
                "c_bn": {k: b.clone() for k, b in nets["cls"].named_buffers()}}

    seen: dict[str, dict[str, object]] = {"start": state()}
    slots = _optimisers(params, nets)
    for name, slot in slots.items():
        slot.optimizer.register_step_pre_hook(lambda *_, name=name: seen.__setitem__(name, state()))
    torch.manual_seed(0)
    images = TensorImages(torch.rand(8, 1, 16, 16) * 2 - 1)
    Trainer(nets, slots, images, lci_update(params), engine_config(params), torch.device("cpu")).fit()
    seen["end"] = state()
    return seen


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_one_step_updates_c_then_d_then_f_each_alone() -> None:
    """C's step leaves F and D; D's gradient does not reach F; F's step changes neither C nor D; C's BatchNorm
    running statistics move once per step (its own step), not again in F's −L_SSL pass."""
    params = lci_config(TINY, iterations=1, batch_size=8)
    seen = _one_step(params, build_networks(params))
    start, cls, disc, inp, end = (seen[k] for k in ("start", "cls", "disc", "inp", "end"))
    p = {k: v["params"] for k, v in seen.items()}  # type: ignore[index]
    assert all(g is None for g in cls["f_grad"])                               # C's loss does not reach F
    assert _same(p["disc"]["inp"], p["start"]["inp"]) and _same(p["disc"]["disc"], p["start"]["disc"])
    assert not _same(p["disc"]["cls"], p["start"]["cls"])                      # C stepped
    assert all(g is None or not g.any() for g in disc["f_grad"])               # D's gradient does not reach F
    assert _same(p["inp"]["inp"], p["start"]["inp"]) and not _same(p["inp"]["disc"], p["start"]["disc"])
    assert _same(p["end"]["cls"], p["inp"]["cls"]) and _same(p["end"]["disc"], p["inp"]["disc"])
    assert not _same(p["end"]["inp"], p["inp"]["inp"])                         # F stepped
    for k, b in end["c_bn"].items():                                           # type: ignore[union-attr]
        assert torch.equal(b, disc["c_bn"][k]), k                              # type: ignore[index]
    tracked = [int(b) for k, b in end["c_bn"].items() if k.endswith("num_batches_tracked")]  # type: ignore[union-attr]
    assert tracked and all(n == 1 for n in tracked) and start["c_bn"]


@pytest.mark.parametrize("adversarial", [True, False])
def test_minus_l_ssl_reaches_f_through_the_paste(adversarial: bool) -> None:
    """With λ_border = λ_AE = 0 and a D blind to its inputs, F's only gradient is −L_SSL through the pasted
    windows (Eq. 4.4) into C: non-zero with ``adversarial_c``, zero without it."""
    params = lci_config(TINY, iterations=1, batch_size=8, lambda_border=0.0, lambda_ae=0.0,
                        adversarial_c=adversarial)
    nets = build_networks(params)
    nets["disc"] = _ConstantD()
    grads = _one_step(params, nets)["inp"]["f_grad"]
    total = sum(float(g.abs().sum()) for g in grads if g is not None)  # type: ignore[union-attr]
    assert (total > 0) == adversarial


def test_stl10_probe_images_are_at_the_self_supervised_scale(tmp_path: Path) -> None:
    """C trains on native-resolution crops of the 96-px images; the probes must see the same scale: the centre
    ``image_size`` crop of the native image, not a 96 -> 80 resize (review #5)."""
    from thesislib.data.fixtures import write_stl10_fixture
    from thesislib.data.stl10 import load_stl10
    from thesislib.methods.lci.data import chapter_data

    write_stl10_fixture(tmp_path, n_train=10, n_test=70, n_unlabeled=4)
    params = lci_config(TINY, data="stl10", data_root=str(tmp_path), load_size=80, image_size=64, patch_size=48,
                        diag_test=68)
    data = chapter_data(params, 0)
    raw, _ = load_stl10("test", tmp_path / "stl10")
    expect = raw[0, :, 16:80, 16:80].float() / 255.0 * 2 - 1
    assert torch.allclose(data.probe_test[0][0], expect, atol=1e-6)
    assert data.probe_train[0][0].shape == (3, 64, 64)
    assert data.test_images.shape == (68, 3, 80, 80)  # diag_test held-out images, not a fixed 64 (review #8)


def test_imagenet_probe_images_are_at_the_self_supervised_scale() -> None:
    """ImageNet's self-supervised crops come from a 1.15 x load_size resize; the probe's centre crop of the same
    resize keeps that scale (a whole-image resize to image_size would shrink it 0.7x) (review #5)."""
    import numpy as np

    from thesislib.methods.lci.data import ImageNetCrop, LabelledCenterCrop  # the chapter's own pipeline pieces

    image = np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    x, y = LabelledCenterCrop(184, 128)({"image": image, "label": 7})
    assert x.shape == (3, 128, 128) and y == 7
    torch.manual_seed(0)
    ssl = ImageNetCrop(160)({"image": image})  # a 160 crop of the same 184-px resize (flip: compare both)
    big = (ssl.flip(-1), ssl)
    assert any(torch.allclose(x[:, 0, :], b[:, top, left:left + 128], atol=0.02)
               for b in big for top in range(33) for left in range(33))


def test_celeba_rows_and_voc_ours_are_reachable_from_their_configs() -> None:
    """The CelebA window (72) and the ImageNet window (96) are those datasets' settings, not Table 4.1 switches:
    Table 4.3's rows and Table 4.4's ``voc/ours`` are reachable from the full configs (a 48-px default once
    tagged them ``+patch72`` / ``+patch96``)."""
    from thesislib.methods.lci.experiments import transfer_experiment_id
    from thesislib.replication import paper_numbers

    ids = {n.experiment for n in paper_numbers("lci")}
    celeba = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_celeba.yaml"))
    assert experiment_id(celeba) == "celeba/rot+warp+lci" in ids
    assert experiment_id(replace(celeba, transforms=("rot",))) == "celeba/rot" in ids
    for name in ("full_voc07", "full_voc07_det", "full_voc12_seg"):
        voc = lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml"))
        assert transfer_experiment_id(voc) == "voc/ours" in ids
        assert transfer_experiment_id(replace(voc, patch_size=48)) != "voc/ours"


def test_table41_probe_protocol_never_lands_on_table42_rows() -> None:
    """Table 4.1's conv5 protocol (probe_size 96, views) on a Table 4.2 transform set records off the table."""
    from thesislib.methods.lci.experiments import random_experiment_id
    from thesislib.replication import paper_numbers

    ids = {n.experiment for n in paper_numbers("lci")}
    lci = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10_lci.yaml"))
    mixed = replace(lci, transforms=("rot", "warp", "lci"))
    assert experiment_id(mixed) == "stl10/rot+warp+lci+probe96" and experiment_id(mixed) not in ids
    assert random_experiment_id(mixed) == "stl10/random+probe96" not in ids


def test_face_geometry_keeps_the_local_net_inside_one_part() -> None:
    """At the configured 32 px / rf 5, 4 px to the frame and between parts (after the ±1 px jitter): no 5-px
    window of the zero-padded local net sees the padding and a part, or two parts; smaller faces or a wider
    local net are refused before any training."""
    from thesislib.config import ConfigError
    from thesislib.methods.lci.data import check_face_geometry, face_clearance

    assert face_clearance(32) == (4, 4)
    check_face_geometry(32, 5)
    with pytest.raises(ConfigError, match="face_size 24"):
        check_face_geometry(24, 5)
    with pytest.raises(ConfigError, match="receptive field 7"):
        check_face_geometry(32, 7)
    for name in ("smoke", "full_stl10", "full_imagenet"):
        p = lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml"))
        check_face_geometry(p.face_size, p.local_rf)
