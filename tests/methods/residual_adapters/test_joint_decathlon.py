"""The thesis's extra Table 1 rows (Ch. 3 §5): "finetune all" (round-robin over every domain), the
unknown-domain setting (domain predictor in the loop) and per-domain adapter weight decay, and the
full-scale config that runs them on the decathlon fixture."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from thesislib.chapters import get_chapter
from thesislib.cli import main
from thesislib.config import ConfigError, to_dict
from thesislib.data.decathlon import DECATHLON_DOMAINS
from thesislib.data.decathlon_fixtures import write_decathlon_fixture
from thesislib.data.round_robin import (
    DomainLabelled,
    RoundRobinDomains,
    center_crop,
    collate_domain_batch,
    round_robin_domain,
)
from thesislib.engine import Trainer, train_config
from thesislib.engine.sampler import GlobalBatchSampler
from thesislib.methods.residual_adapters import experiments as E
from thesislib.methods.residual_adapters import train as T
from thesislib.methods.residual_adapters.config import THESIS_DECAY_GROUPS, adapters_config, experiment_id
from thesislib.methods.residual_adapters.data import load_domains
from thesislib.methods.residual_adapters.evaluate import routed_accuracy, routed_predictions
from thesislib.nn.multidomain import RoutedNetwork, WeightDecay, joint_param_groups
from thesislib.nn.resnet26_adapters import resnet26
from thesislib.runner import resolve_parameters, validate_parameters

CPU = torch.device("cpu")
TINY = dict(n_source=40, n_test=12, shots=2, width=0.125, blocks=(1, 1, 1), pre_steps=3, pre_batch_size=16,
            target_steps=2, batch_size=8, targets=("digits", "faces"), tiny_domain="faces", progress="none",
            n_seeds=1, dompred_steps=4)
SOURCE = adapters_config().source  # the mini-decathlon's default source domain


def _domains(sizes, side=8):
    g = torch.Generator().manual_seed(0)
    return [TensorDataset(torch.full((n, 3, side, side), float(d)) + 0.01 * torch.randn(n, 3, side, side, generator=g),
                          torch.arange(n) % 3) for d, n in enumerate(sizes)]


# ------------------------------------------------------------------------------ round robin
def test_round_robin_order_is_a_function_of_the_step_and_samples_without_replacement():
    data = RoundRobinDomains(_domains([5, 7, 3]), batch_size=4, steps=12, seed=1)
    assert len(data) == 48 and [round_robin_domain(s, 3) for s in range(5)] == [0, 1, 2, 0, 1]
    for s in range(12):
        assert {data.locate(s * 4 + j)[0] for j in range(4)} == {s % 3}
    # domain 1 (7 images) over its 4 batches: two passes, each a permutation of all 7 images
    seen = [data.locate(s * 4 + j)[1] for s in range(1, 12, 3) for j in range(4)]
    assert sorted(seen[:7]) == list(range(7)) and sorted(seen[7:14]) == list(range(7))
    assert RoundRobinDomains(_domains([5, 7, 3]), 4, 12, seed=1).locate(21) == data.locate(21)
    x, y, d = collate_domain_batch([data[i] for i in range(4, 8)])
    assert d == 1 and x.shape == (4, 3, 8, 8) and torch.allclose(x.mean(), torch.tensor(1.0), atol=0.05)
    with pytest.raises(ValueError, match="one domain"):
        collate_domain_batch([data[3], data[4]])
    with pytest.raises(IndexError):
        data.locate(48)


def test_round_robin_domain_is_the_same_on_every_rank():
    data = RoundRobinDomains(_domains([5, 7, 3]), batch_size=4, steps=6)
    ranks = [GlobalBatchSampler(len(data), 4, seed=0, shuffle=False, drop_last=True, rank=r, world_size=2)
             for r in (0, 1)]
    plans = [list(s.set_epoch(0, 0)) for s in ranks]
    for step, (a, b) in enumerate(zip(*plans, strict=True)):
        domains = {data.locate(i)[0] for micro in (*a, *b) for i in micro}
        assert domains == {step % 3}


def test_joint_steps_through_the_engine_update_each_domain_in_turn_and_the_shared_filters():
    net = resnet26([3, 3], adapter="series", width=0.125, blocks=(1, 1, 1))
    heads = [h.weight.detach().clone() for h in net.heads]
    bns = [net.end_bns[d].weight.detach().clone() for d in range(2)]
    adapters = [net.stem.adapters[d].conv.weight.detach().clone() for d in range(2)]
    conv = net.stem.conv.weight.detach().clone()
    optimizer = torch.optim.SGD(joint_param_groups(net, [WeightDecay()] * 2), lr=0.1)
    data = RoundRobinDomains(_domains([6, 6]), batch_size=4, steps=2)
    snapshots = []
    trainer = Trainer(net, optimizer, data, T.joint_step,
                      train_config(adapters_config(progress="none"), batch_size=4, iterations=2, shuffle=False),
                      CPU, collate_fn=collate_domain_batch,
                      on_step=lambda tr: snapshots.append([h.weight.detach().clone() for h in net.heads]))
    trainer.fit()
    # step 0 trains domain 0 only, step 1 domain 1
    assert not torch.equal(snapshots[0][0], heads[0]) and torch.equal(snapshots[0][1], heads[1])
    assert not torch.equal(snapshots[1][1], heads[1])
    for d in range(2):
        assert not torch.equal(net.end_bns[d].weight, bns[d])
        assert not torch.equal(net.stem.adapters[d].conv.weight, adapters[d])
    assert not torch.equal(net.stem.conv.weight, conv)


# ------------------------------------------------------------------------------ per-domain decay
def test_per_domain_adapter_decay_reaches_the_optimiser_groups(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="domain:decay"):
        adapters_config(wd_adapter_by_domain=("faces=0.1",))
    with pytest.raises(ConfigError, match="neither the source nor a target"):
        adapters_config(wd_adapter_by_domain=("aircraft:0.1",))
    params = adapters_config(TINY, wd_adapter_by_domain=("faces:0.01", f"{SOURCE}:0.003"),
                             pretrain_dir=str(tmp_path / "ckpt"))
    assert params.adapter_decay("faces") == 0.01 and params.adapter_decay("digits") == params.wd_adapter
    seen = []
    real = T._sgd
    monkeypatch.setattr(T, "_sgd", lambda groups, lr, m: seen.append(groups) or real(groups, lr, m))
    domains = load_domains(params)
    pretrained = T.pretrained_networks(params, CPU, ("series",))
    for target in ("faces", "digits"):
        for method in ("series", "series_decay"):
            T.train_target(params, method, domains[target], pretrained, CPU)
    adapter = [{g["name"]: g["weight_decay"] for g in groups}["adapter"] for groups in seen[-4:]]
    assert adapter == [params.wd_adapter, 0.01, params.wd_adapter, params.wd_adapter]
    # joint training: each domain's groups carry that domain's decay, the shared filters wd_conv
    net = resnet26([2, 2, 2], adapter="series", width=0.125, blocks=(1, 1, 1))
    groups = {g["name"]: g["weight_decay"] for g in joint_param_groups(
        net, [params.weight_decay(params.adapter_decay(n)) for n in (SOURCE, "digits", "faces")])}
    assert groups["adapter/0"] == 0.003 and groups["adapter/1"] == params.wd_adapter and groups["adapter/2"] == 0.01
    assert groups["conv3x3"] == params.wd_conv and groups["head/2"] == params.wd_head and groups["bn/1"] == 0.0
    n_params = sum(p.numel() for g in joint_param_groups(net, [WeightDecay()] * 3) for p in g["params"])
    assert n_params == sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError, match="one WeightDecay per domain"):
        joint_param_groups(net, [WeightDecay()])


# ------------------------------------------------------------------------------ unknown domain
class _Oracle(nn.Module):
    """Domain logits from the images' constant value (the domain index), or always ``fixed``."""

    def __init__(self, n: int, fixed: int | None = None) -> None:
        super().__init__()
        self.n, self.fixed = n, fixed

    def forward(self, x):
        d = x[:, 0].mean((1, 2)).round().long() if self.fixed is None else torch.full((len(x),), self.fixed)
        return nn.functional.one_hot(d.clamp(0, self.n - 1), self.n).float()


