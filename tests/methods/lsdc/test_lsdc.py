"""LSD-C: parameters, data, the objective, Fig. 2, a short replicate and the torchrun entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture
from thesislib.methods.lsdc import experiments as E
from thesislib.methods.lsdc.config import VARIANTS, engine_config, lsdc_config, variant_config
from thesislib.methods.lsdc.data import load_data
from thesislib.methods.lsdc.losses import lsdc_loss, pseudo_adjacency, rampup_weight
from thesislib.methods.lsdc.moons import N_EDGES, moon_graphs
from thesislib.methods.lsdc.train import (
    clustering_model,
    main,
    pair_precision,
    pretrain,
    run_stage,
    with_l2_threshold,
)
from thesislib.paths import project_root
from thesislib.selfsup import knn_adjacency, pairwise_bce

TINY = dict(n_images=300, mlp_widths=(32, 32, 16), rotnet_epochs=2, rotnet_milestones=(1,), epochs=3,
            lr_milestones=(2,), rampup_epochs=2, batch_size=64, k=5, n_seeds=1, progress="none")


def test_params_reach_configs_and_reject_bad_values():
    p = lsdc_config({"batch_size": 128, "epochs": 7})
    cfg = engine_config(p)
    assert cfg.batch_size == 128 and cfg.epochs == 7 and cfg.drop_last
    assert variant_config(p, "mixup").weight_decay == 1e-4 and variant_config(p, "pred-knn").space == "pred"
    with pytest.raises(ConfigError, match="unknown variants"):
        lsdc_config({"variants": ["knn", "nope"]})
    with pytest.raises(ConfigError, match="nosuch"):
        lsdc_config({"nosuch": 1})
    with pytest.raises(ConfigError, match="below the batch size"):
        lsdc_config({"k": 300, "batch_size": 256})
    assert lsdc_config({"data": "cifar100_20", "backbone": "resnet18"}).num_clusters == 20


@pytest.mark.parametrize("scale", ["smoke", "full", "full_cifar100_20", "full_stl10"])
def test_configs_parse(scale):
    p = lsdc_config(load_yaml(project_root() / "configs" / "lsdc" / f"{scale}.yaml"))
    assert all(v in VARIANTS for v in p.variants)
    if scale != "smoke":
        assert p.backbone == "resnet18" and p.frozen_stages == 3 and p.composition == "ricap" and p.nproc == 1


def test_lsdc_loss_hand_computed():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a = torch.eye(2)
    loss, parts = lsdc_loss(p, p, p, a, None, weight=5.0)
    assert float(parts["mse"]) == 0.0
    assert float(loss) == pytest.approx(float(pairwise_bce(p, p, a)))
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    loss, parts = lsdc_loss(p, p, q, a, None, weight=2.0)
    assert float(parts["mse"]) == pytest.approx(0.5 / 4)
    assert float(loss) == pytest.approx(float(parts["bce"]) + 2.0 * 0.5 / 4)
    params = lsdc_config({"cons_weight": 5.0, "rampup_epochs": 10})
    assert rampup_weight(params, 10) == 5.0 and rampup_weight(params, 0) < 0.05


def test_pseudo_adjacency_space():
    f = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    feat = pseudo_adjacency(f, probs, lsdc_config({"k": 3}))
    pred = pseudo_adjacency(f, probs, lsdc_config({"k": 3, "space": "pred"}))
    torch.testing.assert_close(feat, knn_adjacency(f, 3))
    torch.testing.assert_close(pred, knn_adjacency(probs, 3))
    assert feat[0, 1] == 1 and pred[0, 1] == 0


def test_pair_precision():
    a = torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 0, 1]])
    assert float(pair_precision(a, torch.tensor([0, 0, 1]))) == pytest.approx(0.5)   # 2 positive pairs, 1 same class


def test_moon_graphs_have_650_edges():
    g = moon_graphs()
    assert int(torch.triu(g.graphs["L2"], 1).sum()) == N_EDGES == int(torch.triu(g.graphs["SNE"], 1).sum())
    k = int(g.settings["kNN"].split("=")[1])
    n_k = int(torch.triu(g.graphs["kNN"], 1).sum())
    for other in (k - 1, k + 1):
        a = knn_adjacency(g.points, other)
        assert abs(int(torch.triu(a, 1).sum()) - N_EDGES) >= abs(n_k - N_EDGES)
    assert all(torch.equal(a, a.T) and a.diag().sum() == 0 for a in g.graphs.values())


def test_cifar_loaders_and_missing_data(tmp_path: Path):
    write_cifar_fixture(tmp_path, "cifar100", n_train=40, n_test=10)
    p = lsdc_config({"data": "cifar100_20", "backbone": "resnet18", "data_root": str(tmp_path)})
    d = load_data(p)
    assert d.images.shape == (50, 3, 32, 32) and d.images.dtype == torch.uint8
    assert d.labels.max() < 20 and d.num_clusters == 20
    with pytest.raises(DatasetNotFoundError, match="cifar10"):
        load_data(lsdc_config({"data": "cifar10", "backbone": "resnet18", "data_root": str(tmp_path / "none")}))


def test_stl10_rotnet_reads_the_unlabelled_split(tmp_path: Path):
    from thesislib.data.fixtures import write_stl10_fixture

    write_stl10_fixture(tmp_path, n_train=8, n_test=4, n_unlabeled=6)
    p = lsdc_config({"data": "stl10", "backbone": "resnet18", "resnet_width": 4, "data_root": str(tmp_path),
                     "rotnet_unlabeled": True, "rotnet_epochs": 1, "rotnet_milestones": [1], "rotnet_batch_size": 6,
                     "progress": "none"})
    d = load_data(p)
    assert d.images.shape == (12, 3, 96, 96) and len(d.pretrain_set) == 18
    x, y = d.pretrain_set[15]
    assert x.shape == (3, 96, 96) and x.dtype == torch.uint8 and int(y) == -1
    _, history = run_stage("rotnet", p, "cpu", data=d)
    assert len(history.get("loss")) > 0
    assert len(load_data(lsdc_config({**to_dict(p), "rotnet_unlabeled": False})).pretrain_set) == 12


def test_resnet_stage_step_on_cifar_fixture(tmp_path: Path):
    write_cifar_fixture(tmp_path, "cifar10", n_train=24, n_test=8)
    p = lsdc_config({"data": "cifar10", "backbone": "resnet18", "resnet_width": 4, "frozen_stages": 3,
                     "data_root": str(tmp_path), "rotnet_epochs": 1, "rotnet_milestones": [1], "epochs": 1,
                     "lr_milestones": [1], "batch_size": 16, "k": 4, "composition": "ricap", "progress": "none"})
    rot, _ = run_stage("rotnet", p, "cpu")
    model, history = run_stage("lsdc", p, "cpu", init=rot.state_dict())
    assert torch.equal(model.layer1[0].conv1.weight, rot.layer1[0].conv1.weight)       # frozen
    assert not torch.equal(model.layer4[0].conv1.weight, rot.layer4[0].conv1.weight)   # trained
    assert torch.isfinite(torch.tensor(history.get("loss"))).all()


def test_short_replicate_scores_every_variant_and_ignores_labels():
    params = lsdc_config({**TINY, "variants": ["knn", "ricap", "mixup", "no-mse"]})
    r = E.run_replicate(params, 0, torch.device("cpu"), keep=True)
    assert set(r.metrics) >= {"kmeans-pixels", "kmeans-rotnet", "knn", "ricap", "mixup", "no-mse", "none"}
    assert r.metrics["none"] == r.metrics["knn"]            # composition none is the default: same run
    assert all(0.0 <= m["acc"] <= 1.0 for m in r.metrics.values())
    verdicts = E.claim_verdicts([r, r])
    assert {v.id for v in verdicts} >= {"beats-kmeans-rotnet", "ricap>none", "mse-helps"}
    # the labels are never read by the loss: permuting them leaves the trained weights unchanged
    data = load_data(params)
    rot, _ = pretrain(params, data, torch.device("cpu"))
    state = rot.state_dict()
    # the kept replicate carries its RotNet weights (the notebook's grid search reuses them, no second RotNet)
    assert r.rotnet_state is not None and all(torch.equal(v, r.rotnet_state[k]) for k, v in state.items())
    shuffled = type(data)(data.images, data.labels[torch.randperm(len(data.labels))], data.num_clusters, data.name)
    m1, _ = run_stage("lsdc", params, "cpu", data=data, init=state)
    m2, _ = run_stage("lsdc", params, "cpu", data=shuffled, init=state)
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_clustering_model_head_init_is_seeded():
    params = lsdc_config(TINY)
    state = pretrain(params, load_data(params), torch.device("cpu"))[0].state_dict()
    a, b = clustering_model(params, state), clustering_model(params, state)
    assert "rotation" not in a.heads
    torch.testing.assert_close(a.heads["cluster"].weight, b.heads["cluster"].weight)   # every variant starts alike
    torch.testing.assert_close(a.stages[0][0].weight, state["stages.0.0.weight"])


def test_torchrun_entry_point(tmp_path: Path, torchrun_gloo):
    params = lsdc_config({**TINY, "n_images": 256})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(to_dict(params)))
    out = tmp_path / "out"
    torchrun_gloo(main, ["--params", path, "--stage", "rotnet", "--output", out, "--device", "cpu"])
    torchrun_gloo(main, ["--params", path, "--stage", "lsdc", "--init", out / "rotnet.pt", "--output", out,
                         "--device", "cpu"])
    init = torch.load(out / "rotnet.pt", weights_only=True)
    state = torch.load(out / "lsdc.pt", weights_only=True)
    assert "heads.cluster.weight" in state and "heads.rotation.weight" not in state
    torch.testing.assert_close(state["stages.0.0.weight"], init["stages.0.0.weight"])      # frozen stage
    assert not torch.equal(state["stages.2.0.weight"], init["stages.2.0.weight"])          # trained stage
    assert json.loads((out / "metrics_lsdc.json").read_text())["history"]["train"]
    assert main(["--params", str(path), "--stage", "lsdc"]) == 2                            # no --init


def test_l2_variant_gets_a_matched_threshold_and_a_degenerate_one_is_withheld():
    """Review R1 item 3: the L2 baseline trains on non-trivial targets; an identity graph is not judged."""
    params = lsdc_config({**TINY, "variants": ["knn", "l2"]})
    assert params.l2_tau == 0.0 and load_yaml(project_root() / "configs/lsdc/full.yaml")["l2_tau"] == 0.0
    r = E.run_replicate(params, 0, torch.device("cpu"))
    state = pretrain(params, load_data(params), torch.device("cpu"))[0].state_dict()
    assert r.l2_tau > 0
    rate = E.mean_pos_rate(r.histories["l2"])
    assert rate > 2.0 / params.batch_size                 # more than the diagonal
    assert "knn>l2" in {v.id for v in E.claim_verdicts([r, r], params.batch_size)}
    r.histories["l2"].train = [{**rec, "pos_rate": 1.0 / params.batch_size} for rec in r.histories["l2"].train]
    assert "knn>l2" in E.withheld_claims([r, r], params.batch_size)
    assert "knn>l2" not in {v.id for v in E.claim_verdicts([r, r], params.batch_size)}
    fixed = variant_config(lsdc_config({**TINY, "l2_tau": 3.0}), "l2")
    assert with_l2_threshold(fixed, None, None, torch.device("cpu")).l2_tau == 3.0     # a given τ is kept
    assert float(run_stage("lsdc", fixed, "cpu", init=state)[1].get("l2_tau")[-1]) == 3.0
