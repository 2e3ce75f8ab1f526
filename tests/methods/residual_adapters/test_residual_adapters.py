"""Residual adapters chapter: parameters, pre-training cache, each method's trainable part, forgetting,
the decathlon score of a replicate, verdicts, and the decathlon on-disk path."""

from __future__ import annotations

import math

import pytest
import torch

from thesislib.config import ConfigError, replace
from thesislib.data.decathlon_fixtures import write_decathlon_fixture
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.methods.residual_adapters import experiments as E
from thesislib.methods.residual_adapters.config import (
    adapters_config,
    experiment_id,
    step_schedule,
    target_steps,
)
from thesislib.methods.residual_adapters.data import load_domains
from thesislib.methods.residual_adapters.model import build_network
from thesislib.methods.residual_adapters.train import (
    checkpoint_path,
    needed_pretrainings,
    pretrained_network,
    pretrained_networks,
    train_target,
)

CPU = torch.device("cpu")
TINY = dict(n_source=60, n_test=20, shots=3, width=0.125, pre_steps=4, pre_batch_size=16, target_steps=3,
            batch_size=8, targets=("digits", "faces"), tiny_domain="faces", progress="none", n_seeds=2)


@pytest.fixture
def params(tmp_path):
    return adapters_config(TINY, pretrain_dir=str(tmp_path / "ckpt"))


def test_params_validate():
    with pytest.raises(ConfigError, match="unknown mini domain"):
        adapters_config(targets=("digits", "mnist"))
    with pytest.raises(ConfigError, match="unknown mini domain"):   # a source domain is not a few-shot target
        adapters_config(targets=("photos", "digits"))
    with pytest.raises(ConfigError, match="unknown mini domain"):
        adapters_config(source="digits")
    with pytest.raises(ConfigError, match="also a target"):
        adapters_config(data="decathlon", source="svhn", targets=("svhn", "dtd"))
    assert adapters_config().source == "glyphs" and adapters_config(source="photos").source == "photos"
    with pytest.raises(ConfigError, match="unknown method"):
        adapters_config(methods=("series", "lwf"))
    with pytest.raises(ConfigError, match="nosuch"):
        adapters_config(nosuch=1)
    assert experiment_id(adapters_config(), "series") == "mini16/series"
    full = adapters_config(data="decathlon", source="imagenet12", targets=("dtd",), tiny_domain="dtd",
                           image_size=64, width=1.0, blocks=(4, 4, 4))
    assert experiment_id(full, "series") == "decathlon/series"
    assert step_schedule(120).milestones == (80, 100)
    assert target_steps(adapters_config(target_epochs=120, batch_size=128), 1000) == 120 * 7


def test_pretraining_is_cached_and_keyed_by_its_parameters(params):
    net, loaded = pretrained_network(params, "series", CPU)
    assert not loaded and checkpoint_path(params, "series").is_file()
    again, loaded = pretrained_network(params, "series", CPU)
    assert loaded
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert checkpoint_path(adapters_config(TINY, pretrain_dir=params.pretrain_dir, pre_steps=5), "series") != \
        checkpoint_path(params, "series")
    assert needed_pretrainings(("scratch",)) == [] and needed_pretrainings(("bn", "series")) == ["none", "series"]


def test_cache_key_covers_flip_and_source_version_and_checks_the_head(params, monkeypatch, capsys):
    """Review R2 #6: flip and the source data's version are in the hash; a cached network whose
    classifier does not match the source's class count is re-created, not loaded."""
    from thesislib.methods.residual_adapters import train as T

    assert checkpoint_path(replace(params, flip=True), "none") != checkpoint_path(params, "none")
    before = checkpoint_path(params, "none")
    monkeypatch.setattr(T, "SOURCE_VERSION", T.SOURCE_VERSION + 1)
    assert checkpoint_path(params, "none") != before
    monkeypatch.undo()
    wrong = build_network(params, 7)  # the glyph source has 100 classes
    path = checkpoint_path(params, "none")
    path.parent.mkdir(parents=True)
    torch.save(wrong.state_dict(), path)
    net, loaded = pretrained_network(params, "none", CPU)
    assert not loaded and net.num_classes == [100]
    assert "classifier has 7 classes" in capsys.readouterr().err


def test_methods_train_only_their_part_and_adapters_never_forget(params):
    pretrained = pretrained_networks(params, CPU)
    domains = load_domains(params, 0)
    x = domains[params.source].test.tensors[0][:8]
    for method, changes_shared in (("series", False), ("bn", False), ("feature", False), ("finetune", True)):
        start = pretrained["series" if method in ("series", "feature") else "plain"]
        start.eval()
        before = start(x, 0).detach()
        conv_before = start.stem.conv.weight.detach().clone()
        run = train_target(params, method, domains["digits"], pretrained, CPU, seed=0)
        run.net.eval()
        assert run.domain == 1 and run.net.num_classes == [domains[params.source].num_classes, 10] == [100, 10]
        same = torch.allclose(run.net(x, 0), before)
        assert same != changes_shared, method
        assert torch.equal(run.net.stem.conv.weight, conv_before) != changes_shared, method
        torch.testing.assert_close(start.stem.conv.weight, conv_before)  # the pre-trained network is untouched
    counts = {m: train_target(params, m, domains["faces"], pretrained, CPU, 0).trainable
              for m in ("feature", "bn", "series", "finetune")}
    assert counts["feature"] < counts["bn"] < counts["series"] < counts["finetune"]


