"""The G-softmax training entry points: configs, ids, the three methods, lam = 0, CIFAR/COCO paths, CLI, DDP."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import thesislib.methods.gsoftmax.train as gtrain
from thesislib.config import ConfigError, from_mapping
from thesislib.data import DatasetNotFoundError, write_cifar_fixture, write_coco_fixture
from thesislib.methods.gsoftmax.train import (
    GSoftmaxConfig,
    GSoftmaxResult,
    experiment_id,
    load_config,
    main,
    protocol_deviations,
    run,
    train,
)
from thesislib.replication import paper_numbers

CPU = torch.device("cpu")
FAST = dict(epochs=2, progress="none", hidden=(32,))
SINGLE_KEYS = {"top1_error", "test_loss", "logit_sd", "emp_compactness", "emp_separability", "emp_ratio", "emp_gap",
               "emp_sigma_pos"}
MULTI_KEYS = {"map", "map_eq21", "cp", "cr", "cf1", "cf1_eq22", "op", "or", "of1", "emp_compactness"}
PAPER_IDS = {p.experiment for p in paper_numbers("gsoftmax")}


@pytest.mark.parametrize("method", ["softmax", "gsoftmax", "lsoftmax"])
def test_two_epoch_digits_run_of_each_method(method: str) -> None:
    result = train(GSoftmaxConfig(method=method, **FAST), CPU)
    assert SINGLE_KEYS <= set(result.metrics)
    assert ({"learned_compactness", "learned_ratio"} <= set(result.metrics)) == (method == "gsoftmax")
    assert all(np.isfinite(v) for v in result.metrics.values())
    assert result.outputs["x"].shape == result.outputs["z"].shape == (540, 10)
    assert result.outputs["labels"].shape == (540,)
    assert len(result.per_class["emp_compactness"]) == 10
    assert 0.0 <= result.metrics["top1_error"] < 50.0           # two epochs already learn the digits
    expected_error = 100 * np.mean(result.outputs["z"].argmax(1) != result.outputs["labels"])
    assert result.metrics["top1_error"] == pytest.approx(expected_error)
    if method == "gsoftmax":
        assert result.gaussians["epoch"] == [0, 1, 2]
        assert result.gaussians["mu"][0] == [0.0] * 10 and result.gaussians["mu"][-1] != [0.0] * 10
    else:
        assert result.gaussians == {} and not np.shares_memory(result.outputs["x"], result.outputs["z"])


def test_lam_zero_gsoftmax_trains_exactly_like_softmax() -> None:
    soft = train(GSoftmaxConfig(method="softmax", **FAST), CPU)
    zero = train(GSoftmaxConfig(method="gsoftmax", lam=0.0, **FAST), CPU)
    one = train(GSoftmaxConfig(method="gsoftmax", lam=1.0, **FAST), CPU)
    assert np.array_equal(soft.outputs["x"], zero.outputs["x"])      # bit for bit, after 2 epochs of SGD
    assert np.array_equal(soft.outputs["z"], zero.outputs["z"])
    assert soft.metrics == {k: v for k, v in zero.metrics.items() if not k.startswith("learned_")}
    assert [r["loss"] for r in soft.history] == [r["loss"] for r in zero.history]
    assert not np.array_equal(soft.outputs["x"], one.outputs["x"])


def test_multilabel_mosaic_run_and_readings() -> None:
    base = dict(dataset="mosaics", mosaic_train=256, mosaic_test=128, batch_size=64, **FAST)
    result = train(GSoftmaxConfig(method="gsoftmax", mu_init=-0.1, **base), CPU)
    assert MULTI_KEYS <= set(result.metrics)
    assert result.outputs["x"].shape == (128, 20) and result.outputs["scores"].shape == (128, 10)
    assert result.experiment_id == "mosaics/mlp/gsoftmax(lam=1,mu=-0.1,sigma=1)"
    eq16 = train(GSoftmaxConfig(method="softmax", multilabel_reading="eq16", **base), CPU)
    assert eq16.experiment_id == "mosaics/mlp/softmax(reading=eq16)"
    assert np.allclose(eq16.outputs["scores"], 1 / (1 + np.exp(-eq16.outputs["z"][:, 0::2])), atol=1e-6)


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="'lambda'.*valid names are"):
        from_mapping(GSoftmaxConfig, {"lambda": 1.0})
    with pytest.raises(ConfigError, match="dataset must be one of"):
        GSoftmaxConfig(dataset="imagenet")
    with pytest.raises(ConfigError, match="unknown backbone"):
        GSoftmaxConfig(backbone="vgg16")
    with pytest.raises(ConfigError, match="does not fit dataset"):
        GSoftmaxConfig(dataset="coco", backbone="mlp")
    with pytest.raises(ConfigError, match="single-label loss"):
        GSoftmaxConfig(dataset="mosaics", method="lsoftmax")
    with pytest.raises(ConfigError, match="needs milestones"):
        GSoftmaxConfig(schedule="multistep")
    with pytest.raises(ConfigError, match="sigma_init"):
        GSoftmaxConfig(sigma_init=-1.0)
    assert GSoftmaxConfig(sigma_init=-1.0, sigma_param="raw").sigma_init == -1.0
    with pytest.raises(ConfigError, match="reading"):
        GSoftmaxConfig(multilabel_reading="eq14")


def test_experiment_ids_follow_the_paper_only_for_its_protocol() -> None:
    wrn = dict(dataset="cifar10", backbone="wrn-40-14", epochs=300, batch_size=128, lr=0.1, weight_decay=5e-4,
               schedule="multistep", milestones=(60, 120, 160, 220, 260), gamma=0.2)
    full = (50_000, 10_000)
    assert experiment_id(GSoftmaxConfig(method="softmax", **wrn), *full) == "cifar10/wrn-40-14/softmax"
    assert experiment_id(GSoftmaxConfig(method="gsoftmax", lam=0.5, **wrn), *full) == "cifar10/wrn-40-14/gsoftmax"
    assert experiment_id(GSoftmaxConfig(method="gsoftmax", lam=1.0, **wrn)) == "cifar10/wrn-40-14/gsoftmax(lam=1)"
    short = GSoftmaxConfig(method="softmax", **{**wrn, "epochs": 30})
    assert experiment_id(short) == "cifar10/wrn-40-14/softmax[epochs=30]"
    assert experiment_id(GSoftmaxConfig(method="softmax", **wrn), 16, 8) == "cifar10/wrn-40-14/softmax[data=16/8]"
    malleable = GSoftmaxConfig(method="lsoftmax", **{**wrn, "schedule": "malleable", "epochs": 1100})
    assert experiment_id(malleable) == "cifar10/wrn-40-14-malleable/lsoftmax"
    coco = dict(dataset="coco", backbone="resnet101-gmp", epochs=8, batch_size=16, lr=1e-5, weight_decay=1e-4,
                weights_path="/w.pth", nesterov=True)
    assert experiment_id(GSoftmaxConfig(method="gsoftmax", mu_init=-0.1, **coco)) == \
        "coco/resnet101-gmp-448/gsoftmax(mu=-0.1,sigma=1)"
    assert experiment_id(GSoftmaxConfig(method="softmax", **{**coco, "weights_path": ""})) == \
        "coco/resnet101-gmp-448/softmax[init=random]"
    for config in (GSoftmaxConfig(method="softmax", **wrn), GSoftmaxConfig(method="softmax", **coco)):
        assert experiment_id(config) in PAPER_IDS and protocol_deviations(config) == []
    assert experiment_id(GSoftmaxConfig(method="gsoftmax", lam=1)) == "digits/mlp/gsoftmax(lam=1)"
    assert experiment_id(GSoftmaxConfig(method="gsoftmax", learn_gaussians=False, sigma_param="raw")) == \
        "digits/mlp/gsoftmax(lam=1,sigma_param=raw,frozen)"
    assert not any(experiment_id(GSoftmaxConfig(method=m)) in PAPER_IDS for m in ("softmax", "gsoftmax", "lsoftmax"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_path_on_the_real_format_fixture(tmp_path: Path, name: str) -> None:
    write_cifar_fixture(tmp_path, name, n_train=16, n_test=8)
    config = GSoftmaxConfig(dataset=name, backbone="wrn-10-1", method="gsoftmax", batch_size=8, max_steps=2,
                            eval_batch_size=4, data_root=str(tmp_path), progress="none", schedule="multistep",
                            milestones=(1,))
    result = train(config, CPU)
    m = 10 if name == "cifar10" else 100
    assert result.outputs["x"].shape == (8, m) and len(result.history) >= 1
    assert result.history[-1]["step"] == 2
    assert "data=16/8" in result.experiment_id and "max_steps=2" in result.experiment_id
    assert result.class_names[0] in ("airplane", "apple")


def test_cifar_without_data_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="THESISLIB_DATA"):
        train(GSoftmaxConfig(dataset="cifar10", backbone="wrn-10-1", data_root=str(tmp_path)), CPU)


def test_coco_path_on_the_real_format_fixture(tmp_path: Path) -> None:
    write_coco_fixture(tmp_path, n_train=6, n_test=4)
    config = GSoftmaxConfig(dataset="coco", backbone="resnet18-gmp", method="gsoftmax", image_size=32,
                            batch_size=2, max_steps=2, lr=1e-3, data_root=str(tmp_path), progress="none")
    result = train(config, CPU)
    assert MULTI_KEYS <= set(result.metrics)
    assert result.outputs["x"].shape == (3, 160) and result.outputs["targets"].shape == (3, 80)
    assert result.experiment_id.startswith("coco/resnet18-gmp-32/gsoftmax[")
    assert len(result.per_class["ap"]) == 80


def test_main_round_trip_and_run_through_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = GSoftmaxConfig(method="gsoftmax", seed=3, **FAST)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"method": "gsoftmax", "seed": 3, **{**FAST, "hidden": [32]}}))
    assert main(["--config", str(cfg_file), "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    loaded = GSoftmaxResult.load(tmp_path / "out")
    direct = train(config, CPU)
    assert loaded.config == config and loaded.experiment_id == direct.experiment_id
    assert loaded.metrics == direct.metrics
    assert np.array_equal(loaded.outputs["z"], direct.outputs["z"])
    assert loaded.gaussians == direct.gaussians
    bad = tmp_path / "bad.yaml"
    bad.write_text("lamda: 1\n")
    assert main(["--config", str(bad), "--output", str(tmp_path / "x")]) == 2

    calls = []

    def fake_launch(module, args, nproc, **kwargs):          # what torchrun would run, here in-process
        calls.append((module, nproc))
        assert main(list(args)) == 0
        return ""

    monkeypatch.setattr(gtrain, "launch", fake_launch)
    via = run(config, "cpu", nproc=2, output_dir=tmp_path / "via")
    assert calls == [("thesislib.methods.gsoftmax.train", 2)]
    assert via.metrics == direct.metrics and load_config(tmp_path / "via" / "config.json") == config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    assert main(["--config", cfg, "--output", out, "--device", "cpu"]) == 0


def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    fields = dict(dataset="mosaics", mosaic_train=256, mosaic_test=101, batch_size=64, method="gsoftmax", **FAST)
    single = train(GSoftmaxConfig(**fields), CPU)                  # first: the forked workers inherit the imports
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**fields, "hidden": [32]}))
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(cfg), str(tmp_path / "out")), nprocs=2,
                       start_method="fork")
    ddp = GSoftmaxResult.load(tmp_path / "out")
    assert ddp.world_size == 2 and ddp.outputs["x"].shape == (101, 20)   # gathered from two shards, in order
    np.testing.assert_allclose(ddp.outputs["x"], single.outputs["x"], atol=1e-5)
    assert ddp.metrics["map"] == pytest.approx(single.metrics["map"], abs=1e-3)


@pytest.mark.gpu
def test_cuda_path_with_bf16_autocast_and_on_device_augmentation(tmp_path: Path) -> None:
    write_cifar_fixture(tmp_path, "cifar10", n_train=64, n_test=32)
    for method in ("softmax", "gsoftmax", "lsoftmax"):
        config = GSoftmaxConfig(dataset="cifar10", backbone="wrn-16-2", method=method, batch_size=32, epochs=2,
                                data_root=str(tmp_path), progress="none", amp=True, channels_last=True)
        result = train(config, torch.device("cuda"))
        assert result.outputs["z"].dtype == np.float32 and np.isfinite(result.outputs["z"]).all()
        assert np.isfinite(result.metrics["top1_error"]) and result.history[-1]["step"] == 4
