"""AutoNovel with C^u unknown (App. E, Table 6): the num_novel switch, record keys, head sizes, rectangular I.L."""

from __future__ import annotations

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.eval.class_number import ClassNumberEstimate
from thesislib.methods.autonovel import experiments as E
from thesislib.methods.autonovel.config import autonovel_config, experiment_id
from thesislib.methods.autonovel.evaluate import incremental_accuracies
from thesislib.methods.autonovel.model import HEAD1, HEAD2
from thesislib.paths import project_root
from thesislib.replication import paper_numbers

CPU = torch.device("cpu")
TINY = dict(mlp_widths=(32, 32, 16), rotnet_epochs=1, rotnet_milestones=(1,), sup_epochs=1, epochs=1,
            lr_milestones=(1,), rampup_epochs=1, batch_size=64, n_seeds=1, progress="none", kmeans=True,
            estimate_candidates=6, estimate_n_init=2)


def fake_estimate(k: int) -> ClassNumberEstimate:
    return ClassNumberEstimate(k, (0, 1), (1.0, 0.5), (0.2, 0.1), 0, 0, 0, (10,) * k, (0, 1), (2,))


def test_table6_ids_are_the_record_keys_of_an_estimated_run():
    ids = {p.experiment for p in paper_numbers("autonovel") if p.source == "Table 6"}
    p = autonovel_config(load_yaml(project_root() / "configs" / "autonovel" / "full_omniglot_estimated_k.yaml"))
    assert p.num_novel == "estimate" and experiment_id(p, "full", estimated=True) == "omniglot/full-estimated-k" in ids
    assert experiment_id(p, "full") == "omniglot/full"       # the suffix comes from the run, not from num_novel
    assert (p.estimate_candidates, p.estimate_anchor_fraction, p.estimate_min_size) == (100, 0.7, 0.01)   # DTC


@pytest.mark.parametrize("scale", ["full", "full_cifar100", "full_svhn", "full_omniglot", "full_imagenet"])
def test_thesis_configs_keep_cu_known(scale):
    assert autonovel_config(load_yaml(project_root() / "configs" / "autonovel" / f"{scale}.yaml")).num_novel == "known"


def test_estimated_config_sets_cu_only_when_estimating():
    p = autonovel_config({"num_novel": "estimate"})
    assert p.num_new == 5 and E.estimated_config(p, fake_estimate(7)).num_new == 7
    assert E.estimated_config(replace(p, num_novel="report"), fake_estimate(7)).num_new == 5
    with pytest.raises(ConfigError, match="estimate_labelled_classes 1"):
        autonovel_config({"num_novel": "estimate", "estimate_labelled_classes": 1})
    with pytest.raises(ConfigError):
        autonovel_config({"num_novel": "guess"})


def test_estimate_is_rejected_and_report_skipped_where_no_estimation_step(monkeypatch):
    # a data path without the step (every path has one now; the guard is for a future path), here digits taken
    # out of ESTIMATED_DATA: estimate is a config error, report trains and records nothing about C^u
    from thesislib.methods.autonovel import config as C

    monkeypatch.setattr(C, "ESTIMATED_DATA", frozenset({"omniglot"}))
    with pytest.raises(ConfigError, match="num_novel estimate is not wired for data 'digits'"):
        autonovel_config({"num_novel": "estimate"})
    p = autonovel_config({**TINY, "num_novel": "report", "variants": ["full"], "kmeans": False})
    r = E.run_replicate(p, 0, CPU)
    assert r.estimates == {} and not r.used_estimate and set(E.aggregate(p, [r])) == {"digits/full"}


def test_ids_carry_estimated_k_only_when_the_run_used_the_estimate():
    # a run configured num_novel estimate whose replicates did not size their heads by an estimate (a path that
    # skipped the step) is recorded under the known-C^u ids, not Table 6's
    p = autonovel_config({"num_novel": "estimate"})
    plain = E.ReplicateResult(0, {"full": {"acc": 0.9}}, 0.0, {})
    assert set(E.aggregate(p, [plain])) == {"digits/full"}
    used = E.ReplicateResult(1, {"full": {"acc": 0.8}}, 0.0, {}, estimates={"": fake_estimate(6)},
                             true_num_new={"": 5}, used_estimate=True)
    assert set(E.aggregate(p, [used])) == {"digits/full-estimated-k", "digits/estimated-k"}
    with pytest.raises(ValueError, match="some replicates"):
        E.aggregate(p, [plain, used])