def test_routing_is_exact_for_a_perfect_predictor_and_a_wrong_domain_uses_that_domains_head():
    torch.manual_seed(0)
    net = resnet26([3, 4, 5], adapter="series", width=0.125, blocks=(1, 1, 1)).eval()
    data = _domains([6, 6, 6], side=16)
    x = torch.cat([ds.tensors[0] for ds in data])
    routed = RoutedNetwork(_Oracle(3), net, crop=8).eval()
    with torch.no_grad():
        out = routed(x)
        expected = torch.cat([net(ds.tensors[0], d).argmax(1) for d, ds in enumerate(data)])
        assert torch.equal(out[:, 0], torch.arange(3).repeat_interleave(6)) and torch.equal(out[:, 1], expected)
        wrong = RoutedNetwork(_Oracle(3, fixed=2), net, crop=8).eval()
        out = wrong(x)
        assert torch.equal(out[:, 0], torch.full((18,), 2)) and torch.equal(out[:, 1], net(x, 2).argmax(1))
    # with a perfect predictor the predicted-domain accuracy equals the known-domain one
    for d, ds in enumerate(data):
        r = routed_accuracy(routed, d, ds, CPU, batch_size=4)
        assert r["domain"] == 1.0 and r["predicted"] == pytest.approx(r["known"])
    # a wrong domain counts wrong even where its head's class index equals the label
    preds = routed_predictions(wrong, data[0], CPU)
    assert torch.equal(preds[:, 2], data[0].tensors[1]) and torch.equal(preds[:, 1], out[:6, 1])
    assert routed_accuracy(wrong, 0, data[0], CPU) == {"domain": 0.0, "predicted": 0.0,
                                                      "known": routed_accuracy(routed, 0, data[0], CPU)["known"]}


