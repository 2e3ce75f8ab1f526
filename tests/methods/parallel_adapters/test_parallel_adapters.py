"""Parallel adapters chapter: parameters, the joint network, compression at full rank, fine-tuning of
the factors, a replicate with its verdicts, and the torchrun entry point with this chapter's params."""

from __future__ import annotations

import json

import pytest
import torch

from thesislib.config import ConfigError, to_dict
from thesislib.methods.parallel_adapters import experiments as E
from thesislib.methods.parallel_adapters.config import parallel_config
from thesislib.methods.parallel_adapters.data import fraction_of, load_domains
from thesislib.methods.parallel_adapters.model import joint_network
from thesislib.methods.parallel_adapters.train import compress, finetune_compressed, main
from thesislib.methods.residual_adapters.evaluate import domain_accuracy
from thesislib.methods.residual_adapters.train import load_runs, pretrained_networks, train_target
from thesislib.replication import paper_numbers

CPU = torch.device("cpu")
TINY = dict(n_source=60, n_test=20, shots=3, width=0.125, pre_steps=4, pre_batch_size=16, target_steps=3,
            batch_size=8, targets=("digits", "faces"), fraction_domain="digits", svd_steps=2, progress="none",
            n_seeds=2, placements=("early", "late"), svd_sweep=(0.5, 1.0), fractions=(0.5,))


@pytest.fixture
def params(tmp_path):
    return parallel_config(TINY, pretrain_dir=str(tmp_path / "ckpt"))


def test_params_validate():
    with pytest.raises(ConfigError, match="placement"):
        parallel_config(placements=("everywhere",))
    with pytest.raises(ConfigError, match="parallel"):
        parallel_config(methods=("finetune",), fraction_methods=("finetune",))
    with pytest.raises(ConfigError, match="fraction_domain"):
        parallel_config(fraction_domain="glyphs")


DECATHLON = dict(data="decathlon", source="imagenet12", targets=("aircraft", "cifar100", "daimlerpedcls", "dtd",
                 "gtsrb", "vgg-flowers", "omniglot", "svhn", "ucf101"), fraction_domain="aircraft", image_size=64)


def test_thesis_ch3_e_max_reproduces_every_s_of_the_chapter_4_table():
    """Review R2 #1: with E^max = 2 x chapter 3's Finetune errors, the thesis's chapter-4 rows score
    their printed S within 3 points (Finetuning 3096, Parallel 3412, SVD 3398, chapter 3's 2643), ImageNet included."""
    p = parallel_config(DECATHLON)
    assert p.e_max_source() == "ch3" and E.score_key(p) == "S"
    e_max = E.thesis_ch3_e_max(p)
    assert e_max["imagenet12"] == pytest.approx(2 * (1 - 0.5987))
    printed = {}
    for n in paper_numbers("parallel_adapters"):
        printed.setdefault(n.experiment, {})[n.metric] = n.value
    for exp, v in printed.items():
        row = exp.split("/")[1]
        fake = E.Ch4Result(0, {row: {d: v[d] / 100 for d in e_max}}, {}, {}, {})
        assert E.scores(p, fake)[row] == pytest.approx(v["S"], abs=3.0), exp  # accuracies printed to 0.01


def test_e_max_choice():
    assert parallel_config().e_max_source() == "run" and E.score_key(parallel_config()) == "S_run"
    assert parallel_config(DECATHLON, e_max="run").e_max_source() == "run"
    with pytest.raises(ConfigError, match="e_max 'ch3' needs data 'decathlon'"):
        parallel_config(e_max="ch3")
    with pytest.raises(ConfigError, match="e_max"):
        parallel_config(e_max="thesis")


def test_joint_network_and_full_rank_compression_reproduce_the_runs(params):
    pretrained = pretrained_networks(params, CPU)
    domains = load_domains(params, 0)
    runs = [train_target(params, "parallel", domains[t], pretrained, CPU, 0) for t in params.targets]
    with torch.no_grad():  # give the adapters something to compress
        for r in runs:
            for conv in r.net.domain_convs():
                conv.adapters[r.domain].weight.normal_(0, 0.1)
    joint = joint_network(pretrained["plain"], runs)
    x = domains["digits"].test.tensors[0][:4]
    joint.eval()
    for k, r in enumerate(runs):
        r.net.eval()
        torch.testing.assert_close(joint(x, k + 1), r.net(x, r.domain))
    full, spectra = compress(pretrained["plain"], runs, 1.0)
    full.eval()
    for k, r in enumerate(runs):
        torch.testing.assert_close(full(x, k + 1), r.net(x, r.domain), rtol=1e-4, atol=1e-4)
    assert spectra and all(s.ndim == 1 for s in spectra.values())
    half, _ = compress(pretrained["plain"], runs, 0.5)
    tuned = finetune_compressed(params, half, [domains[t] for t in params.targets], CPU, 0)
    basis = half.stages[2][0].conv1.basis.weight
    for t in tuned:
        torch.testing.assert_close(t.net.stages[2][0].conv1.basis.weight, basis)  # the shared factor is frozen
        assert 0.0 <= domain_accuracy(t.net, t.domain, domains[t.target].test, CPU) <= 1.0


