"""The G-softmax training entry points: runs, ids, the three methods, lam = 0, CIFAR/COCO paths, CLI, DDP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import thesislib.methods.gsoftmax.train as gtrain
from thesislib.config import ConfigError, from_mapping
from thesislib.data import DatasetNotFoundError, write_cifar_fixture, write_coco_fixture
from thesislib.methods.gsoftmax.config import GSoftmaxParams, RunSpec, load_spec, spec_to_dict
from thesislib.methods.gsoftmax.protocol import experiment_id, protocol_deviations
from thesislib.methods.gsoftmax.train import GSoftmaxResult, engine_config, main, run, train
from thesislib.replication import paper_numbers

CPU = torch.device("cpu")
FAST = dict(epochs=2, multi_epochs=2, progress="none", hidden=(32,), multi_hidden=(32,))
SINGLE_KEYS = {"top1_error", "test_loss", "logit_sd", "emp_compactness", "emp_separability", "emp_ratio", "emp_gap",
               "emp_sigma_pos"}
MULTI_KEYS = {"map", "map_eq21", "cp", "cr", "cf1", "cf1_eq22", "op", "or", "of1", "emp_compactness"}
PAPER_IDS = {p.experiment for p in paper_numbers("gsoftmax")}


def spec(method: str = "gsoftmax", task: str = "single", seed: int = 0, mu: float = 0.0, sigma: float = 1.0,
         fast: bool = True, **params) -> RunSpec:
    """One run of ``GSoftmaxParams(**params)`` (the two-epoch FAST settings unless ``fast=False``)."""
    return RunSpec(GSoftmaxParams(**({**FAST, **params} if fast else params)), task, method, seed, mu, sigma)


@pytest.mark.parametrize("method", ["softmax", "gsoftmax", "lsoftmax"])
def test_two_epoch_digits_run_of_each_method(method: str) -> None:
    result = train(spec(method), CPU)
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
    soft = train(spec("softmax"), CPU)
    zero = train(spec("gsoftmax", lam=0.0), CPU)
    one = train(spec("gsoftmax", lam=1.0), CPU)
    assert np.array_equal(soft.outputs["x"], zero.outputs["x"])      # bit for bit, after 2 epochs of SGD
    assert np.array_equal(soft.outputs["z"], zero.outputs["z"])
    assert soft.metrics == {k: v for k, v in zero.metrics.items() if not k.startswith("learned_")}
    assert [r["loss"] for r in soft.history] == [r["loss"] for r in zero.history]
    assert not np.array_equal(soft.outputs["x"], one.outputs["x"])


def test_multilabel_mosaic_run_and_readings() -> None:
    base = dict(task="multi", mosaic_train=256, mosaic_test=128, multi_batch_size=64)
    result = train(spec("gsoftmax", mu=-0.1, **base), CPU)
    assert MULTI_KEYS <= set(result.metrics)
    assert result.outputs["x"].shape == (128, 20) and result.outputs["scores"].shape == (128, 10)
    assert result.experiment_id == "mosaics/mlp/gsoftmax(lam=1,mu=-0.1,sigma=1)"
    eq16 = train(spec("softmax", multi_reading="eq16", **base), CPU)
    assert eq16.experiment_id == "mosaics/mlp/softmax(reading=eq16)"
    assert np.allclose(eq16.outputs["scores"], 1 / (1 + np.exp(-eq16.outputs["z"][:, 0::2])), atol=1e-6)


def test_run_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="'lambda'.*valid names are"):
        from_mapping(GSoftmaxParams, {"lambda": 1.0})
    with pytest.raises(ConfigError, match="single_dataset: 'imagenet' not among"):
        GSoftmaxParams(single_dataset="imagenet")
    with pytest.raises(ConfigError, match="unknown backbone"):
        GSoftmaxParams(single_backbone="vgg16")
    with pytest.raises(ConfigError, match="does not fit multi_dataset 'coco'"):
        GSoftmaxParams(multi_dataset="coco", multi_backbone="mlp")
    with pytest.raises(ConfigError, match="single-label loss"):
        RunSpec(GSoftmaxParams(), "multi", "lsoftmax")
    with pytest.raises(ConfigError, match="switched off"):
        RunSpec(GSoftmaxParams(multi_dataset="none"), "multi", "softmax")
    with pytest.raises(ConfigError, match="needs milestones"):
        GSoftmaxParams(schedule="multistep")
    with pytest.raises(ConfigError, match="sigma"):
        RunSpec(GSoftmaxParams(), sigma_init=-1.0)
    assert RunSpec(GSoftmaxParams(sigma_param="raw"), sigma_init=-1.0).sigma_init == -1.0
    with pytest.raises(ConfigError, match="multi_inits"):
        GSoftmaxParams(multi_inits=((0.0, 0.0),))
    with pytest.raises(ConfigError, match="multi_reading"):
        GSoftmaxParams(multi_reading="eq14")


def test_every_parameter_reaches_the_run_or_is_bookkeeping() -> None:
    """Changing any GSoftmaxParams field changes what a run of the part it belongs to sees (its
    properties, its params, its engine TrainConfig); the fields that do not are run bookkeeping."""
    import dataclasses

    bookkeeping = {"seed", "n_seeds", "scale", "output_dir", "device", "threads", "nproc", "figure_class",
                   "single_methods", "single_dataset", "multi_dataset", "multi_inits", "single_init"}
    base = GSoftmaxParams()
    multi_fields = {f.name for f in dataclasses.fields(base) if f.name.startswith("multi_")} | {
        "mosaic_train", "mosaic_test", "image_size", "weights_path"}
    props = [n for n, v in vars(RunSpec).items() if isinstance(v, property)]

    def view(r: RunSpec) -> tuple:
        return (*(getattr(r, n) for n in props), engine_config(r))

    changed = {"lam": 0.5, "multi_lam": 0.5, "hidden": (8,), "multi_hidden": (8,), "epochs": 3, "multi_epochs": 3,
               "batch_size": 7, "multi_batch_size": 7, "lr": 0.2, "multi_lr": 0.2, "momentum": 0.5,
               "multi_momentum": 0.5, "nesterov": True, "multi_nesterov": True, "weight_decay": 0.0,
               "multi_weight_decay": 0.0, "schedule": "cosine", "max_steps": 5, "gaussian_lr": 0.3, "amp": False,
               "channels_last": False, "compile": True, "log_every": 3, "num_workers": 2, "progress": "log",
               "checkpoint_root": "/ck", "multi_reading": "eq16"}
    for name, value in changed.items():
        part = "multi" if name in multi_fields else "single"
        before, after = RunSpec(base, part), RunSpec(dataclasses.replace(base, **{name: value}), part)
        assert view(before) != view(after), name
    read_by_modules = {"sigma_param", "learn_gaussians", "lsoftmax_margin", "lsoftmax_beta", "milestones", "gamma",
                       "malleable_pieces", "malleable_base", "test_fraction", "mosaic_train", "mosaic_test",
                       "image_size", "weights_path", "data_root", "eval_batch_size", "single_backbone",
                       "multi_backbone"}   # read as spec.params.<name> by data, model, train, evaluate
    every = {f.name for f in dataclasses.fields(base)}
    assert every == bookkeeping | set(changed) | read_by_modules, every ^ (bookkeeping | set(changed) | read_by_modules)
    settings = engine_config(RunSpec(dataclasses.replace(base, checkpoint_root="/ck", max_steps=5), "multi", seed=7))
    assert (settings.seed, settings.batch_size, settings.epochs, settings.max_steps) == (7, 64, 15, 5)
    assert settings.resume and settings.checkpoint_dir == "/ck/mosaics_mlp_gsoftmax_lam=1/seed7"


def test_experiment_ids_follow_the_paper_only_for_its_protocol() -> None:
    wrn = dict(single_dataset="cifar10", single_backbone="wrn-40-14", epochs=300, batch_size=128, lr=0.1,
               weight_decay=5e-4, schedule="multistep", milestones=(60, 120, 160, 220, 260), gamma=0.2)
    full = (50_000, 10_000)
    assert experiment_id(spec("softmax", fast=False, **wrn), *full) == "cifar10/wrn-40-14/softmax"
    assert experiment_id(spec("gsoftmax", fast=False, lam=0.5, **wrn), *full) == "cifar10/wrn-40-14/gsoftmax"
    assert experiment_id(spec("gsoftmax", fast=False, lam=1.0, **wrn)) == "cifar10/wrn-40-14/gsoftmax(lam=1)"
    assert experiment_id(spec("softmax", fast=False, **{**wrn, "epochs": 30})) == "cifar10/wrn-40-14/softmax[epochs=30]"
    assert experiment_id(spec("softmax", fast=False, **wrn), 16, 8) == "cifar10/wrn-40-14/softmax[data=16/8]"
    malleable = spec("lsoftmax", fast=False, **{**wrn, "schedule": "malleable", "epochs": 1100})
    assert experiment_id(malleable) == "cifar10/wrn-40-14-malleable/lsoftmax"
    coco = dict(multi_dataset="coco", multi_backbone="resnet101-gmp", multi_epochs=8, multi_batch_size=16,
                multi_lr=1e-5, multi_weight_decay=1e-4, weights_path="/w.pth", multi_nesterov=True)
    assert experiment_id(spec("gsoftmax", "multi", mu=-0.1, fast=False, **coco)) == \
        "coco/resnet101-gmp-448/gsoftmax(mu=-0.1,sigma=1)"
    assert experiment_id(spec("softmax", "multi", fast=False, **{**coco, "weights_path": ""})) == \
        "coco/resnet101-gmp-448/softmax[init=random]"
    for config in (spec("softmax", fast=False, **wrn), spec("softmax", "multi", fast=False, **coco)):
        assert experiment_id(config) in PAPER_IDS and protocol_deviations(config) == []
    assert experiment_id(spec("gsoftmax", lam=1)) == "digits/mlp/gsoftmax(lam=1)"
    assert experiment_id(spec("gsoftmax", learn_gaussians=False, sigma_param="raw")) == \
        "digits/mlp/gsoftmax(lam=1,sigma_param=raw,frozen)"
    assert not any(experiment_id(spec(m)) in PAPER_IDS for m in ("softmax", "gsoftmax", "lsoftmax"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_path_on_the_real_format_fixture(tmp_path: Path, name: str) -> None:
    write_cifar_fixture(tmp_path, name, n_train=16, n_test=8)
    config = spec("gsoftmax", single_dataset=name, single_backbone="wrn-10-1", batch_size=8, max_steps=2,
                  eval_batch_size=4, data_root=str(tmp_path), schedule="multistep", milestones=(1,))
    result = train(config, CPU)
    m = 10 if name == "cifar10" else 100
    assert result.outputs["x"].shape == (8, m) and len(result.history) >= 1
    assert result.history[-1]["step"] == 2
    assert "data=16/8" in result.experiment_id and "max_steps=2" in result.experiment_id
    assert result.class_names[0] in ("airplane", "apple")


def test_cifar_without_data_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="THESISLIB_DATA"):
        train(spec(single_dataset="cifar10", single_backbone="wrn-10-1", data_root=str(tmp_path)), CPU)


def test_coco_path_on_the_real_format_fixture(tmp_path: Path) -> None:
    write_coco_fixture(tmp_path, n_train=6, n_test=4)
    config = spec("gsoftmax", "multi", multi_dataset="coco", multi_backbone="resnet18-gmp", image_size=32,
                  multi_batch_size=2, max_steps=2, multi_lr=1e-3, data_root=str(tmp_path))
    result = train(config, CPU)
    assert MULTI_KEYS <= set(result.metrics)
    assert result.outputs["x"].shape == (3, 160) and result.outputs["targets"].shape == (3, 80)
    assert result.experiment_id.startswith("coco/resnet18-gmp-32/gsoftmax[")
    assert len(result.per_class["ap"]) == 80


def test_main_round_trip_and_run_through_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = spec("gsoftmax", seed=3)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(spec_to_dict(config)))
    assert main(["--config", str(cfg_file), "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    loaded = GSoftmaxResult.load(tmp_path / "out")
    direct = train(config, CPU)
    assert loaded.config == config and loaded.experiment_id == direct.experiment_id
    assert loaded.metrics == direct.metrics
    assert np.array_equal(loaded.outputs["z"], direct.outputs["z"])
    assert loaded.gaussians == direct.gaussians
    bad = tmp_path / "bad.yaml"
    bad.write_text("params: {lamda: 1}\n")
    assert main(["--config", str(bad), "--output", str(tmp_path / "x")]) == 2

    calls = []

    def fake_launch(module, args, nproc, **kwargs):          # what torchrun would run, here in-process
        calls.append((module, nproc))
        assert main(list(args)) == 0
        return ""

    monkeypatch.setattr(gtrain, "launch", fake_launch)
    via = run(config, "cpu", nproc=2, output_dir=tmp_path / "via")
    assert calls == [("thesislib.methods.gsoftmax.train", 2)]
    assert via.metrics == direct.metrics and load_spec(tmp_path / "via" / "config.json") == config


def test_two_process_ddp_matches_one_process(tmp_path: Path, torchrun_gloo) -> None:
    config = spec("gsoftmax", "multi", mosaic_train=256, mosaic_test=101, multi_batch_size=64)
    single = train(config, CPU)                  # first: the forked workers inherit the imports
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(spec_to_dict(config)))
    torchrun_gloo(main, ["--config", cfg, "--output", tmp_path / "out", "--device", "cpu"])
    ddp = GSoftmaxResult.load(tmp_path / "out")
    assert ddp.world_size == 2 and ddp.outputs["x"].shape == (101, 20)   # gathered from two shards, in order
    np.testing.assert_allclose(ddp.outputs["x"], single.outputs["x"], atol=1e-5)
    assert ddp.metrics["map"] == pytest.approx(single.metrics["map"], abs=1e-3)


@pytest.mark.gpu
def test_cuda_path_with_bf16_autocast_and_on_device_augmentation(tmp_path: Path) -> None:
    write_cifar_fixture(tmp_path, "cifar10", n_train=64, n_test=32)
    for method in ("softmax", "gsoftmax", "lsoftmax"):
        config = spec(method, single_dataset="cifar10", single_backbone="wrn-16-2", batch_size=32,
                      data_root=str(tmp_path), amp=True, channels_last=True)
        result = train(config, torch.device("cuda"))
        assert result.outputs["z"].dtype == np.float32 and np.isfinite(result.outputs["z"]).all()
        assert np.isfinite(result.metrics["top1_error"]) and result.history[-1]["step"] == 4
