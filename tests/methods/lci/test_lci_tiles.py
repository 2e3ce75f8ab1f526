"""Fig. 4.1's transformation (4x4 tile shuffle, tile borders inpainted by F) and the conv5 probe test built on it:
hand-computed permutations and bands, the bijection of tiles, content kept off the bands, the identity excluded,
determinism, the test's data and its verdicts, the parameters and the record ids."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.data import NUM_CLASSES, chapter_data
from thesislib.methods.lci.evaluate import (
    labelled_images,
    supervised_classifier,
    tiles_probe_accuracy,
    tiles_task,
)
from thesislib.methods.lci.experiments import (
    FIG41_SUPERVISED_EPOCHS,
    ReplicateResult,
    aggregate,
    run_tiles_test,
    tiles_experiment_id,
    tiles_sentences,
    tiles_verdicts,
)
from thesislib.methods.lci.model import Inpainter, build_classifier
from thesislib.methods.lci.plots import tiles_rows
from thesislib.methods.lci.tiles import (
    band_inpaint,
    band_mask,
    check_tile_geometry,
    draw_tiles,
    shuffle_tiles,
    tile_permutations,
    tile_shuffle_inpaint,
)
from thesislib.methods.lci.train import build_networks
from thesislib.replication import paper_numbers

ROOT = Path(__file__).resolve().parents[3]
TINY = dict(load_size=16, image_size=12, patch_size=8, border=2, classifier_width=0.03, fc_dim=256,
            conv1_kernel=3, conv1_stride=2, inpainter_width=4, iterations=2, batch_size=4, n_unlabelled=16,
            probe_per_class=1, probe_epochs=1, diag_iterations=2, diag_train=16, diag_test=16, diag_width=2,
            face_size=16, progress="none", n_seeds=1, tiles_images=16, tiles_supervised_epochs=1,
            tiles_supervised_batch_size=64)


def constant(value: float):  # an "inpainter" whose output marks where it was pasted
    return lambda x: torch.full_like(x, value)


# ---------------------------------------------------------------- the transformation
def test_shuffle_tiles_on_a_hand_computed_case() -> None:
    """A 4x4 image with 1-pixel tiles: output pixel j is input pixel perm[j]; a 4x4 image with 2x2 tiles of a 2x2
    grid, permutation (3, 2, 1, 0): the quadrants swap diagonally."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    perm = torch.tensor([[5, 0, 15, 3, 2, 1, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]])
    assert torch.equal(shuffle_tiles(x, perm, 4).flatten(), x.flatten()[perm[0]])
    quadrants = shuffle_tiles(x, torch.tensor([[3, 2, 1, 0]]), 2)[0, 0]
    assert quadrants.tolist() == [[10, 11, 8, 9], [14, 15, 12, 13], [2, 3, 0, 1], [6, 7, 4, 5]]