def test_joint_network_refuses_runs_of_another_pretraining(params):
    """Review R2 #3: adapters trained on another network's 3x3 filters cannot be joined."""
    pretrained = pretrained_networks(params, CPU)
    domains = load_domains(params, 0)
    run = train_target(params, "parallel", domains["faces"], pretrained, CPU, 0)
    joint_network(pretrained["plain"], [run])  # same filters: fine
    with torch.no_grad():
        run.net.stages[0][0].conv1.conv.weight.add_(0.01)
    with pytest.raises(ValueError, match="3x3 filters"):
        joint_network(pretrained["plain"], [run])


def test_fraction_keeps_every_class(params):
    dom = load_domains(params, 0)["digits"]
    part = fraction_of(dom, 0.34, 0)
    labels = torch.stack([part.train[i][1] for i in range(len(part.train))])
    assert len(part.train) == 10 and set(labels.tolist()) == set(range(10))


def test_replicate_and_verdicts(params):
    pretrained = pretrained_networks(params, CPU)
    results = [E.run_replicate(params, s, pretrained, CPU) for s in params.seeds]
    rows = set(results[0].acc)
    assert rows == {"finetune", "series_posthoc", "parallel", "parallel-early", "parallel-late", "parallel-svd",
                    "parallel-more"}
    # every row carries the plain network's source accuracy (the thesis's ImNet column)
    assert len({results[0].acc[row]["glyphs"] for row in rows}) == 1
    assert set(results[0].sweep) == {0.5, 1.0} and set(results[0].curve["parallel"]) == {0.5, 1.0}
    assert results[0].trainable["parallel-svd"] < results[0].trainable["parallel"]
    s = E.scores(params, results[0])
    domains = ("glyphs", *params.targets)
    assert s["finetune"] == pytest.approx(250.0 * sum(results[0].acc["finetune"][d] < 1 for d in domains))
    # S over the domains fine-tuning errs on in every replicate (chapter 3's scored_domains)
    keep = [d for d in domains if all(r.acc["finetune"][d] < 1 for r in results)]
    assert [x["finetune"] for x in E.all_scores(params, results)] == pytest.approx([250.0 * len(keep)] * len(results))
    verdicts = {v.id: v for v in E.claim_verdicts(params, results)}
    assert {"parallel>series-posthoc", "parallel>finetune", "late>early", "svd>=parallel",
            "small-data"} <= set(verdicts)
    assert verdicts["svd>=parallel"].expected == "not lower"
    assert "all>mid" not in verdicts  # not run
    table, headers = E.table_rows(params, results)
    assert headers[-1] == "trainable / target" and headers[-2] == "S_run" and len(table) == len(rows)
    agg = E.aggregate(params, results)
    par = agg["mini16/parallel"]
    assert "S" not in par and "S_run" in par  # the per-run E^max is not the thesis's S
    mean_all = [100 * (r.acc["parallel"]["glyphs"] + sum(r.acc["parallel"][t] for t in params.targets)) / 3
                for r in results]
    assert par["mean"]["mean"] == pytest.approx(sum(mean_all) / len(mean_all))
    assert par["mean_targets"]["mean"] == pytest.approx(100 * sum(E.mean_acc(params, r, "parallel")
                                                                   for r in results) / len(results))
    assert "mini16/parallel-svd" in agg and "mini16/parallel-more" in agg


def test_torchrun_entry_point_takes_this_chapters_params(tmp_path, torchrun_gloo):
    params = parallel_config(TINY, pretrain_dir=str(tmp_path / "ckpt"), targets=("faces",), fraction_domain="",
                             methods=("parallel", "series_posthoc"), fraction_methods=())
    path = tmp_path / "p.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    runs = load_runs(params, tmp_path / "out")
    assert set(runs) == {("parallel", "faces"), ("series_posthoc", "faces")}
    assert runs["parallel", "faces"].net.adapter == "parallel"
