"""AutoNovel on OmniGlot: the prototypical loss (hand-computed), the episodes, the metric stage as the
initialisation, the VGG-6 heads under I.L., and the per-alphabet evaluation on a fixture in the real layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml
from thesislib.data.omniglot import write_omniglot_fixture
from thesislib.methods.autonovel import experiments as E
from thesislib.methods.autonovel.config import VARIANTS, autonovel_config, variant_config
from thesislib.methods.autonovel.data import Episodes, load_data
from thesislib.methods.autonovel.losses import prototypical_loss
from thesislib.methods.autonovel.model import HEAD1, build_backbone, extend_head, set_heads
from thesislib.methods.autonovel.train import joint_model, metric_to_supervised, pretrain_metric
from thesislib.nn.mlp import MLP
from thesislib.paths import project_root

CPU = torch.device("cpu")


def test_prototypical_loss_hand_computed():
    # two classes, one support + one query each; prototypes (0, 0) and (2, 0)
    f = torch.tensor([[0.0, 0.0], [0.5, 0.0], [2.0, 0.0], [2.0, 1.0]])
    loss, acc = prototypical_loss(f, n_way=2, n_support=1)
    # query 1 (0.5, 0): d² = 0.25, 2.25; query 2 (2, 1): d² = 5, 1
    l1 = -torch.log_softmax(torch.tensor([-0.25, -2.25]), 0)[0]
    l2 = -torch.log_softmax(torch.tensor([-5.0, -1.0]), 0)[1]
    assert float(loss) == pytest.approx(float((l1 + l2) / 2)) and float(acc) == 1.0
    with pytest.raises(ValueError, match="same count"):
        prototypical_loss(f[:3], n_way=2, n_support=1)
    with pytest.raises(ValueError, match="same count"):
        prototypical_loss(f, n_way=2, n_support=2)
    # shapes only: no host sync, so it runs on the meta device (a .item(), bool() or nonzero would raise)
    loss, acc = prototypical_loss(torch.empty(12, 5, device="meta"), n_way=3, n_support=2)
    assert loss.device.type == "meta" and loss.shape == ()


def test_episodes_draw_whole_classes():
    y = torch.arange(6).repeat_interleave(4)
    x = torch.arange(24.0)[:, None]
    ep = Episodes(x, y, n_way=3, n_shot=2, n_episodes=5)
    xe, ye = ep[2]
    assert len(ep) == 5 and ye.shape == (6,) and len(set(ye.tolist())) == 3
    assert all(int(ye[2 * i]) == int(ye[2 * i + 1]) for i in range(3)) and torch.equal(y[xe.long().flatten()], ye)
    assert len({tuple(xe.flatten().tolist()) for xe, _ in (ep[0] for _ in range(8))}) > 1   # new draws each time
    with pytest.raises(ValueError, match="need 7"):
        Episodes(x, y, n_way=7, n_shot=2, n_episodes=1)


def test_omniglot_config_and_checks():
    p = autonovel_config(load_yaml(project_root() / "configs" / "autonovel" / "full_omniglot.yaml"))
    assert (p.backbone, p.pretrain, p.optimizer, p.lr, p.cons_weight, p.rampup_epochs, p.epochs, p.frozen_stages,
            p.n_labelled_classes) == ("vgg6", "metric", "adam", 0.01, 100.0, 1, 100, 3, 964)
    with pytest.raises(ConfigError, match="omniglot runs the VGG-6"):
        autonovel_config({"data": "omniglot", "backbone": "vgg6", "n_labelled_classes": 964})
    with pytest.raises(ConfigError, match="vgg6 backbone is for omniglot"):
        autonovel_config({"data": "cifar10", "backbone": "vgg6"})


def test_vgg6_heads_are_two_layers_and_extend_for_il():
    p = autonovel_config({"data": "omniglot", "backbone": "vgg6", "pretrain": "metric", "n_labelled_classes": 6,
                          "n_new_classes": 3, "frozen_stages": 3, "incremental": True})
    state = metric_to_supervised(p, build_backbone(p, {}).state_dict())
    model = joint_model(p, state)
    assert isinstance(model.heads[HEAD1], MLP) and model.heads[HEAD1].num_outputs == 9
    out = model.eval()(torch.zeros(2, 1, 32, 32))
    assert out[HEAD1].shape == (2, 9) and out["head2"].shape == (2, 3)
    head = set_heads(build_backbone(p, {}), {HEAD1: 4}).heads[HEAD1].eval()
    old = head(torch.ones(1, 1024)).detach()
    new = extend_head(head, 2)
    assert torch.allclose(new(torch.ones(1, 1024))[:, :4], old)
    # the frozen stages: the first three conv stages of four
    assert [all(not q.requires_grad for q in s.parameters()) for s in model.stages] == [True, True, True, False]


def test_metric_stage_and_per_alphabet_run(tmp_path: Path):
    write_omniglot_fixture(tmp_path, {"Bg_a": 4, "Bg_b": 4}, drawers=4, split="background")
    write_omniglot_fixture(tmp_path, {"Ev_x": 2, "Ev_y": 3}, drawers=4, split="evaluation", seed=1)
    p = autonovel_config({"data": "omniglot", "backbone": "vgg6", "pretrain": "metric", "n_labelled_classes": 8,
                          "data_root": str(tmp_path), "frozen_stages": 3, "metric_epochs": 3, "episode_classes": 4,
                          "episode_support": 2, "episode_query": 2, "optimizer": "adam", "lr": 0.01, "epochs": 2,
                          "lr_milestones": [], "batch_size": 16, "variants": ["full"], "n_seeds": 1,
                          "progress": "none", "rampup_epochs": 1})
    data = load_data(p)
    assert data.x_train.shape == (32, 1, 32, 32) and data.n_labelled == 8 and len(data.unlabelled()[0]) == 0
    model, history = pretrain_metric(p, data, CPU)
    assert torch.isfinite(torch.as_tensor(history.get("loss"))).all() and set(model.heads) == set()
    assert set(model.state_dict()) == set(build_backbone(p, {}).state_dict())
    with pytest.raises(ConfigError, match="n_labelled_classes 8 .* does not match|964"):
        E.run_replicate(autonovel_config({**p.__dict__, "n_labelled_classes": 964}), 0, CPU)
    with pytest.warns(UserWarning, match="2 evaluation alphabets .* the release has 20"):
        r = E.run_replicate(p, 0, CPU)
    assert r.n_alphabets == 2
    assert {"full@Ev_x", "full@Ev_y", "kmeans-scratch@Ev_x", "full", "kmeans-scratch"} <= set(r.metrics)
    per = [r.metrics[f"full@{a}"]["acc"] for a in ("Ev_x", "Ev_y")]
    assert r.metrics["full"]["acc"] == pytest.approx(sum(per) / 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one = E.run_replicate(autonovel_config({**p.__dict__, "alphabet": "Ev_y"}), 0, CPU)
    assert one.n_alphabets == 1 and not [w for w in caught if "evaluation alphabets" in str(w.message)]
    assert set(k for k in one.metrics if "@" in k) == {"full@Ev_y", "kmeans-scratch@Ev_y"}


def test_fig4_k_sweep_has_every_k_of_the_thesis():
    p = autonovel_config({})
    assert [variant_config(p, f"k{k}").topk for k in (1, 2, 3, 7, 10, 15, 20, 50)] == [1, 2, 3, 7, 10, 15, 20, 50]
    assert VARIANTS["full"][1] == {} and p.topk == 5
