"""pixelcnn_aux: config, data items, models (causality with conditioning), losses, bits/dim split,
pyramid bpd, sampling, training through the engine, verdicts."""

from __future__ import annotations

import json
import math

import pytest
import torch

from thesislib.config import ConfigError
from thesislib.data.color import gray4
from thesislib.methods.pixelcnn_aux.config import PixelCNNAuxParams, engine_config, experiment_id, part_spec
from thesislib.methods.pixelcnn_aux.data import PartItems, gray_images, pyramid_images
from thesislib.methods.pixelcnn_aux.evaluate import (
    classify_digits,
    digit_classifier,
    neighbour_difference,
    part_nats,
    pyramid_bpd,
    sample_part,
    sample_pyramid,
    sampling_benchmarks,
    sampling_speed,
    two_part_bpd,
)
from thesislib.methods.pixelcnn_aux.experiments import ReplicateResult, claim_verdicts
from thesislib.methods.pixelcnn_aux.losses import image_log_prob, part_loss
from thesislib.methods.pixelcnn_aux.model import build_part, to_model_input
from thesislib.methods.pixelcnn_aux.train import part_items, train_part

TINY = dict(n_train=64, n_test=16, pyramid_train=32, pyramid_test=8, nr_filters=8, embed_width=8,
            embed_channels=4, n_mix=2, iterations=3, batch_size=8, n_seeds=1)


def tiny(**kw) -> PixelCNNAuxParams:
    return PixelCNNAuxParams(**{**TINY, **kw})


def test_params_validate_and_derive():
    p = tiny()
    assert p.pyramid_sides == [4, 8, 16] and p.pyramid_parts() == ["base", "level8", "level16"]
    assert PixelCNNAuxParams(data="celeba", experiments=("pyramid",), pyramid_size=128,
                             pyramid_levels=4).pyramid_sides == [8, 16, 32, 64, 128]
    with pytest.raises(ConfigError, match="divisible"):
        tiny(pyramid_size=10)
    with pytest.raises(ConfigError, match="CIFAR-10 only"):
        PixelCNNAuxParams(data="celeba")
    assert engine_config(p, "gray").max_steps == 3
    e = engine_config(tiny(iterations=0, epochs=200, gray_epochs=30), "gray")
    assert e.epochs == 30 and e.max_steps is None
    assert experiment_id(PixelCNNAuxParams(data="cifar10"), "grayscale") == "cifar10/grayscale-pixelcnn"
    with pytest.raises(ConfigError, match="unknown part"):
        part_spec(p, "level32")


def test_part_items_hold_the_auxiliary_images():
    p = tiny()
    split = pyramid_images(p, 0)
    item = PartItems(split.train, "level16", p.pyramid_levels)[0]
    assert item["x"].shape == (3, 16, 16) and item["aux"].shape == (3, 8, 8)
    # the aux image is the 2x2 average rounded half up
    x = item["x"].long()
    assert int(item["aux"][0, 0, 0]) == (int(x[0, :2, :2].sum()) + 2) // 4
    assert PartItems(split.train, "base", p.pyramid_levels)[0]["x"].shape == (3, 4, 4)
    g = gray_images(p, 0)
    c = PartItems(g.train, "color")[0]
    assert torch.equal(c["aux"], gray4(c["x"])) and int(c["aux"].max()) <= 15