def test_domain_labelled_images_and_crop():
    data = DomainLabelled(_domains([2, 3], side=10), crop=8)
    assert len(data) == 5 and [int(data[i][1]) for i in range(5)] == [0, 0, 1, 1, 1]
    assert data[4][0].shape == (3, 8, 8)
    x = torch.arange(36.0).reshape(1, 6, 6)
    assert torch.equal(center_crop(x, 2), x[:, 2:4, 2:4])
    with pytest.raises(ValueError, match="cannot crop"):
        center_crop(x, 7)


# ------------------------------------------------------------------------------ a tiny replicate
def test_a_replicate_with_finetune_all_and_domain_prediction(tmp_path):
    params = adapters_config(TINY, methods=("finetune", "series", "series_decay", "finetune_all", "dompred"),
                             wd_adapter_by_domain=("faces:0.01",), pretrain_dir=str(tmp_path / "ckpt"))
    domains = load_domains(params)
    pretrained = T.pretrained_networks(params, CPU)
    assert set(pretrained) == {"plain", "series"}
    assert T.joint_steps(params, domains) == 3 * params.target_steps
    runs, history = T.train_finetune_all(params, domains, pretrained, CPU)
    assert len(history.train) >= 1 and [r.domain for r in runs.values()] == [1, 2]
    net = runs["digits"].net
    assert runs["faces"].net is net and net.n_domains == 3
    source = pretrained["series"]
    assert not torch.equal(net.stem.conv.weight.cpu(), source.stem.conv.weight)           # shared filters moved
    assert not torch.equal(net.heads[0].weight.cpu(), source.heads[0].weight)             # the source trained too
    result = E.run_replicate(params, 0, pretrained, CPU)
    for m in params.methods:
        assert set(result.acc[m]) == {SOURCE, "digits", "faces"}
        assert all(0.0 <= v <= 1.0 for v in result.acc[m].values())
    assert set(result.domain_acc) == {SOURCE, "digits", "faces"}
    assert result.trainable["dompred"]["faces"] > result.trainable["series"]["faces"]
    ids = E.aggregate(params, [result])
    assert {"mini16/series-decay", "mini16/series-finetune-all", "mini16/series-dom-pred"} <= set(ids)
    rows, _ = E.table_rows(params, [result])
    assert [r[0] for r in rows] == ["Finetune", "Res. adapt. (series)", "Res. adapt. decay", "Res. adapt. finetune all",
                                    "Res. adapt. dom-pred"]
    assert E.forgetting_rows(params, [result])[0] and E.parameter_accounts(params, [result], pretrained, 11)


