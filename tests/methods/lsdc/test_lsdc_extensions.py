"""LSD-C beyond CIFAR: MNIST (VGG-4-like, IDX fixture), Reuters-10K (DEC's .npy fixture, DAE pre-training, Adam),
Table 6's non-linear head, and their full configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from thesislib.config import ConfigError, load_yaml
from thesislib.data.mnist import write_mnist_fixture
from thesislib.data.reuters import write_reuters10k_fixture
from thesislib.eval import balanced_silhouette, silhouette, size_balance
from thesislib.methods.lsdc import experiments as E
from thesislib.methods.lsdc.config import lsdc_config, variant_config
from thesislib.methods.lsdc.data import augment, load_data, model_input
from thesislib.methods.lsdc.model import CLUSTER_HEAD, DenoisingAutoencoder, build_backbone, clustering_head
from thesislib.methods.lsdc.train import clustering_model, pretrain_dae
from thesislib.nn.mlp import MLP
from thesislib.paths import project_root

CPU = torch.device("cpu")
TINY = dict(n_images=300, mlp_widths=(32, 32, 16), rotnet_epochs=2, rotnet_milestones=(1,), epochs=3,
            lr_milestones=(2,), rampup_epochs=2, batch_size=64, k=5, n_seeds=1, progress="none")


def test_nonlinear_head_is_two_layers_and_a_variant():
    lin, two = clustering_head(16, 4, "linear"), clustering_head(16, 4, "mlp")
    assert isinstance(lin, nn.Linear) and isinstance(two, MLP)
    assert [type(m) for m in two.body] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] and two.body[0].out_features == 16
    two.eval()
    f = torch.randn(5, 16)
    # non-linear: Ψ(f) + Ψ(-f) is not constant (it is 2b for a linear head)
    s_lin, s_two = lin(f) + lin(-f), two(f) + two(-f)
    assert torch.allclose(s_lin, s_lin[:1].expand_as(s_lin), atol=1e-6)
    assert not torch.allclose(s_two, s_two[:1].expand_as(s_two), atol=1e-3)
    with pytest.raises(ValueError, match="unknown clustering head 'tree'"):
        clustering_head(16, 4, "tree")
    p = variant_config(lsdc_config({"mlp_widths": [32, 16], "frozen_stages": 1}), "nonlinear-head")
    model = clustering_model(p, build_backbone(p, {"rotation": 4}).state_dict())
    assert isinstance(model.heads[CLUSTER_HEAD], MLP) and model(torch.rand(3, 1, 8, 8))[CLUSTER_HEAD].shape == (3, 10)
    with pytest.raises(ConfigError, match="head"):
        lsdc_config({"head": "tree"})


@pytest.mark.parametrize("scale", ["full_mnist", "full_reuters10k"])
def test_new_full_configs_parse(scale):
    p = lsdc_config(load_yaml(project_root() / "configs" / "lsdc" / f"{scale}.yaml"))
    assert p.variants == ("knn",) and p.batch_size == 256
    if scale == "full_mnist":
        assert (p.backbone, p.pretrain, p.k, p.epochs, p.cons_weight, p.rampup_epochs) == ("vgg4", "rotnet", 10, 15,
                                                                                           5.0, 50)
    else:
        assert (p.backbone, p.pretrain, p.optimizer, p.k, p.epochs, p.lr, p.weight_decay, p.cons_weight,
                p.rampup_epochs, p.num_clusters, p.in_features) == ("mlp", "dae", "adam", 5, 75, 0.001, 0.002, 25.0,
                                                                     100, 4, 2000)
    for full in ("full", "full_cifar100_20"):
        cifar = lsdc_config(load_yaml(project_root() / "configs" / "lsdc" / f"{full}.yaml"))
        assert "nonlinear-head" in cifar.variants and "l2" in cifar.variants
        # Table 4's L2 column at full scale is the thesis's grid search over (0, 2], not the matched rule
        assert cifar.l2_tau_grid == (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def test_parameter_checks_for_text_data():
    with pytest.raises(ConfigError, match="RotNet needs images"):
        lsdc_config({"data": "reuters10k", "mlp_widths": [8, 8], "frozen_stages": 0})
    with pytest.raises(ConfigError, match="RICAP"):
        lsdc_config({"data": "reuters10k", "pretrain": "dae", "composition": "ricap", "frozen_stages": 0})
    with pytest.raises(ConfigError, match="pretrain dae is for the MLP"):
        lsdc_config({"data": "mnist", "backbone": "vgg4", "pretrain": "dae"})
    with pytest.raises(ConfigError, match="vgg4 backbone is for mnist"):
        lsdc_config({"data": "cifar10", "backbone": "vgg4"})


def test_mnist_data_and_a_short_vgg4_run(tmp_path: Path):
    write_mnist_fixture(tmp_path, n_train=30, n_test=10)
    p = lsdc_config({"data": "mnist", "backbone": "vgg4", "frozen_stages": 3, "data_root": str(tmp_path),
                     "rotnet_epochs": 1, "rotnet_milestones": [], "rotnet_batch_size": 20, "epochs": 1,
                     "lr_milestones": [], "batch_size": 20, "k": 3, "n_seeds": 1, "variants": ["knn"],
                     "kmeans": False, "progress": "none", "composition": "ricap"})
    data = load_data(p)
    assert data.images.shape == (40, 1, 28, 28) and data.num_clusters == 10
    x = data.images[:4]
    v = augment(x, p)
    # a pad-2 crop without flip: every view is the input shifted by at most 2 pixels, never mirrored
    ref = model_input(x, p)
    shifts = [[torch.allclose(v[i, :, 2:-2, 2:-2], ref[i, :, 2 + dy:26 + dy, 2 + dx:26 + dx])
               for dy in range(-2, 3) for dx in range(-2, 3)] for i in range(4)]
    assert all(any(row) for row in shifts)
    r = E.run_replicate(p, 0, CPU)
    assert 0.0 <= r.metrics["knn"]["acc"] <= 1.0 and "rotnet" in r.histories


def test_reuters_dae_pretraining_reduces_the_reconstruction_error(tmp_path: Path):
    write_reuters10k_fixture(tmp_path, n=64, dim=2000)
    p = lsdc_config({"data": "reuters10k", "pretrain": "dae", "mlp_widths": [32, 32, 16], "frozen_stages": 0,
                     "composition": "none", "optimizer": "adam", "lr": 0.01, "data_root": str(tmp_path),
                     "dae_epochs": 60, "dae_lr": 3e-3, "epochs": 4, "lr_milestones": [], "batch_size": 32, "k": 3,
                     "n_seeds": 1, "variants": ["knn"], "progress": "none"})
    data = load_data(p)
    assert data.images.shape == (64, 2000) and data.num_clusters == 4
    encoder, history = pretrain_dae(p, data, CPU)
    loss, x = history.get("loss"), data.images
    # it learns each vector, not the average one: below the error of reconstructing every x by the mean
    assert float(loss[-2:].mean()) < float(((x - x.mean(0)) ** 2).mean()) < float(loss[:2].mean())
    assert set(encoder.state_dict()) == set(build_backbone(p, {}).state_dict())
    ae = DenoisingAutoencoder(build_backbone(p, {}), 2000, (32, 32, 16))
    assert ae(torch.rand(2, 2000)).shape == (2, 2000)
    r = E.run_replicate(p, 0, CPU)
    assert set(r.histories) == {"dae", "knn"} and {"knn", "kmeans-pixels", "kmeans-rotnet"} <= set(r.metrics)
    assert isinstance(r.histories["knn"], type(history))


def test_silhouette_hand_computed():
    x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    # point 0: a = 1, b = (10 + 11) / 2 -> 1 - 1/10.5; point 1: a = 1, b = 9.5 -> 1 - 1/9.5; 2 and 3 mirror them
    expected = ((1 - 1 / 10.5) + (1 - 1 / 9.5)) / 2
    assert silhouette(x, [0, 0, 1, 1]) == pytest.approx(expected)
    assert silhouette(x, [0, 1, 0, 1]) < 0 and silhouette(x, [2, 2, 2, 2]) == -1.0


def test_balanced_silhouette_prefers_the_k_way_split_to_a_merge():
    # 4 blobs (sd 0.5) at x = 0, 3, 20, 23: merged into 2 they have the higher silhouette, but K = 4 is known
    g = np.random.default_rng(0)
    x = np.concatenate([g.normal(c, 0.5, (50, 2)) for c in (0.0, 3.0, 20.0, 23.0)])
    four, two = np.repeat(np.arange(4), 50), np.repeat(np.arange(2), 100)
    assert silhouette(x, two) > silhouette(x, four)                            # the silhouette alone: the merge
    assert balanced_silhouette(x, four, 4) > balanced_silhouette(x, two, 4)    # with the size balance: 4-way
    assert size_balance(four, 4) == pytest.approx(1.0) and size_balance(two, 4) == pytest.approx(0.5)
    assert size_balance([0, 0, 0], 4) == 0.0
    with pytest.raises(ValueError, match="not below k"):
        size_balance([0, 5], 4)


def test_l2_grid_search_selects_by_silhouette_without_labels(monkeypatch):
    params = lsdc_config({**TINY, "variants": ["l2"], "l2_tau_grid": [0.05, 1.0], "kmeans": False})
    with pytest.raises(ConfigError, match="l2_tau_grid"):
        lsdc_config({**TINY, "l2_tau_grid": [0.0, 1.0]})
    data = load_data(params)
    rot = E.run_stage("rotnet", params, CPU, data=data)[0]
    state = rot.state_dict()
    chosen, points, model, history = E.l2_grid_search(params, data, CPU, state)
    assert [p.g for p in points] == [0.05, 1.0] and points[1].tau == pytest.approx(20 * points[0].tau)
    assert chosen.criterion == max(p.criterion for p in points)
    assert all(p.criterion == pytest.approx((p.silhouette + 1) / 2 * p.balance) for p in points)
    # the grid's positive rates grow with τ, and g = 1 (the median) connects about half the pairs at the start
    assert points[0].pos_rate < points[1].pos_rate
    # the labels are never read: shuffled labels give the same choice and the same runs
    shuffled = type(data)(data.images, data.labels[torch.randperm(len(data.labels))], data.num_clusters, data.name)
    chosen2, points2, _, _ = E.l2_grid_search(params, shuffled, CPU, state)
    assert chosen2.g == chosen.g and [p.criterion for p in points2] == [p.criterion for p in points]
    r = E.run_replicate(params, 0, CPU)
    assert [p.g for p in r.l2_grid] == [0.05, 1.0] and "l2" in r.metrics