def test_shuffle_is_a_bijection_of_tiles() -> None:
    """Every output tile is the input tile the permutation names, and the inverse permutation restores the image
    exactly (nothing lost or duplicated); per channel and per image."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 24, 24, generator=gen)
    perms = tile_permutations(5, 4, gen)
    out = shuffle_tiles(x, perms, 4)
    for b in range(5):
        for j in range(16):
            src = int(perms[b, j])
            assert torch.equal(out[b, :, 6 * (j // 4):6 * (j // 4) + 6, 6 * (j % 4):6 * (j % 4) + 6],
                               x[b, :, 6 * (src // 4):6 * (src // 4) + 6, 6 * (src % 4):6 * (src % 4) + 6])
    assert torch.equal(shuffle_tiles(out, perms.argsort(dim=1), 4), x)
    assert torch.equal(out.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)


def test_permutations_exclude_the_identity_and_cover_the_rest() -> None:
    """On a 2x2 grid (24 permutations) 4,000 draws never give the identity and give each of the other 23."""
    perms = tile_permutations(4000, 2, torch.Generator().manual_seed(1))
    assert not (perms == torch.arange(4)).all(dim=1).any()
    assert len({tuple(p) for p in perms.tolist()}) == 23
    assert torch.equal(perms.sort(dim=1).values, torch.arange(4).expand(4000, 4))  # each row a permutation
    with pytest.raises(ValueError, match="grid"):
        tile_permutations(2, 1)


def test_band_mask_lies_on_the_tile_borders() -> None:
    """24 px, 4x4 grid of 6 px tiles, band 2: rows and columns 5-6, 11-12, 17-18 (one pixel each side of the
    borders at 6, 12, 18); band 3 adds the pixel after (5-7, ...: band // 2 before the border, the rest after);
    nothing on the image frame."""
    m = band_mask(24, 4, 2)[0, 0]
    on = [5, 6, 11, 12, 17, 18]
    line = torch.zeros(24, dtype=torch.bool)
    line[on] = True
    assert torch.equal(m.bool(), line[:, None] | line[None, :])
    assert m[0].tolist() == [1.0 if c in on else 0.0 for c in range(24)]
    m3 = band_mask(24, 4, 3)[0, 0]
    assert torch.nonzero(m3[0]).flatten().tolist() == [5, 6, 7, 11, 12, 13, 17, 18, 19]
    assert m[:, 0].sum() == 6 and m[0, 0] == 0 and m[-1, -1] == 0
    with pytest.raises(ValueError, match="narrower than a tile"):
        band_mask(24, 4, 6)
    with pytest.raises(ValueError, match="not a multiple"):
        check_tile_geometry(25, 4, 2)


def test_band_inpaint_changes_only_the_bands() -> None:
    """Off the bands the output is the shuffled image exactly; on them it is F's output (a constant 7 here); F's
    input has the shuffled image off the bands and the noise on them (Eq. 4.3)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 24, 24, generator=gen)
    out, draws = tile_shuffle_inpaint(x, constant(7.0), 4, 2, 1.0, torch.Generator().manual_seed(3))
    s = shuffle_tiles(x, draws.perms, 4)
    m = band_mask(24, 4, 2).expand_as(x).bool()
    assert torch.equal(out[~m], s[~m]) and bool((out[m] == 7.0).all())
    seen = {}

    def spy(inp: torch.Tensor) -> torch.Tensor:
        seen["x"] = inp
        return inp

    band_inpaint(s, band_mask(24, 4, 2), draws.noise, spy)
    assert torch.equal(seen["x"][~m], s[~m]) and torch.equal(seen["x"][m], draws.noise[m])
    with pytest.raises(ValueError, match="inpainter returned"):
        band_inpaint(s, band_mask(24, 4, 2), draws.noise, lambda z: z[..., :12, :12])


def test_without_an_inpainter_only_the_tiles_move() -> None:
    x = torch.rand(2, 1, 24, 24)
    a, da = tile_shuffle_inpaint(x, None, 4, 2, 1.0, torch.Generator().manual_seed(4))
    b, db = tile_shuffle_inpaint(x, constant(7.0), 4, 2, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, shuffle_tiles(x, da.perms, 4)) and torch.equal(da.perms, db.perms)
    m = band_mask(24, 4, 2).expand_as(x).bool()
    assert torch.equal(a[~m], b[~m])


