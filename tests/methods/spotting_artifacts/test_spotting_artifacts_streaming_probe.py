"""spotting_artifacts' ``probe_mode``: Table 3.4's ImageNet probe streamed over all of train (full config), the cached
probe on ``probe_per_class`` images per class recorded off the table (``+reduced-probe``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from thesislib.chapters import get_chapter
from thesislib.config import ConfigError, load_yaml
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config
from thesislib.methods.spotting_artifacts.data import chapter_data
from thesislib.methods.spotting_artifacts.experiments import (
    ReplicateResult,
    aggregate,
    experiment_id,
    run_replicate,
)
from thesislib.replication import paper_numbers
from thesislib.runner import resolve_parameters, validate_parameters

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "spotting_artifacts"
CHAPTER = get_chapter("spotting_artifacts")
TINY = dict(data="imagenet", image_size=16, encoder_channels=(4, 8, 8), disc_width=0.0625, disc_hidden=8,
            conv1_kernel=3, conv1_stride=1, ae_iterations=2, iterations=2, batch_size=4, n_unlabelled=8,
            probe_epochs=2, probe_dims=64, history_size=4, eval_batch_size=8, progress="none", n_seeds=1,
            probe_layers=["conv1", "conv5"])


def test_probe_mode_is_validated_and_smoke_stays_cached() -> None:
    smoke = validate_parameters(CHAPTER, resolve_parameters(CHAPTER, "smoke", []), "smoke")
    assert smoke.probe_mode == "cached"
    with pytest.raises(ConfigError, match="probe_mode"):
        validate_parameters(CHAPTER, resolve_parameters(CHAPTER, "smoke", ["probe_mode=fast"]), "smoke")
    with pytest.raises(ConfigError, match="probe_size"):
        spotting_artifacts_config({"probe_size": 224})  # the digits: no such protocol
    with pytest.raises(ConfigError, match="probe_schedule"):
        spotting_artifacts_config({"probe_schedule": "step"})


def test_full_config_streams_table_3_4s_probe_and_the_cached_one_is_off_the_table() -> None:
    ids = {n.experiment for n in paper_numbers("spotting_artifacts")}
    full = spotting_artifacts_config(load_yaml(CONFIGS / "full.yaml"))
    assert (full.probe_mode, full.probe_size) == ("streaming", 224)
    assert experiment_id(full) == "imagenet/damage-repair" in ids
    cached = replace(full, probe_mode="cached", probe_size=0)
    assert experiment_id(cached) == "imagenet/damage-repair+reduced-probe" not in ids
    assert experiment_id(replace(full, probe_size=0)) == "imagenet/damage-repair+probe128" not in ids


def test_full_config_records_the_random_probes_as_table_3_4s_random_row() -> None:
    """Review #2: the random C's streamed probes reach ``imagenet/random``; the cached ones stay off the table."""
    ids = {n.experiment for n in paper_numbers("spotting_artifacts")}
    full = spotting_artifacts_config(load_yaml(CONFIGS / "full.yaml"))
    results = [ReplicateResult(s, probe_ssl={"conv1": 0.2}, probe_random={"conv1": 0.1 + 0.01 * s}) for s in range(2)]
    out = aggregate(full, results)
    assert "imagenet/random" in ids and out["imagenet/random"]["probe_conv1"]["mean"] == pytest.approx(10.5)
    assert out["imagenet/damage-repair"]["random_probe_conv1"]["mean"] == pytest.approx(10.5)
    cached = aggregate(replace(full, probe_mode="cached", probe_size=0), results)
    assert set(cached) == {"imagenet/damage-repair+reduced-probe", "imagenet/random+reduced-probe"}
    assert "imagenet/random+reduced-probe" not in ids


def test_streaming_imagenet_probe_end_to_end(tmp_path: Path) -> None:
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=4, n_val=2)
    params = spotting_artifacts_config({**TINY, "data_root": str(tmp_path), "probe_mode": "streaming",
                                        "probe_size": 20})
    data = chapter_data(params, 0)
    assert len(data.probe_train) == 12 and data.probe_crop == 20 and data.probe_classes == 1000  # all of train
    assert data.probe_train[0][0].shape == (3, 20, 20) and data.probe_test[0][0].shape == (3, 23, 23)
    result = run_replicate(params, 0, torch.device("cpu"))
    assert set(result.probe_ssl) == set(result.probe_random) == {"conv1", "conv5"}
    agg = aggregate(params, [result])
    assert {"probe_conv1", "random_probe_conv5"} <= set(agg["imagenet/damage-repair+probe20"])