@pytest.mark.parametrize("name", ["plain", "gray", "color", "base", "level8"])
def test_each_part_is_causal_given_its_conditioning(name):
    """d out(i, j) / d x(i', j') = 0 for every pixel (i', j') at or after (i, j) in raster order;
    the conditioning image may influence every output."""
    p = tiny(dropout=0.0)
    torch.manual_seed(0)
    model = build_part(p, name).double().eval()
    spec = model.spec
    s = spec.side
    x = torch.rand(1, spec.in_channels, s, s, dtype=torch.double, requires_grad=True)
    aux = None
    if spec.cond == "gray":
        aux = torch.rand(1, 1, s, s, dtype=torch.double, requires_grad=True)
    elif spec.cond == "coarse":
        aux = torch.rand(1, 3, s // 2, s // 2, dtype=torch.double, requires_grad=True)
    i, j = s // 2, s // 2
    out = model(x, aux)
    grad = torch.autograd.grad(out[0, :, i, j].sum(), [x] + ([aux] if aux is not None else []))
    g = grad[0][0].abs().sum(0)
    order = torch.arange(s * s).view(s, s)
    assert float(g[order >= i * s + j].sum()) == 0.0
    assert float(g[order < i * s + j].sum()) > 0.0
    if aux is not None:
        assert float(grad[1].abs().sum()) > 0.0


def test_categorical_loss_is_uniform_for_zero_logits_and_bits_add_up():
    x = torch.zeros(2, 1, 3, 3)
    lp = image_log_prob(torch.zeros(2, 16, 3, 3), x, "categorical", 1)
    assert torch.allclose(lp, torch.full((2,), -9 * math.log(16)))
    assert float(part_loss(lp, 9)) == pytest.approx(4.0)       # 4 bits per 16-level pixel
    # both parts per dim of X (3 * 3 * 3): 9 * 4 bits / 27 dims
    split = two_part_bpd(-lp.double(), torch.full((2,), 27 * 8 * math.log(2)).double(), 27)
    assert split.auxiliary == pytest.approx(36 / 27) and split.conditional == pytest.approx(8.0)
    assert split.total == pytest.approx(8 + 36 / 27)
    assert split.auxiliary_share == pytest.approx((36 / 27) / (8 + 36 / 27))


def test_pyramid_bpd_by_hand():
    ln2 = math.log(2)
    base = torch.full((2,), 3 * 4 * ln2 * 5.0)       # 5 bits/dim at 2x2
    level = torch.full((2,), 3 * 16 * ln2 * 2.0)     # 2 bits/dim at 4x4
    b = pyramid_bpd([base, level], [2, 4])
    assert b.conditional == pytest.approx([5.0, 2.0])
    assert b.bound == pytest.approx([5.0, (5 * 12 + 2 * 48) / 48])


def test_model_input_scales_and_noise_measure():
    assert to_model_input(torch.tensor([0, 255]), 3).tolist() == [-1.0, 1.0]
    assert to_model_input(torch.tensor([0, 15]), 1).tolist() == [-1.0, 1.0]
    img = torch.zeros(1, 1, 2, 3, dtype=torch.uint8)
    img[..., 1] = 10
    assert neighbour_difference(img).tolist() == [10.0]


def test_training_through_the_engine_evaluation_and_sampling():
    p = tiny()
    split = gray_images(p, 0)
    model, history = train_part(p, "color", split.train, torch.device("cpu"))
    assert history.last()["loss"] > 0
    nats = part_nats(model, part_items(p, "color", split.test), torch.device("cpu"))
    assert nats.shape == (16,) and bool((nats > 0).all())
    aux = torch.stack([part_items(p, "color", split.test)[i]["aux"] for i in range(3)])
    g1 = torch.Generator().manual_seed(0)
    g2 = torch.Generator().manual_seed(0)
    s1, s2 = sample_part(model, 3, g1, aux=aux), sample_part(model, 3, g2, aux=aux)
    assert s1.dtype == torch.uint8 and s1.shape == (3, 3, 8, 8) and torch.equal(s1, s2)
    assert sample_part(model, 3, torch.Generator().manual_seed(1), aux=aux, map=True).shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="conditioning"):
        sample_part(model, 3, g1)


def test_pyramid_sampling_progression_shapes():
    p = tiny()
    models = [build_part(p, n) for n in p.pyramid_parts()]
    levels = sample_pyramid(models, 2, torch.Generator().manual_seed(0))
    assert [lv.shape[-1] for lv in levels] == [4, 8, 16]