def test_tile_shuffle_inpaint_is_deterministic_and_uses_f() -> None:
    """The same seed gives the same images and draws, another seed others; with the chapter's F (eval mode) the
    output has F's values on the bands."""
    torch.manual_seed(0)
    f = Inpainter(1, 4).eval()
    x = torch.rand(3, 1, 24, 24) * 2 - 1
    a, da = tile_shuffle_inpaint(x, f, 4, 2, 1.0, torch.Generator().manual_seed(5))
    b, db = tile_shuffle_inpaint(x, f, 4, 2, 1.0, torch.Generator().manual_seed(5))
    c, _ = tile_shuffle_inpaint(x, f, 4, 2, 1.0, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and torch.equal(da.perms, db.perms) and not torch.equal(a, c)
    m = band_mask(24, 4, 2).expand_as(x).bool()
    with torch.no_grad():
        fx = f(shuffle_tiles(x, da.perms, 4) * (1 - m.float()) + da.noise * m.float())
    assert torch.allclose(a[m], fx[m])
    assert draw_tiles(x, 4, 0.0).noise.abs().max() == 0


# ---------------------------------------------------------------- the test
def test_tiles_task_pairs_natural_and_transformed_images_on_disjoint_halves() -> None:
    params = lci_config(TINY)
    torch.manual_seed(0)
    f = Inpainter(1, 4)
    f.train()
    images = torch.rand(10, 1, 12, 12) * 2 - 1
    train, test = tiles_task(params, f, images, seed=3)
    assert f.training  # restored
    xtr, ytr = train.tensors
    xte, yte = test.tensors
    assert (len(train), len(test)) == (10, 10) and ytr.tolist() == [0] * 5 + [1] * 5 and yte.tolist() == ytr.tolist()
    assert torch.equal(xtr[:5], images[:5]) and torch.equal(xte[:5], images[5:])
    m = band_mask(12, 4, 2).expand(5, 1, 12, 12).bool()
    assert not torch.equal(xtr[5:], images[:5])
    # off the bands the transformed images are a tile permutation of their natural image: same sorted values
    # per image after undoing the band (compare against the shuffle of each image by the same draws)
    gen = torch.Generator().manual_seed(3)
    draws = draw_tiles(images, 4, params.noise_std, gen)
    assert torch.equal(xtr[5:][~m], shuffle_tiles(images[:5], draws.perms[:5], 4)[~m])
    again, _ = tiles_task(params, f, images, seed=3)
    assert torch.equal(again.tensors[0], xtr)
    with pytest.raises(ValueError, match="at least 2"):
        tiles_task(params, f, images[:3], seed=0)


def test_tiles_probe_reads_conv5_and_separates_an_easy_case() -> None:
    """A C whose conv5 sees the transformed images' bands (F outputs a constant far from the images) is told apart
    from natural ones by the probe; the accuracy is a fraction."""
    params = lci_config(TINY, probe_epochs=30)
    torch.manual_seed(0)
    cls = build_classifier(params)
    images = torch.rand(40, 1, 12, 12) * 0.2 - 0.1
    f = nn.Sequential()  # identity "inpainter": the noise z ~ N(0, 1) stays in the bands
    train, test = tiles_task(params, f, images, seed=0)
    acc = tiles_probe_accuracy(params, cls, train, test, torch.device("cpu"), seed=0)
    assert 0.0 <= acc <= 1.0 and acc > 0.8


def test_supervised_classifier_trains_through_the_engine() -> None:
    params = lci_config(TINY, tiles_supervised_epochs=2)
    data = chapter_data(params, 0)
    net, top1 = supervised_classifier(params, data.labelled_train, data.probe_test, NUM_CLASSES["smoke"],
                                      torch.device("cpu"), seed=0)
    assert net(torch.zeros(2, 1, 12, 12)).shape == (2, 10) and 0.0 <= top1 <= 1.0
    x, y = data.labelled_train[0]
    assert x.shape == (1, 16, 16) and 0 <= int(y) < 10


def test_run_tiles_test_and_its_record() -> None:
    """One replicate's test on untrained networks: three probe accuracies and the supervised top-1, aggregated
    under the smoke id with the yaml's metric names."""
    params = lci_config(TINY)
    data = chapter_data(params, 0)
    torch.manual_seed(0)
    out = run_tiles_test(params, data, build_networks(params), torch.device("cpu"), seed=0)
    nets = ("ssl", "supervised", "random")
    assert set(out) == {*nets, *[f"{n}_shuffle_only" for n in nets], "supervised_top1"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert labelled_images(data.probe_test, 7).shape == (7, 1, 12, 12)
    runs = aggregate(params, [ReplicateResult(0, tiles=out), ReplicateResult(1, tiles=out)])
    row = runs["digits12/rot+warp+lci+tiles"]
    assert row["tiles_probe_acc_ssl"]["mean"] == pytest.approx(100 * out["ssl"])
    assert row["tiles_supervised_top1"]["n"] == 2
    with pytest.raises(ValueError, match="no inpainter"):
        run_tiles_test(params, data, {"cls": nn.Identity()}, torch.device("cpu"), seed=0)


def test_tiles_verdicts_and_sentences() -> None:
    results = [ReplicateResult(s, tiles={"ssl": 0.8 + 0.01 * s, "supervised": 0.7 + 0.012 * s,
                                         "random": 0.6 + 0.005 * s, "ssl_shuffle_only": 0.9,
                                         "supervised_shuffle_only": 0.9 - 0.01 * (s % 2)}) for s in range(5)]
    vs = tiles_verdicts(results)
    assert [v.id for v in vs] == ["tiles:ssl>supervised", "tiles:ssl>random", "tiles-shuffle-only:ssl>supervised"]
    assert vs[0].holds and vs[1].holds and not vs[2].holds
    said = tiles_sentences(vs)
    assert "holds at this scale" in said[0] and "may come from recognising F's artifacts" in said[2]
    reversed_ = [ReplicateResult(r.seed, tiles={**r.tiles, "supervised": r.tiles["ssl"] + 0.1}) for r in results]
    said = tiles_sentences(tiles_verdicts(reversed_))
    assert "reversed" in said[0] and len(said) == 2  # no control sentence when the main claim fails
    assert tiles_verdicts([ReplicateResult(0)]) == []
    assert tiles_sentences(tiles_verdicts(results[:1])) == []  # one replicate: undetermined, nothing said


def test_tiles_rows_show_the_steps() -> None:
    params = lci_config(TINY)
    torch.manual_seed(0)
    x = torch.rand(3, 1, 12, 12)
    rows = tiles_rows(params, Inpainter(1, 4), x, seed=1)
    assert list(rows) == ["natural", "tiles shuffled", "bands erased", "bands inpainted by F"]
    m = band_mask(12, 4, 2).expand_as(x).bool()
    assert torch.equal(rows["bands inpainted by F"][~m], rows["tiles shuffled"][~m])
    assert torch.equal(rows["bands erased"][~m], rows["tiles shuffled"][~m])


# ---------------------------------------------------------------- parameters, configs, record ids
def test_tiles_parameters_are_checked_and_apply_where_they_can() -> None:
    assert lci_config(TINY).runs_tiles_test
    assert not lci_config(TINY, transforms=("rot",)).runs_tiles_test  # no F to inpaint the bands
    assert not lci_config(TINY, tiles_test=False).runs_tiles_test
    with pytest.raises(ConfigError, match="tiles_band 3"):
        lci_config(TINY, tiles_band=3)  # 12 px / 4 = 3 px tiles
    with pytest.raises(ConfigError, match="multiple of tiles_grid 5"):
        lci_config(TINY, tiles_grid=5)
    with pytest.raises(ConfigError):
        lci_config(TINY, tiles_colour=1)


def test_tiles_record_ids_and_configs() -> None:
    ids = {(n.experiment, n.metric): n.value for n in paper_numbers("lci")}
    assert ids[("imagenet/tiles", "tiles_probe_acc_ssl")] == 85.0
    assert ids[("imagenet/tiles", "tiles_probe_acc_supervised")] == 78.0
    smoke = lci_config(load_yaml(ROOT / "configs" / "lci" / "smoke.yaml"))
    assert smoke.runs_tiles_test and tiles_experiment_id(smoke) == "digits24/rot+warp+lci+tiles"
    assert smoke == lci_config({})  # smoke.yaml writes the defaults out
    imnet = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_imagenet_tiles.yaml"))
    assert imnet.runs_tiles_test and imnet.tiles_supervised_epochs == FIG41_SUPERVISED_EPOCHS
    assert tiles_experiment_id(imnet) == "imagenet/tiles"
    assert imnet.image_size // imnet.tiles_grid == 32 and imnet.tiles_images == 10_000
    assert tiles_experiment_id(replace(imnet, tiles_supervised_epochs=10)) == "imagenet/rot+warp+lci+tiles+sup10"
    assert tiles_experiment_id(replace(imnet, patch_size=64)) == "imagenet/rot+warp+lci+patch64+tiles"
    assert tiles_experiment_id(replace(imnet, tiles_grid=2)) == "imagenet/rot+warp+lci+tiles+grid2"
    plain = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_imagenet.yaml"))
    tiles_fields = {k: getattr(imnet, k) for k in vars(imnet) if k.startswith("tiles_")}
    assert replace(plain, **tiles_fields) == imnet  # full_imagenet.yaml's run plus the test, nothing else
    for name in ("full", "full_imagenet", "full_stl10", "full_stl10_lci", "full_stl10_resnet34", "full_celeba",
                 "full_voc07", "full_voc07_det", "full_voc12_seg"):
        assert not lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml")).runs_tiles_test
    assert math.isclose(FIG41_SUPERVISED_EPOCHS, 90)
