"""The chapter's transfer evaluations: Table 3.2's ten-fold path on an STL-10 fixture, the VOC07 classification
path on a VOC fixture, the configs and the recorded ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml
from thesislib.data.fixtures import write_stl10_fixture
from thesislib.data.selfsup_fixtures import write_voc07_fixture
from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config
from thesislib.methods.spotting_artifacts.evaluate import stl10_finetune_net, stl10_folds, transfer_results
from thesislib.methods.spotting_artifacts.experiments import ReplicateResult, aggregate, transfer_experiment_ids
from thesislib.methods.spotting_artifacts.train import build_discriminator

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "spotting_artifacts"
# an RGB C at 16 px (conv5 4x4 = the 4x4 latent grid), tiny everything
TINY_RGB = dict(data="stl10", image_size=16, encoder_channels=(4, 8, 8), disc_width=0.0625, disc_hidden=8,
                conv1_kernel=3, conv1_stride=1, probe_dims=64, progress="none", threads=1, eval_batch_size=64,
                transfer_workers=0)


def test_stl10_fold_protocol_runs_both_variants_on_a_fixture(tmp_path: Path) -> None:
    write_stl10_fixture(tmp_path, n_train=40, n_test=20, fold_size=8)
    params = spotting_artifacts_config({**TINY_RGB, "data_root": str(tmp_path), "transfer": ["stl10_folds"],
                                        "fold_epochs": 2, "fold_batch_size": 4, "fold_limit": 3})
    torch.manual_seed(0)
    disc = build_discriminator(params)
    out = stl10_folds(params, disc, torch.device("cpu"), seed=0)
    assert set(out) == {"frozen", "finetuned"}
    for variant in out.values():
        assert variant["n_folds"] == 3 and len(variant["per_fold"]) == 3
        assert all(0.0 <= a <= 100.0 for a in variant["per_fold"])
        assert variant["std"] == pytest.approx(torch.tensor(variant["per_fold"]).std().item(), rel=1e-6)
    # the fine-tuned variant worked on a copy: C's own BN after conv5 is still there
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in disc.modules())
    agg = aggregate(params, [ReplicateResult(0, transfer={"stl10_folds": out})])
    ids = transfer_experiment_ids(params)
    assert agg[ids["finetuned"]]["stl10_acc"] == pytest.approx(out["finetuned"]["mean"])
    assert agg[ids["frozen"]]["stl10_acc_sd"] == pytest.approx(out["frozen"]["std"])


def test_stl10_finetuned_net_is_alexnet_without_pool5() -> None:
    # review finding 2: the thesis drops pool5 and keeps the standard fc6 / fc7 (fc6 reads the whole conv5 map)
    params = spotting_artifacts_config({**TINY_RGB})
    torch.manual_seed(0)
    disc = build_discriminator(params)
    net = stl10_finetune_net(params, disc)
    conv5 = disc.trunk.conv_layers(torch.zeros(1, 3, 16, 16))["conv5"]
    fcs = net.new_layers()
    assert [type(m) for m in fcs] == [torch.nn.Linear] * 3
    assert fcs[0].in_features == conv5[0].numel() == disc.trunk.channels[4] * 4 * 4
    assert fcs[0].out_features == fcs[1].out_features == params.disc_hidden and fcs[2].out_features == 10


def test_voc07_classification_path_on_a_fixture(tmp_path: Path, rescale_calls: list[dict]) -> None:
    calls = rescale_calls  # the path must rescale (transfer_rescale) and must not when switched off
    write_voc07_fixture(tmp_path, n_trainval=8, n_test=6, size=(24, 28))
    params = spotting_artifacts_config({**TINY_RGB, "data": "imagenet", "data_root": str(tmp_path),
                                        "transfer": ["voc07_cls"], "voc_resize": 20, "voc_crop": 16,
                                        "voc_test_crops": 2, "voc_cls_iterations": 3, "voc_cls_batch_size": 4})
    torch.manual_seed(0)
    out = transfer_results(params, build_discriminator(params), torch.device("cpu"), seed=0)
    assert set(out) == {"voc07_cls_map"} and 0.0 <= out["voc07_cls_map"] <= 100.0
    assert len(calls) == 1 and calls[0]["folded"] == 1  # C's BN after conv5
    r = calls[0]["rates_after"]
    assert len(calls[0]["layers"]) == 5 + 3 and float(r.max() / r.min()) < 1.1  # conv1-5, fc6-8 (LRN: tolerance)
    off = spotting_artifacts_config({**params.__dict__, "transfer_rescale": False})
    transfer_results(off, build_discriminator(off), torch.device("cpu"), seed=0)
    assert len(calls) == 1
    agg = aggregate(params, [ReplicateResult(0, transfer=out)])
    assert agg["voc/ours"]["voc07_cls_map"] == pytest.approx(out["voc07_cls_map"])


def test_transfer_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="RGB"):
        spotting_artifacts_config({"transfer": ["voc07_cls"]})  # the grey smoke digits
    with pytest.raises(ConfigError, match="stl10_folds"):
        spotting_artifacts_config({**TINY_RGB, "data": "imagenet", "transfer": ["stl10_folds"]})
    with pytest.raises(ConfigError, match="not among"):
        spotting_artifacts_config({**TINY_RGB, "transfer": ["voc07_clx"]})


@pytest.mark.parametrize("name, tasks", [("full_stl10", ("stl10_folds",)), ("full_voc07", ("voc07_cls",)),
                                         ("full_voc07_det", ("voc07_det",)), ("full_voc12_seg", ("voc12_seg",)),
                                         ("full", ()), ("smoke", ())])
def test_full_configs_name_their_transfer(name: str, tasks: tuple[str, ...]) -> None:
    text = (CONFIGS / f"{name}.yaml").read_text()
    params = spotting_artifacts_config(load_yaml(CONFIGS / f"{name}.yaml"))
    assert params.transfer == tasks
    assert "not wired" not in text
    if name in ("full_voc07_det", "full_voc12_seg"):
        assert "NOT" in text  # the difference to Fast R-CNN / FCN is stated


def test_voc_detection_and_segmentation_paths_on_fixtures(tmp_path: Path) -> None:
    from thesislib.data.seg_fixtures import write_voc_fixture

    write_voc07_fixture(tmp_path, n_trainval=4, n_test=2, size=(40, 48))
    write_voc_fixture(tmp_path, n_train=3, n_val=2)  # VOC2012 next to VOC2007 under voc/VOCdevkit
    params = spotting_artifacts_config({**TINY_RGB, "data": "imagenet", "data_root": str(tmp_path),
                                        "transfer": ["voc07_det", "voc12_seg"], "voc_det_scales": [40],
                                        "voc_det_test_scale": 40, "voc_det_iterations": 1, "voc_seg_size": 32,
                                        "voc_seg_iterations": 1})
    torch.manual_seed(0)
    out = transfer_results(params, build_discriminator(params), torch.device("cpu"), seed=0)
    assert set(out) == {"voc07_det_map", "voc12_seg_miou"}
    assert 0.0 <= out["voc12_seg_miou"] <= 100.0
    assert out["voc07_det_map"] != out["voc07_det_map"] or 0.0 <= out["voc07_det_map"] <= 100.0  # NaN: no hit


def test_missing_transfer_data_is_reported_before_pre_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    # review finding 6: the transfer data sets were first opened after both pre-training stages
    from thesislib.methods.spotting_artifacts import experiments

    def trained(*_: object, **__: object) -> None:
        raise AssertionError("pre-training started before the transfer data were checked")

    monkeypatch.setattr(experiments, "run_stage", trained)
    monkeypatch.setattr(experiments, "chapter_data", trained)
    root = write_stl10_fixture(tmp_path, n_train=40, n_test=20, fold_size=8)
    (root / "stl10_binary" / "fold_indices.txt").unlink()
    params = spotting_artifacts_config({**TINY_RGB, "data_root": str(tmp_path), "transfer": ["stl10_folds"]})
    with pytest.raises(Exception, match="fold_indices"):
        experiments.run_replicate(params, 0, torch.device("cpu"))
    params = spotting_artifacts_config({**TINY_RGB, "data": "imagenet", "data_root": str(tmp_path),
                                        "transfer": ["voc07_cls"]})
    with pytest.raises(Exception, match="voc"):
        experiments.run_replicate(params, 0, torch.device("cpu"))


def test_recorded_ids_name_the_protocol_switches() -> None:
    # review finding 7: a 3-fold or unrescaled run was recorded under the thesis protocol's ids
    base = {**TINY_RGB, "data": "imagenet"}
    assert transfer_experiment_ids(spotting_artifacts_config(base)) == {
        "voc": "voc/ours", "frozen": "stl10/folds-frozen", "finetuned": "stl10/folds-finetuned"}
    ids = transfer_experiment_ids(spotting_artifacts_config({**base, "fold_limit": 3, "transfer_rescale": False}))
    assert ids == {"voc": "voc/ours+no-rescale", "frozen": "stl10/folds-frozen+folds3",
                   "finetuned": "stl10/folds-finetuned+folds3+no-rescale"}
    assert transfer_experiment_ids(spotting_artifacts_config({**base, "fold_limit": 10}))["frozen"] == \
        "stl10/folds-frozen"