# ------------------------------------------------------------------------------ full scale
def test_full_config_runs_the_extra_rows_on_the_decathlon_fixture(tmp_path):
    chapter = get_chapter("residual_adapters")
    values = resolve_parameters(chapter, "full", [])
    full = validate_parameters(chapter, values, "full")
    assert {"series_decay", "finetune_all", "dompred"} <= set(full.methods)
    assert full.adapter_decays() == THESIS_DECAY_GROUPS
    assert experiment_id(full, "finetune_all") == "decathlon/series-finetune-all"
    assert experiment_id(full, "dompred") == "decathlon/series-dom-pred"
    assert experiment_id(full, "series_decay") == "decathlon/series-decay"
    write_decathlon_fixture(tmp_path, {d: 2 for d in DECATHLON_DOMAINS}, n_train=3, n_val=1, n_test=1)
    small = dict(values, data_root=str(tmp_path), width=0.125, blocks=[1, 1, 1], pre_steps=1, pre_batch_size=4,
                 target_epochs=0, target_steps=1, batch_size=4, joint_steps=11, dompred_steps=2, num_workers=0,
                 methods=["series", "series_decay", "finetune_all", "dompred"], progress="none",
                 pretrain_dir=str(tmp_path / "ckpt"), eval_batch_size=8, tiny_domain="")
    params = validate_parameters(chapter, small, "full")
    pretrained = T.pretrained_networks(params, CPU)
    result = E.run_replicate(params, 0, pretrained, CPU)
    assert set(result.acc["finetune_all"]) == set(DECATHLON_DOMAINS)
    assert set(result.acc["dompred"]) == set(DECATHLON_DOMAINS) and len(result.domain_acc) == 10
    assert not any(math.isnan(v) for v in result.acc["finetune_all"].values())


def test_two_gloo_processes_train_finetune_all(tmp_path, torchrun_gloo):
    """The torchrun entry point: 2 ranks, round-robin batches split across them (the same domain on
    both: a mismatch would desynchronise DDP's gradient reduction), rank 0 writes the joint network."""
    params = adapters_config(TINY, methods=("finetune_all", "dompred"), joint_steps=6, seed=1,
                             pretrain_dir=str(tmp_path / "ckpt"))
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(T.main, ["--params", path, "--output", tmp_path / "out", "--device", "cpu"])
    runs = T.load_runs(params, tmp_path / "out")
    assert set(runs) == {(m, t) for m in ("finetune_all", "dompred") for t in ("digits", "faces")}
    joint = runs["finetune_all", "faces"]
    assert joint.domain == 2 and joint.net.n_domains == 3 and runs["dompred", "faces"].net.n_domains == 2
    source = torch.load(T.checkpoint_path(params, "series"), weights_only=True)
    assert not torch.equal(joint.net.state_dict()["stem.conv.weight"], source["stem.conv.weight"])
    other = runs["finetune_all", "digits"].net.state_dict()  # one joint network, stored per target
    assert all(torch.equal(other[k], v) for k, v in joint.net.state_dict().items())


def test_the_dom_pred_claim_is_decided_only_where_dompred_ran():
    base = {SOURCE: 0.9, "digits": 0.5, "faces": 0.6}
    after = {m: {"digits": 0.9, "faces": 0.9} for m in ("finetune", "series", "dompred")}
    results = [E.ReplicateResult(s, {"finetune": dict(base), "series": dict(base),
                                     "dompred": {k: v - 0.01 * s for k, v in base.items()}}, after, {})
               for s in range(3)]
    params = adapters_config(methods=("finetune", "series", "dompred"), targets=("digits", "faces"),
                             tiny_domain="faces")
    verdicts = {v.id: v for v in E.claim_verdicts(params, results)}
    assert set(verdicts) == {"dompred~series", "series~finetune", "forgetting"} and verdicts["dompred~series"].n == 3
    assert verdicts["dompred~series"].mean == pytest.approx(-0.01)


@pytest.mark.slow
def test_thesislib_run_full_on_the_decathlon_fixture_records_the_extra_rows(tmp_path, monkeypatch):
    """``thesislib run residual_adapters --scale full`` (the notebook, through papermill) on the fixture."""
    write_decathlon_fixture(tmp_path / "data", {d: 2 for d in DECATHLON_DOMAINS}, n_train=3, n_val=1, n_test=1)
    for var, sub in (("THESISLIB_DATA", "data"), ("THESISLIB_RUNS", "runs"), ("THESISLIB_CACHE", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    small = ["width=0.125", "blocks=[1,1,1]", "pre_steps=1", "pre_batch_size=4", "target_epochs=0", "target_steps=1",
             "batch_size=4", "joint_steps=10", "dompred_steps=2", "num_workers=0", "n_seeds=1", "eval_batch_size=8",
             "progress=none"]
    assert main(["run", "residual_adapters", "--scale", "full", *[a for s in small for a in ("-p", s)]]) == 0
    metrics = json.loads(next((tmp_path / "runs").rglob("metrics.json")).read_text())
    assert {"decathlon64/series-decay", "decathlon64/series-finetune-all", "decathlon64/series-dom-pred"} <= \
        set(metrics["experiments"])
    assert set(metrics["experiments"]["decathlon64/series-dom-pred"]) >= {"imagenet12", "svhn", "mean", "S"}
