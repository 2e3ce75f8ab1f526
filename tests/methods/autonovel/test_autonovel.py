"""AutoNovel: parameters, data split, the joint objective, the I.L. head, a short replicate, torchrun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from thesislib.config import ConfigError, load_yaml, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.svhn import write_svhn_fixture
from thesislib.methods.autonovel import experiments as E
from thesislib.methods.autonovel.config import VARIANTS, autonovel_config, variant_config
from thesislib.methods.autonovel.data import load_data
from thesislib.methods.autonovel.evaluate import incremental_accuracies, incremental_scores
from thesislib.methods.autonovel.losses import joint_loss, masked_ce
from thesislib.methods.autonovel.model import HEAD1, HEAD2, extend_head
from thesislib.methods.autonovel.train import main, pretrain, run_stage
from thesislib.paths import project_root
from thesislib.selfsup import pairwise_bce, rank_statistics

TINY = dict(mlp_widths=(32, 32, 16), rotnet_epochs=1, rotnet_milestones=(1,), sup_epochs=1, epochs=2,
            lr_milestones=(1,), rampup_epochs=1, batch_size=64, n_seeds=1, progress="none")


def test_params_and_variants():
    p = autonovel_config({"epochs": 3})
    assert variant_config(p, "no-bce").bce_weight == 0 and variant_config(p, "il").incremental
    assert variant_config(p, "no-selfsup").selfsup is False and variant_config(p, "k1").topk == 1
    with pytest.raises(ConfigError, match="unknown variants"):
        autonovel_config({"variants": ["full", "zzz"]})
    with pytest.raises(ConfigError, match="no new class"):
        autonovel_config({"n_labelled_classes": 10})
    assert autonovel_config({"data": "cifar100", "backbone": "resnet18", "n_labelled_classes": 80}).num_new == 20


@pytest.mark.parametrize("scale", ["smoke", "full", "full_cifar100", "full_svhn"])
def test_configs_parse(scale):
    p = autonovel_config(load_yaml(project_root() / "configs" / "autonovel" / f"{scale}.yaml"))
    assert all(v in VARIANTS for v in p.variants)


def test_digits_split_targets_hide_the_new_classes():
    d = load_data(autonovel_config())
    t = d.targets()
    assert set(t[d.y_train < 5].tolist()) == {0, 1, 2, 3, 4} and set(t[d.y_train >= 5].tolist()) == {-1}
    x_u, y_u = d.unlabelled("train")
    assert len(x_u) == int((d.y_train >= 5).sum()) and set(y_u.tolist()) == {0, 1, 2, 3, 4}


def test_svhn_data_and_missing(tmp_path: Path):
    write_svhn_fixture(tmp_path, n_train=20, n_test=10)
    d = load_data(autonovel_config({"data": "svhn", "backbone": "resnet18", "data_root": str(tmp_path)}))
    assert d.x_train.shape == (20, 3, 32, 32) and len(d.unlabelled("test")[0]) == 5
    with pytest.raises(DatasetNotFoundError, match="cifar10"):
        load_data(autonovel_config({"data": "cifar10", "backbone": "resnet18", "data_root": str(tmp_path)}))


def test_joint_loss_hand_assembled():
    torch.manual_seed(0)
    params = autonovel_config({"topk": 2, "cons_weight": 2.0, "rampup_epochs": 0})
    f = torch.rand(4, 6)
    out = {"features": f, HEAD1: torch.randn(4, 5), HEAD2: torch.randn(4, 3)}
    aug = {"features": f, HEAD1: torch.randn(4, 5), HEAD2: torch.randn(4, 3)}
    target = torch.tensor([1, -1, 3, -1])
    loss, m = joint_loss(out, aug, target, params, epoch=0)
    ce = torch.nn.functional.cross_entropy(out[HEAD1][[0, 2]], target[[0, 2]])
    p2, q2 = out[HEAD2].softmax(1), aug[HEAD2].softmax(1)
    u = [1, 3]
    bce = pairwise_bce(p2[u], q2[u], rank_statistics(f[u], 2))
    mse = ((out[HEAD1].softmax(1) - aug[HEAD1].softmax(1)) ** 2).mean() + ((p2 - q2) ** 2).mean()
    torch.testing.assert_close(m["ce"], ce)
    torch.testing.assert_close(m["bce"], bce)
    torch.testing.assert_close(loss, ce + bce + 2.0 * mse)
    assert float(masked_ce(out[HEAD1], target, torch.zeros(4))) == 0.0


def test_incremental_term_and_head_extension():
    params = autonovel_config({"incremental": True, "rampup_epochs": 0, "increment_coefficient": 0.05})
    head = nn.Linear(4, 2)
    new = extend_head(head, 3)
    torch.testing.assert_close(new.weight[:2], head.weight)
    torch.testing.assert_close(new.bias[:2], head.bias)
    assert torch.all(new.bias[2:] == head.bias.min() - 1)
    out = {"features": torch.rand(2, 6), HEAD1: torch.randn(2, 10), HEAD2: torch.tensor([[0.0, 5, 0, 0, 0]] * 2)}
    loss, m = joint_loss(out, out, torch.tensor([0, -1]), params, epoch=0)
    il = torch.nn.functional.cross_entropy(out[HEAD1][1:], torch.tensor([6]))      # argmax head 2 (1) + C^l (5)
    torch.testing.assert_close(m["il"], il)


def test_short_replicate_and_label_blindness():
    params = autonovel_config({**TINY, "variants": ["full", "no-bce", "il"]})
    r = E.run_replicate(params, 0, torch.device("cpu"), keep=True)
    assert {"kmeans-pixels", "kmeans-scratch", "kmeans-selfsup", "full", "no-bce", "il", "il-test"} <= set(r.metrics)
    assert set(r.metrics["il-test"]) == {"old", "new", "all"}
    assert {v.id for v in E.claim_verdicts([r, r])} >= {"bce-essential", "il-helps"}
    scores = incremental_scores(r.il_model, r.data, variant_config(params, "il"), torch.device("cpu"))
    assert 0 <= scores["all"] <= 1
    # the joint step never reads the classes of the unlabelled images
    data = load_data(params)
    rot, _ = pretrain(params, data, torch.device("cpu"))
    sup, _ = run_stage("supervised", params, "cpu", data=data, init=rot.state_dict())
    scrambled = type(data)(data.x_train, torch.where(data.y_train >= 5, 9 - (data.y_train - 5), data.y_train),
                           data.x_test, data.y_test, data.n_labelled)
    m1, _ = run_stage("joint", params, "cpu", data=data, init=sup.state_dict())
    m2, _ = run_stage("joint", params, "cpu", data=scrambled, init=sup.state_dict())
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_torchrun_entry_point(tmp_path: Path, torchrun_gloo):
    params = autonovel_config(TINY)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(to_dict(params)))
    out = tmp_path / "out"
    for stage, init in (("rotnet", None), ("supervised", "rotnet.pt"), ("joint", "supervised.pt")):
        argv = ["--params", path, "--stage", stage, "--output", out, "--device", "cpu"]
        torchrun_gloo(main, argv + (["--init", out / init] if init else []))
    state = torch.load(out / "joint.pt", weights_only=True)
    sup = torch.load(out / "supervised.pt", weights_only=True)
    assert "heads.head2.weight" in state
    torch.testing.assert_close(state["stages.0.0.weight"], sup["stages.0.0.weight"])     # frozen
    assert main(["--params", str(path), "--stage", "joint"]) == 2


def test_incremental_new_accuracy_never_matches_old_predictions():
    """Review R1 item 1: every class-5 image predicted as old class 2, the rest correct."""
    y = torch.arange(10).repeat_interleave(4)
    pred = y.clone()
    pred[y == 5] = 2
    acc = incremental_accuracies(pred, y, 5, 5)
    assert acc["old"] == 1.0
    assert acc["new"] == pytest.approx(16 / 20)          # class 5's 4 images are wrong, not matched
    assert acc["all"] == pytest.approx(36 / 40)
    # new outputs permuted: Hungarian matching recovers them; an old output never counts
    perm = torch.tensor([0, 1, 2, 3, 4, 6, 7, 8, 9, 5])
    acc = incremental_accuracies(perm[y], y, 5, 5)
    assert acc == {"old": 1.0, "new": 1.0, "all": 1.0}
    everything_old = incremental_accuracies(torch.zeros_like(y), y, 5, 5)
    assert everything_old["new"] == 0.0 and everything_old["old"] == pytest.approx(0.2)


def test_supervised_step_uses_sup_weight_decay(monkeypatch):
    """Review R1 item 5: the supervised step's weight decay is a parameter (released code 1e-4)."""
    from thesislib.methods.autonovel import train as T
    assert autonovel_config({}).sup_weight_decay == 1e-4
    for name in ("full", "full_cifar100", "full_svhn"):
        assert load_yaml(project_root() / "configs" / "autonovel" / f"{name}.yaml")["sup_weight_decay"] == 1e-4
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(model, opt, *args, **kwargs):
        seen["wd"] = opt.param_groups[0]["weight_decay"]
        raise Stop

    monkeypatch.setattr(T, "fit", fake_fit)
    params = autonovel_config({**TINY, "sup_weight_decay": 3e-4})
    with pytest.raises(Stop):
        T.supervised(params, load_data(params), torch.device("cpu"), None)
    assert seen["wd"] == 3e-4
