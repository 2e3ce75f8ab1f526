"""LCI's Table 4.3 protocol: one logistic regression per CelebA attribute on every frozen conv layer, scored by the
mean attribute average precision, recorded as ``celeba_ap_conv<k>`` (in %) under ``celeba/<transforms>`` and
``celeba/random``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from thesislib.config import load_yaml, replace
from thesislib.data.celeba import ATTR_FILE, N_ATTRIBUTES
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.pixelcnn_fixtures import write_celeba_fixture
from thesislib.data.selfsup_fixtures import write_celeba_attributes
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.data import chapter_data
from thesislib.methods.lci.evaluate import probe_accuracies, probe_scores, random_classifier
from thesislib.methods.lci.experiments import ReplicateResult, aggregate, experiment_id, random_experiment_id

ROOT = Path(__file__).resolve().parents[3]
TINY_CELEBA = dict(data="celeba", load_size=16, image_size=12, patch_size=8, border=2, classifier_width=0.03,
                   fc_dim=256, conv1_kernel=3, conv1_stride=2, inpainter_width=4, probe_epochs=3, probe_dims=64,
                   probe_layers=["conv1", "conv5"], eval_batch_size=8, progress="none",
                   probe_mode="streaming")


def _celeba(tmp_path: Path, partition: tuple[int, int, int] = (10, 2, 6)) -> tuple[Path, np.ndarray]:
    base = write_celeba_fixture(tmp_path, n_images=sum(partition), partition=partition)
    return base, write_celeba_attributes(base, seed=1)


def test_full_celeba_config_probes_every_layer_for_100_epochs_on_96_crops() -> None:
    params = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_celeba.yaml"))
    assert params.probe_epochs == 100 and params.image_size == 96
    assert params.probe_layers == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert "not wired" not in (ROOT / "configs" / "lci" / "full_celeba.yaml").read_text()


def test_celeba_probe_data_are_the_official_partition_with_40_attributes(tmp_path: Path) -> None:
    base, values = _celeba(tmp_path)
    data = chapter_data(lci_config(TINY_CELEBA, data_root=str(base.parent)), 0)
    assert data.multilabel and len(data.probe_train) == 10 and len(data.probe_test) == 6
    image, attrs = data.probe_test[0]
    assert image.shape == (3, 12, 12) and image.dtype == torch.float32 and -1.0 <= float(image.min())
    assert attrs.shape == (N_ATTRIBUTES,)
    # the official test partition is the last 6 files; the attributes are those lines, mapped to {0, 1}
    assert torch.equal(attrs, torch.from_numpy((values[12] > 0).astype(np.float32)))
    assert torch.equal(data.probe_train[3][1], torch.from_numpy((values[3] > 0).astype(np.float32)))


def test_celeba_without_the_attribute_file_names_it(tmp_path: Path) -> None:
    base, _ = _celeba(tmp_path)
    (base / ATTR_FILE).unlink()
    with pytest.raises(DatasetNotFoundError, match=ATTR_FILE):
        chapter_data(lci_config(TINY_CELEBA, data_root=str(base.parent)), 0)


def test_celeba_probe_is_the_mean_attribute_ap_of_each_layer(tmp_path: Path) -> None:
    base, _ = _celeba(tmp_path)
    params = lci_config(TINY_CELEBA, data_root=str(base.parent))
    data = chapter_data(params, 0)
    net = random_classifier(params, 0)
    aps, multi = probe_scores(params, net, data, torch.device("cpu"), 0)  # streaming: random crops every epoch
    assert set(aps) == {"conv1", "conv5"} and multi == {}
    assert all(0.0 < v <= 1.0 for v in aps.values())  # a mean of APs (each > 0 when the attribute has a positive)
    again, _ = probe_scores(params, net, data, torch.device("cpu"), 0)
    assert again == aps  # seeded (the crops too), deterministic on CPU
    cached = replace(params, probe_mode="cached")
    fixed = probe_accuracies(cached, net, data.probe_train, data.probe_test, torch.device("cpu"), 0, multilabel=True)
    assert set(fixed) == {"conv1", "conv5"} and all(0.0 < v <= 1.0 for v in fixed.values())


def test_celeba_aps_are_recorded_in_percent_under_the_table_4_3_ids() -> None:
    params = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_celeba.yaml"))
    reps = [ReplicateResult(s, probe_ssl={"conv1": 0.70 + 0.02 * s, "conv5": 0.6},
                            probe_random={"conv1": 0.65, "conv5": 0.5}) for s in range(2)]
    agg = aggregate(params, reps)
    assert experiment_id(params) == "celeba/rot+warp+lci" and random_experiment_id(params) == "celeba/random"
    assert agg["celeba/rot+warp+lci"]["celeba_ap_conv1"]["mean"] == pytest.approx(71.0)
    assert agg["celeba/random"]["celeba_ap_conv5"]["mean"] == pytest.approx(50.0)
    assert not any(k.startswith("probe_") for k in agg["celeba/rot+warp+lci"])
    spec = load_yaml(ROOT / "thesislib" / "replication" / "lci.yaml")
    rows = {e["id"]: e for e in spec["experiments"]}
    for run_id in ("celeba/rot+warp+lci", "celeba/random"):
        assert {"celeba_ap_conv1", "celeba_ap_conv5"} <= set(rows[run_id]["metrics"]), run_id
        assert {"celeba_ap_conv1", "celeba_ap_conv5"} <= set(agg[run_id]), run_id



def test_a_celeba_replicate_records_attribute_aps_for_trained_and_random_c(tmp_path: Path) -> None:
    from thesislib.methods.lci.experiments import run_replicate

    base, _ = _celeba(tmp_path, partition=(20, 2, 8))
    params = lci_config(TINY_CELEBA, data_root=str(base.parent), iterations=2, batch_size=4, n_unlabelled=16,
                        probe_epochs=2, diag_iterations=2, diag_train=16, diag_test=16, diag_width=2, face_size=32)
    result = run_replicate(params, 0, torch.device("cpu"))
    assert set(result.probe_ssl) == set(result.probe_random) == {"conv1", "conv5"}
    assert result.probe_ssl != result.probe_random  # trained and random C differ
    agg = aggregate(params, [result])
    assert {"celeba_ap_conv1", "celeba_ap_conv5"} <= set(agg[experiment_id(params)])
    assert set(agg[random_experiment_id(params)]) == {"celeba_ap_conv1", "celeba_ap_conv5"}
    assert 0.0 < agg["celeba/random"]["celeba_ap_conv1"] <= 100.0  # one replicate: the value itself, in %
