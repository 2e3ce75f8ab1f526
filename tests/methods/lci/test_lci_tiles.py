"""Fig. 4.1's transformation (4x4 tile shuffle, tile borders inpainted by F) and the conv5 probe test built on it:
hand-computed permutations and bands, the bijection of tiles, content kept off the bands, the identity excluded,
determinism, the test's data and its verdicts, the parameters and the record ids."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.methods.lci import band, evaluate
from thesislib.methods.lci.band import train_band_inpainter
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.data import NUM_CLASSES, chapter_data
from thesislib.methods.lci.evaluate import (
    labelled_images,
    supervised_classifier,
    tiles_probe_accuracy,
    tiles_task,
)
from thesislib.methods.lci.experiments import (
    CHAPTER_F,
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
    tile_shuffle_steps,
)
from thesislib.methods.lci.train import build_networks
from thesislib.replication import paper_numbers
from thesislib.repro import seed_everything

ROOT = Path(__file__).resolve().parents[3]
TINY = dict(load_size=16, image_size=12, patch_size=8, border=2, classifier_width=0.03, fc_dim=256,
            conv1_kernel=3, conv1_stride=2, inpainter_width=4, iterations=2, batch_size=4, n_unlabelled=16,
            probe_per_class=1, probe_epochs=1, diag_iterations=2, diag_train=16, diag_test=16, diag_width=2,
            face_size=16, progress="none", n_seeds=1, tiles_images=16, tiles_supervised_epochs=1,
            tiles_supervised_batch_size=64, tiles_test=True, tiles_inpainter_iterations=2)


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
    """One replicate's test on untrained networks: three probe accuracies with F_b's bands, three with the chapter's
    F's, and the supervised top-1; the F_b ones aggregate under the smoke id, the chapter-F ones under
    ``+chapterF``, all with metric names the yaml declares (review #6)."""
    params = lci_config(TINY)
    data = chapter_data(params, 0)
    torch.manual_seed(0)
    band = Inpainter(1, 4)
    out = run_tiles_test(params, data, build_networks(params), torch.device("cpu"), seed=0, band=band)
    nets = ("ssl", "supervised", "random")
    assert set(out) == {*nets, *[f"{n}{CHAPTER_F}" for n in nets], "supervised_top1"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert labelled_images(data.probe_test, 7).shape == (7, 1, 12, 12)
    runs = aggregate(params, [ReplicateResult(0, tiles=out), ReplicateResult(1, tiles=out)])
    row = runs["digits12/rot+warp+lci+tiles"]
    assert row["tiles_probe_acc_ssl"]["mean"] == pytest.approx(100 * out["ssl"])
    assert row["tiles_supervised_top1"]["n"] == 2
    chapter = runs["digits12/rot+warp+lci+tiles+chapterF"]
    assert chapter["tiles_probe_acc_ssl"]["mean"] == pytest.approx(100 * out["ssl" + CHAPTER_F])
    declared = set(load_yaml(ROOT / "thesislib" / "replication" / "lci.yaml")["metrics"])
    assert set(row) | set(chapter) <= declared
    no_f = run_tiles_test(replace(params, transforms=("rot",)), data, {"cls": build_classifier(params)},
                          torch.device("cpu"), seed=0, band=band)
    assert set(no_f) == {*nets, "supervised_top1"}  # no chapter F: the main test only


def test_tiles_probe_reads_the_last_conv_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe reads conv5 (layer4 for the ResNet-34), one view (review #8)."""
    seen = []

    def spy(params, net, train, test, device, seed, **kw):
        seen.append((params.probe_layers, params.probe_views))
        return {layer: 0.5 for layer in params.probe_layers}

    monkeypatch.setattr(evaluate, "probe_accuracies", spy)
    train = test = TensorDataset(torch.zeros(2, 1, 12, 12), torch.zeros(2, dtype=torch.long))
    for classifier, layer in (("alexnet", "conv5"), ("resnet34", "layer4")):
        params = lci_config(TINY, classifier=classifier, probe_layers=(layer,) if classifier != "alexnet" else
                            ("conv1", "conv5"))
        assert tiles_probe_accuracy(params, nn.Identity(), train, test, torch.device("cpu"), 0) == 0.5
        assert seen[-1] == ((layer,), 1)


def _results(sup_shift: float = 0.0, rand: float = 0.6, chapter_gap: float = 0.05) -> list[ReplicateResult]:
    return [ReplicateResult(s, tiles={"ssl": 0.8 + 0.01 * s, "supervised": 0.7 + 0.012 * s + sup_shift,
                                      "random": rand + 0.005 * s, "supervised_top1": 0.88,
                                      "ssl" + CHAPTER_F: 0.9 + 0.003 * s,
                                      "supervised" + CHAPTER_F: 0.9 - chapter_gap + 0.01 * (s % 2)})
            for s in range(5)]


def test_tiles_verdicts_and_sentences() -> None:
    """The generated prose: qualified by the base seed and the supervised C's top-1 (#3, #4), the gain over a random
    C as a number (#2), a ceiling line only near the ceiling, and both branches of the chapter-F line (#8)."""
    results = _results()
    vs = tiles_verdicts(results)
    assert [v.id for v in vs] == ["tiles:ssl>supervised", "tiles:ssl>random", "tiles-chapterF:ssl>supervised"]
    assert all(v.holds for v in vs)
    said = tiles_sentences(vs, results)
    assert said[0].startswith("At this base seed") and "top-1 88 %" in said[0] and "seed table" in said[0]
    assert "already reaches 61.0 %" in said[1] and "adds 21.0 points" in said[1]
    assert len(said) == 3 and "chapter's F" in said[2] and "is higher there" in said[2]  # no ceiling line
    near = _results(rand=0.93, chapter_gap=0.0)
    said = tiles_sentences(tiles_verdicts(near), near)
    assert "not shown higher" in said[1] and "near its ceiling" in said[2] and "random C reaches 94.0 %" in said[2]
    assert "not shown higher there" in said[3]
    reversed_ = _results(sup_shift=0.2)
    said = tiles_sentences(tiles_verdicts(reversed_), reversed_)
    assert "reversed" in said[0]
    assert tiles_verdicts([ReplicateResult(0)]) == []
    assert tiles_sentences(tiles_verdicts(results[:1]), results[:1]) == []  # one replicate: undetermined
    main_only = [ReplicateResult(r.seed, tiles={k: v for k, v in r.tiles.items() if not k.endswith(CHAPTER_F)})
                 for r in results]
    assert len(tiles_verdicts(main_only)) == 2 and len(tiles_sentences(tiles_verdicts(main_only), main_only)) == 2


# ---------------------------------------------------------------- the band inpainter F_b
def test_band_inpainter_trains_through_the_engine_without_c() -> None:
    """F_b and D_b both move in the engine's multi-optimiser step; F_b comes back frozen in eval mode."""
    params = lci_config(TINY, tiles_inpainter_iterations=3)
    images = chapter_data(params, 0).unlabelled
    f, history = train_band_inpainter(params, images, torch.device("cpu"))
    seed_everything(params.seed)
    fresh = Inpainter(1, params.inpainter_width)  # F_b's initial weights
    assert not f.training and not any(p.requires_grad for p in f.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(f.state_dict().values(), fresh.state_dict().values()))
    for key in ("d_real", "d_fake", "f_gan", "f_border"):
        assert len(history.get(key)) > 0
    assert "f_neg_ssl" not in str(history.state_dict())  # no C in F_b's loss


def test_band_inpainter_is_trained_once_per_run_and_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One training per (parameters, base seed) in a process; a resumed run (fresh process) reads it from the run
    directory; another band width or base seed is another F_b (review #1: once per run, not per replicate)."""
    calls = []
    real = band.train_band_inpainter

    def counting(params, images, device):
        calls.append(params.seed)
        return real(params, images, device)

    monkeypatch.setattr(band, "train_band_inpainter", counting)
    monkeypatch.setattr(band, "_CACHE", {})
    params = lci_config(TINY, output_dir=str(tmp_path))
    cpu = torch.device("cpu")
    first = band.band_inpainter(params, cpu)
    assert band.band_inpainter(replace(params, n_seeds=5, probe_epochs=3), cpu) is first  # the other replicates
    assert calls == [params.seed + band.BAND_SEED_OFFSET]
    stored = tmp_path / "band_inpainter" / f"{band.band_cache_key(params)}.pt"
    assert stored.is_file()
    monkeypatch.setattr(band, "_CACHE", {})  # a resumed run: a new process
    again = band.band_inpainter(params, cpu)
    assert len(calls) == 1 and all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                                      first.state_dict().values()))
    assert band.band_cache_key(replace(params, seed=1)) != band.band_cache_key(params)
    assert band.band_cache_key(replace(params, tiles_band=1)) != band.band_cache_key(params)
    assert band.band_cache_key(replace(params, probe_epochs=7)) == band.band_cache_key(params)


def test_tiles_rows_show_the_steps() -> None:
    params = lci_config(TINY)
    torch.manual_seed(0)
    x = torch.rand(3, 1, 12, 12)
    rows = tiles_rows(params, Inpainter(1, 4), x, seed=1)
    assert list(rows) == ["natural", "tiles shuffled", "bands erased", "bands inpainted"]
    m = band_mask(12, 4, 2).expand_as(x).bool()
    assert torch.equal(rows["bands inpainted"][~m], rows["tiles shuffled"][~m])
    f = constant(3.0)  # the steps are those of the transformation itself (same draws, same output)
    gen_a, gen_b = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    steps, _ = tile_shuffle_steps(x, f, 4, 2, 1.0, gen_a)
    assert torch.equal(steps["bands inpainted"], tile_shuffle_inpaint(x, f, 4, 2, 1.0, gen_b)[0])
    assert torch.equal(rows["bands erased"][~m], rows["tiles shuffled"][~m])


# ---------------------------------------------------------------- parameters, configs, record ids
def test_tiles_parameters_are_checked_and_apply_where_they_can() -> None:
    assert lci_config(TINY).runs_tiles_test
    assert lci_config(TINY, transforms=("rot",)).runs_tiles_test  # the bands are F_b's: C needs no LCI
    assert not lci_config(TINY, tiles_test=False).runs_tiles_test
    assert not lci_config(TINY, data="celeba").runs_tiles_test  # no class labels for the supervised C
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
                 "full_voc07", "full_voc07_det", "full_voc12_seg", "full_places"):
        assert not lci_config(load_yaml(ROOT / "configs" / "lci" / f"{name}.yaml")).runs_tiles_test
    assert math.isclose(FIG41_SUPERVISED_EPOCHS, 90)