def test_sampling_speed_rows_for_the_three_exact_samplers():
    p = tiny()
    models = [build_part(p, n) for n in p.pyramid_parts()]
    base = models[0]                                          # 4x4, one block per stream
    rows = {s: sampling_speed("single", [base], 2, s) for s in ("naive", "crop", "cached")}
    assert [r.sampler for r in rows.values()] == ["naive", "crop (exact)", "cached (exact)"]
    assert rows["naive"].forward_equivalents == 16 and rows["cached"].forward_equivalents == 1
    up, left, right = base.pixelcnn.receptive_field()         # crops cover the 4x4 image: sum of clipped areas
    area = sum((min(i, up) + 1) * (min(j, left) + min(3 - j, right) + 1) for i in range(4) for j in range(4))
    assert rows["crop"].forward_equivalents == area / 16
    assert all(r.pixelcnn_calls == 16 and r.seconds > 0 for r in rows.values())
    extrapolated = sampling_speed("single", [base], 2, "naive", naive_rows=1)   # timed on 1 row of 4
    assert extrapolated.seconds > 0 and extrapolated.forward_equivalents == 16
    pyramid = sampling_speed("pyramid", models, 2)
    assert pyramid.sampler == "cached (exact)" and pyramid.forward_equivalents == 3 and pyramid.embed_calls == 2
    with pytest.raises(ValueError, match="single-scale"):
        sampling_speed("pyramid", models, 2, "naive")
    with pytest.raises(ValueError, match="unknown sampler"):
        sampling_speed("single", [base], 2, "fast")


def test_sampling_benchmark_records_are_read(tmp_path):
    (tmp_path / "pixelcnn").mkdir()
    rows = [dict(updown=False, batch=1, naive_samples_per_s=0.5, crop_samples_per_s=1.0, cached_samples_per_s=10.0,
                 crop_ratio=2.0, cached_ratio=20.0, crop_identical=True, cached_identical=True),
            dict(updown=True, batch=16, naive_samples_per_s=0.25, crop_samples_per_s=None, cached_samples_per_s=5.0,
                 crop_ratio=None, cached_ratio=20.0, crop_identical=None, cached_identical=False)]
    (tmp_path / "pixelcnn" / "sampling_cpu.json").write_text(json.dumps(
        {"rows": rows, "provenance": {"hardware": "CPU x", "config": {"size": 32}}}))
    (rec,) = sampling_benchmarks(tmp_path)
    assert rec["file"] == "sampling_cpu.json" and rec["hardware"] == "CPU x" and rec["config"]["size"] == 32
    assert rec["rows"][0] == ("updown=False", 1, "0.5000", "1.0000", "10.0000", "2.0", "20.0", "yes")
    assert rec["rows"][1][3] == "n/a" and rec["rows"][1][-1] == "no"
    assert sampling_benchmarks(tmp_path / "empty") == []


def test_digit_classifier_recognises_real_digits():
    p = tiny(n_train=1000, n_test=200)
    split = gray_images(p, 0)
    clf = digit_classifier(gray4(split.train), split.train_labels)
    probs = classify_digits(clf, split.test)
    assert probs.shape == (200,) and probs.mean() > 0.5
    assert (clf.predict(gray4(split.test).flatten(1).double().numpy() / 15) == split.test_labels.numpy()).mean() > 0.7


def test_claim_verdicts_hand_case():
    p = tiny(n_seeds=5)
    results = []
    for k in range(5):
        r = ReplicateResult(seed=k)
        r.gray = {"gray_share": 0.1 + 0.01 * k, "bound": 3.0 + 0.01 * k, "plain": 2.9}
        r.recognisable = {"two_stage": 0.8, "plain": 0.5 + 0.01 * k}
        r.noise = {"map": 5.0, "vr0": 10.0 + k}
        r.pyramid = pyramid_bpd([torch.full((1,), 48 * 5.0 * math.log(2) + k)] * 3, [4, 8, 16])
        results.append(r)
    vs = {v.id: v for v in claim_verdicts(p, results)}
    assert vs["gray-share<0.25"].holds and vs["bound>plain"].holds
    assert vs["recognisable:two-stage>plain"].holds and vs["map<vr0:noise"].holds
    assert vs["pyramid-term-falls:8"].holds and vs["pyramid-bound-falls:16"].holds
