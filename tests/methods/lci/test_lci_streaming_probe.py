"""LCI's ``probe_mode: streaming`` end to end on tiny fixtures (CPU): the smoke digits through the ``thesislib run``
parameter path, the ImageNet probe of Table 4.5 (all of train, single and ten-crop ids) and Table 4.6's Places205
probes of the ImageNet C."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.chapters import get_chapter
from thesislib.config import ConfigError
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.data.scene_datasets import write_places205_fixture
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.data import chapter_data
from thesislib.methods.lci.experiments import aggregate, experiment_id, random_experiment_id, run_replicate
from thesislib.runner import resolve_parameters, validate_parameters

torch.set_num_threads(1)
CHAPTER = get_chapter("lci")
TINY = ["load_size=16", "image_size=12", "patch_size=8", "border=2", "classifier_width=0.03", "fc_dim=256",
        "conv1_kernel=3", "conv1_stride=2", "inpainter_width=4", "iterations=2", "batch_size=4", "n_unlabelled=16",
        "probe_epochs=2", "probe_dims=64", "diagnostics=false", "diag_test=16", "n_seeds=1", "progress=none",
        "probe_layers=[conv1,conv5]", "tiles_test=false"]  # Fig. 4.1 has its own tests
RGB = dict(load_size=32, image_size=24, patch_size=8, border=2, classifier_width=0.03, fc_dim=64, conv1_kernel=3,
           conv1_stride=2, inpainter_width=4, iterations=1, batch_size=4, n_unlabelled=8, probe_epochs=2,
           probe_dims=64, probe_layers=["conv1", "conv5"], eval_batch_size=8, diagnostics=False, diag_test=8,
           progress="none", n_seeds=1, probe_mode="streaming", probe_size=20, probe_test_crops=10)


def _params(overrides: list[str]):
    return validate_parameters(CHAPTER, resolve_parameters(CHAPTER, "smoke", TINY + overrides), "smoke")


def test_probe_mode_is_validated_on_the_run_path() -> None:
    assert _params([]).probe_mode == "cached"  # smoke keeps the cached probe (notebook time, seed records)
    with pytest.raises(ConfigError, match="probe_mode"):
        _params(["probe_mode=fast"])


def test_smoke_streaming_replicate_runs_end_to_end() -> None:
    params = _params(["probe_mode=streaming"])
    result = run_replicate(params, 0, torch.device("cpu"))
    assert set(result.probe_ssl) == set(result.probe_random) == {"conv1", "conv5"}
    assert all(0.0 <= v <= 1.0 for v in result.probe_ssl.values())
    assert result.probe_ssl_multicrop == {}  # no ten-crop test on the digits
    agg = aggregate(params, [result])
    assert experiment_id(params) == "digits12/rot+warp+lci" and set(agg) >= {"digits12/rot+warp+lci",
                                                                            "digits12/random"}


def test_imagenet_streaming_probe_trains_on_all_of_train_and_records_both_crops(tmp_path: Path) -> None:
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=4, n_val=2)
    params = lci_config(RGB, data="imagenet", data_root=str(tmp_path))
    data = chapter_data(params, 0)
    assert len(data.probe_train) == 12 and data.probe_crop == 20 and data.probe_classes == 1000  # no subsample
    x, _ = data.probe_train[0]
    assert x.shape == (3, 20, 20) and data.probe_test[0][0].shape == (3, 23, 23)  # 1.15 x 20, cropped by the probe
    result = run_replicate(params, 0, torch.device("cpu"))
    assert set(result.probe_ssl_multicrop) == set(result.probe_ssl) == {"conv1", "conv5"}
    agg = aggregate(params, [result])
    run = experiment_id(params)  # 8-px LCI windows and 20-px probes: not Table 4.5's setting, off the table
    assert run == "imagenet/rot+warp+lci+patch8+probe20" and "reduced-probe" not in run
    for run_id in (run, f"{run}-multicrop", "imagenet/random+probe20", "imagenet/random+probe20-multicrop"):
        assert set(agg[run_id]) >= {"probe_conv1", "probe_conv5"}, run_id


def test_places205_probes_of_the_imagenet_c(tmp_path: Path) -> None:
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=3, n_val=2)
    write_places205_fixture(tmp_path, n_train=3, n_val=2)
    params = lci_config(RGB, data="imagenet", data_root=str(tmp_path), probe_data="places205")
    data = chapter_data(params, 0)
    assert len(data.probe_train) == 9 and len(data.probe_test) == 6 and data.probe_classes == 205
    assert len(data.unlabelled) == 8  # C still trains on ImageNet
    result = run_replicate(params, 0, torch.device("cpu"))
    agg = aggregate(params, [result])
    assert random_experiment_id(params) == "places/random+probe20"
    assert {"places/rot+warp+lci+patch8+probe20", "places/rot+warp+lci+patch8+probe20-multicrop"} <= set(agg)
    (tmp_path / "places205" / "trainvalsplit_places205" / "val_places205.csv").unlink()
    with pytest.raises(Exception, match="places205"):
        chapter_data(params, 0)


def test_probe_batch_size_is_the_protocols_64_in_the_full_configs() -> None:
    """Review #4: the heads train at the official batch 64 in every full config; smoke keeps eval_batch_size."""
    from thesislib.config import load_yaml
    from thesislib.eval.streaming_probe import chapter_probe_config
    from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config

    configs = Path(__file__).resolve().parents[3] / "configs"
    for path in sorted((configs / "lci").glob("full*.yaml")):
        params = lci_config(load_yaml(path))
        if params.streaming_probe:
            assert chapter_probe_config(params, 0).batch_size == 64, path.name
    for path in sorted((configs / "spotting_artifacts").glob("full*.yaml")):
        params = spotting_artifacts_config(load_yaml(path))
        if params.probe_mode == "streaming":
            assert chapter_probe_config(params, 0).batch_size == 64, path.name
    smoke = _params([])
    assert smoke.probe_batch_size == 0 and chapter_probe_config(smoke, 0).batch_size == smoke.eval_batch_size
    assert chapter_probe_config(_params(["probe_batch_size=16"]), 0).batch_size == 16
    with pytest.raises(ConfigError, match="probe_batch_size"):
        _params(["probe_batch_size=-1"])