def test_replicate_scores_and_verdicts(params):
    pretrained = pretrained_networks(params, CPU)
    results = [E.run_replicate(params, s, pretrained, CPU) for s in params.seeds]
    r = results[0]
    assert set(r.acc) == set(params.methods) and set(r.decay) == {"low", "high"}
    assert math.isnan(r.source_after["scratch"]["digits"])
    assert r.source_after["series"]["digits"] == r.acc["series"][params.source]  # adapters keep the source
    s = E.scores(params, r)
    keep = E.scored_domains(params, [r])
    assert s["finetune"] == pytest.approx(250.0 * len(keep))
    verdicts = E.claim_verdicts(params, results)
    assert {v.id for v in verdicts} == {c[0] for c in E.CLAIMS} | {"decay-tiny"}
    assert all(v.n == 2 for v in verdicts)
    agg = E.aggregate(params, results)
    assert agg["mini16/series"]["S"]["n"] == 2 and "digits" in agg["mini16/finetune"]
    rows, headers = E.table_rows(params, results)
    assert headers[:3] == ["method", "glyphs", "digits"] and len(rows) == len(params.methods)
    sentence = E.verdict_sentence(verdicts[0])  # bn>feature: a "higher" claim
    assert verdicts[0].claim in sentence and ("**holds**" in sentence) == verdicts[0].holds


def test_hand_computed_score_of_a_replicate(params):
    acc = {"finetune": {"glyphs": 0.9, "digits": 0.8, "faces": 0.5},
           "series": {"glyphs": 0.95, "digits": 0.8, "faces": 1.0}}
    r = E.ReplicateResult(0, acc, {}, {})
    s = E.scores(params, r)
    # photos: E^max 0.2, error 0.05 -> 1000 * (0.15 / 0.2)^2 = 562.5; digits 250; faces: error 0 -> 1000
    assert s["finetune"] == pytest.approx(750.0)
    assert s["series"] == pytest.approx(562.5 + 250.0 + 1000.0)
    # the thesis's "mean" is over every domain, the source included (Table 1: Finetune 76.51 with ImNet)
    assert E.mean_accuracy(params, r, "series") == pytest.approx((0.95 + 0.8 + 1.0) / 3)
    assert E.mean_target_accuracy(params, r, "series") == pytest.approx(0.9)
    agg = E.aggregate(params, [r])["mini16/series"]
    assert agg["mean"] == pytest.approx(100 * 2.75 / 3) and agg["mean_targets"] == pytest.approx(90.0)
    rows, headers = E.table_rows(params, [r])
    assert headers[-3:] == ["mean", "mean (targets)", "S"]
    assert rows[1][-3] == pytest.approx(100 * 2.75 / 3) and rows[1][-2] == pytest.approx(90.0)
    # a fixed E^max (chapter 4's) scores every listed domain, fine-tuning's errors aside
    fixed = E.scores(params, r, e_max={"glyphs": 0.2, "digits": 0.4, "faces": 1.0})
    assert fixed["finetune"] == pytest.approx(1000 * (0.1 / 0.2) ** 2 + 250.0 + 1000 * 0.5 ** 2)
    # a match claim that holds is worded "not shown different", not as reproduced equivalence
    from thesislib.replication.verdicts import paired_verdict
    flat = paired_verdict("series~finetune", "c", [1.0, 2.0], [2.0, 1.0], expected="no clear difference")
    assert "not shown different" in E.verdict_sentence(flat) and "holds" not in E.verdict_sentence(flat)


def test_decathlon_on_disk(tmp_path):
    write_decathlon_fixture(tmp_path, {"imagenet12": 3, "dtd": 3, "gtsrb": 2}, n_train=4, n_val=2, n_test=1)
    params = adapters_config(data="decathlon", data_root=str(tmp_path), source="imagenet12", targets=("dtd", "gtsrb"),
                             tiny_domain="dtd", image_size=64, width=0.125, pre_steps=2, pre_batch_size=6,
                             target_steps=2, batch_size=4, methods=("bn", "series"), progress="none",
                             pretrain_dir=str(tmp_path / "ckpt"))
    domains = load_domains(params)
    assert domains["dtd"].train[0][0].shape == (3, 64, 64) and domains["gtsrb"].train[0][0].shape == (3, 72, 72)
    pretrained = pretrained_networks(params, CPU)
    result = E.run_replicate(params, 0, pretrained, CPU)
    assert set(result.acc["series"]) == {"imagenet12", "dtd", "gtsrb"}
    write_imagenet_fixture(tmp_path, n_classes=2, n_train=3, n_val=2)
    folders = adapters_config(data="decathlon", data_root=str(tmp_path), source="imagenet", targets=("dtd",),
                              tiny_domain="dtd", image_size=64, width=0.125, pre_steps=2, pre_batch_size=4,
                              methods=("series",), progress="none", pretrain_dir=str(tmp_path / "ckpt2"))
    source = load_domains(folders)["imagenet"]
    assert source.num_classes == 2 and source.train[0][0].shape == (3, 64, 64) and source.test[0][1] in (0, 1)
    net = pretrained_networks(folders, CPU)["series"]
    assert net.num_classes == [2]
    missing = adapters_config(data="decathlon", data_root=str(tmp_path / "none"), source="imagenet12",
                              targets=("dtd",), tiny_domain="dtd")
    with pytest.raises(DatasetNotFoundError, match="decathlon"):
        load_domains(missing)