def test_estimate_step_is_a_self_contained_split_hook():
    # what a per-split loop (OmniGlot's alphabets, ImageNet's subsets) calls: features in, config out
    g = torch.Generator().manual_seed(0)
    centres = 10.0 * torch.eye(8)
    labels = torch.arange(4).repeat_interleave(10)
    labelled = centres[labels] + 0.1 * torch.randn(40, 8, generator=g)
    unlabelled = centres[4 + torch.arange(3).repeat_interleave(10)] + 0.1 * torch.randn(30, 8, generator=g)
    conf = autonovel_config({"num_novel": "estimate", "n_new_classes": 3, "estimate_candidates": 5,
                             "estimate_anchor_fraction": 0.5, "estimate_n_init": 2})
    r = E.ReplicateResult(0, {}, 0.0, {})
    out = E.estimate_step(conf, r, "split-a", labelled, labels, unlabelled, CPU)
    assert r.true_num_new == {"split-a": 3} and out.num_new == r.estimates["split-a"].k and r.used_estimate
    rep = E.ReplicateResult(0, {}, 0.0, {})
    assert E.estimate_step(replace(conf, num_novel="report"), rep, "s", labelled, labels, unlabelled, CPU).num_new == 3
    assert "s" in rep.estimates and not rep.used_estimate
    known = E.ReplicateResult(0, {}, 0.0, {})
    assert E.estimate_step(replace(conf, num_novel="known"), known, "s", labelled, labels, unlabelled, CPU) is not None
    assert known.estimates == {}


def test_incremental_accuracy_with_more_new_outputs_than_new_classes():
    # 2 old classes, 2 true new classes, head 1 with 3 new outputs (C^u estimated 3): outputs 2, 3, 4.
    y = torch.tensor([0, 1, 2, 2, 3, 3])
    pred = torch.tensor([0, 1, 4, 4, 2, 3])     # new output 4 -> class 2 (2 right), 2 and 3 share class 3 (1 right)
    acc = incremental_accuracies(pred, y, 2, 3)
    assert acc == {"old": 1.0, "new": pytest.approx(3 / 4), "all": pytest.approx(5 / 6)}
    with pytest.raises(ValueError, match="beyond"):
        incremental_accuracies(torch.tensor([0, 5]), torch.tensor([0, 2]), 2, 3)


def test_estimate_trains_head2_with_the_estimate_and_records_it():
    p = autonovel_config({**TINY, "num_novel": "estimate", "variants": ["full", "il"]})
    r = E.run_replicate(p, 0, CPU, keep=True)
    est = r.estimates[""]
    assert r.true_num_new == {"": 5} and 1 <= est.k and len(est.probe_acc) == len(est.candidates) == 6
    assert r.model.heads[HEAD2].out_features == est.k
    assert r.il_model.heads[HEAD1].out_features == 5 + est.k
    agg = E.aggregate(p, [r])
    assert agg["digits/estimated-k"] == {"num_new": est.k, "true_num_new": 5, "abs_error": abs(est.k - 5)}
    assert {"digits/full-estimated-k", "digits/il-estimated-k", "digits/kmeans-selfsup-estimated-k"} <= set(agg)
    assert r.used_estimate


def test_report_keeps_the_known_cu():
    r = E.run_replicate(autonovel_config({**TINY, "num_novel": "report", "variants": ["full"]}), 0, CPU, keep=True)
    assert r.model.heads[HEAD2].out_features == 5 and "" in r.estimates and not r.used_estimate
    none = E.run_replicate(autonovel_config({**TINY, "num_novel": "known", "variants": ["full"], "kmeans": False}),
                           0, CPU)
    assert none.estimates == {} and "digits/estimated-k" not in E.aggregate(autonovel_config({}), [none])


def test_omniglot_estimates_each_alphabet_and_averages(tmp_path):
    from thesislib.data.omniglot import write_omniglot_fixture

    write_omniglot_fixture(tmp_path, {"Bg_a": 4, "Bg_b": 4}, drawers=4, split="background")
    write_omniglot_fixture(tmp_path, {"Ev_x": 2, "Ev_y": 3}, drawers=4, split="evaluation", seed=1)
    p = autonovel_config({"data": "omniglot", "backbone": "vgg6", "pretrain": "metric", "n_labelled_classes": 8,
                          "data_root": str(tmp_path), "frozen_stages": 3, "metric_epochs": 1, "episode_classes": 4,
                          "episode_support": 2, "episode_query": 2, "optimizer": "adam", "lr": 0.01, "epochs": 1,
                          "lr_milestones": [], "batch_size": 16, "variants": ["full"], "n_seeds": 1, "kmeans": False,
                          "progress": "none", "rampup_epochs": 1, "num_novel": "estimate", "estimate_candidates": 5,
                          "estimate_n_init": 2, "estimate_labelled_classes": 4})
    with pytest.warns(UserWarning, match="2 evaluation alphabets"):
        r = E.run_replicate(p, 0, CPU)
    assert set(r.estimates) == {"Ev_x", "Ev_y"} and r.true_num_new == {"Ev_x": 2, "Ev_y": 3}
    assert all(len(e.anchor_classes) + len(e.probe_classes) == 4 for e in r.estimates.values())   # 4 drawn of 8
    ks = [r.estimates[a].k for a in ("Ev_x", "Ev_y")]
    agg = E.aggregate(p, [r])
    assert agg["omniglot/estimated-k"] == {"num_new": sum(ks) / 2, "true_num_new": 2.5,
                                           "abs_error": (abs(ks[0] - 2) + abs(ks[1] - 3)) / 2}
    assert "omniglot/full-estimated-k" in agg
