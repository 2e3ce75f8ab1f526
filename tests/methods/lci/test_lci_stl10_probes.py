"""LCI's STL-10 probe protocols: Table 4.2 (every conv layer, feature maps not resized, 700 epochs, 64x64 crops)
and Table 4.1 (frozen conv5, 500 epochs, random 96x96 crops) as the full configs state them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.data.fixtures import write_stl10_fixture
from thesislib.eval.probe import probe_pool
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.data import chapter_data
from thesislib.methods.lci.experiments import ReplicateResult, aggregate, experiment_id
from thesislib.methods.lci.model import build_classifier

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "lci"


def _conv_maps(params, size: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = build_classifier(params).eval()
    with torch.no_grad():
        return net.conv_layers(torch.zeros(1, 3, size, size))


def test_table_4_2_config_probes_every_layer_unresized_for_700_epochs() -> None:
    params = lci_config(load_yaml(CONFIGS / "full_stl10.yaml"))
    assert params.probe_layers == ("conv1", "conv2", "conv3", "conv4", "conv5") and params.probe_epochs == 700
    assert (params.image_size, params.probe_size, params.probe_views) == (64, 0, 1)  # 64x64 crops
    assert params.probe_mode == "streaming"  # a fresh random 64x64 crop of every image each epoch
    for layer, fmap in _conv_maps(params, params.image_size).items():
        assert probe_pool(fmap, params.probe_dims).shape[1] == fmap[0].numel(), layer  # no layer is resized


def test_table_4_1_config_probes_conv5_on_random_96_crops_for_500_epochs_of_samples() -> None:
    params = lci_config(load_yaml(CONFIGS / "full_stl10_lci.yaml"))
    # 500 epochs, a fresh random 96x96 crop of every image each epoch (streaming)
    assert params.probe_layers == ("conv5",) and params.probe_epochs == 500 and params.probe_views == 1
    assert params.probe_size == 96 and params.probe_mode == "streaming"
    fmap = _conv_maps(params, 96)["conv5"]
    assert fmap.shape[-2:] == (6, 6) and probe_pool(fmap, params.probe_dims).shape[1] == fmap[0].numel()
    assert experiment_id(params) == "stl10/lci-baseline"
    reps = [ReplicateResult(0, probe_ssl={"conv5": 0.5}), ReplicateResult(1, probe_ssl={"conv5": 0.7})]
    agg = aggregate(params, reps)
    assert agg["stl10/lci-baseline"]["stl10_acc"]["mean"] == pytest.approx(60.0)  # Table 4.1's metric
    table_4_2 = lci_config(load_yaml(CONFIGS / "full_stl10.yaml"))
    assert "stl10_acc" not in aggregate(table_4_2, [ReplicateResult(0, probe_ssl={"conv5": 0.5})])["stl10/rot+warp+lci"]


def test_probe_size_reads_stl10_at_96_with_random_train_views(tmp_path: Path) -> None:
    write_stl10_fixture(tmp_path, n_train=10, n_test=64)  # the chapter keeps 64 test images for figures
    base = dict(data="stl10", data_root=str(tmp_path), load_size=20, image_size=16, patch_size=8, border=1)
    data = chapter_data(lci_config(base), 0)
    assert data.probe_train[0][0].shape == (3, 16, 16)  # Table 4.2: image_size centre crops
    params = lci_config({**base, "probe_size": 96, "probe_views": 3})
    data = chapter_data(params, 0)
    torch.manual_seed(0)
    a = data.probe_train[0][0]
    views = {tuple(data.probe_train[0][0].flatten()[:16].tolist()) for _ in range(10)}
    assert a.shape == (3, 96, 96) and len(views) > 1  # random crops / flips
    assert torch.equal(data.probe_test[0][0], data.probe_test[0][0]) and data.probe_test[0][0].shape == (3, 96, 96)
    plain = chapter_data(replace(params, probe_views=1), 0)
    assert torch.equal(plain.probe_train[0][0], plain.probe_train[0][0])  # one view: the whole image


def test_streaming_stl10_probes_draw_random_crops_of_the_native_images(tmp_path: Path) -> None:
    write_stl10_fixture(tmp_path, n_train=10, n_test=64)
    base = dict(data="stl10", data_root=str(tmp_path), load_size=20, image_size=16, patch_size=8, border=1,
                probe_mode="streaming")
    data = chapter_data(lci_config(base), 0)
    torch.manual_seed(0)
    views = {tuple(data.probe_train[0][0].flatten()[:16].tolist()) for _ in range(10)}
    assert data.probe_train[0][0].shape == (3, 16, 16) and len(views) > 1  # Table 4.2: random 16 crops of 96
    assert torch.equal(data.probe_test[0][0], data.probe_test[0][0]) and data.probe_test[0][0].shape == (3, 16, 16)
    table41 = chapter_data(lci_config({**base, "probe_size": 96}), 0)
    assert table41.probe_train[0][0].shape == (3, 96, 96)


def test_probe_protocol_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="probe_size"):
        lci_config({"probe_size": 96})  # the smoke digits have no such protocol
    with pytest.raises(ConfigError, match="probe_views"):
        lci_config({"data": "stl10", "load_size": 20, "image_size": 16, "patch_size": 8, "border": 1,
                    "probe_views": 4})
    stl = {"data": "stl10", "load_size": 20, "image_size": 16, "patch_size": 8, "border": 1, "probe_size": 96}
    with pytest.raises(ConfigError, match="probe_views"):  # streaming draws fresh crops: no fixed views
        lci_config({**stl, "probe_views": 4, "probe_mode": "streaming"})
    with pytest.raises(ConfigError, match="probe_mode"):
        lci_config({"probe_mode": "stream"})  # unknown value
    with pytest.raises(ConfigError, match="probe_schedule"):
        lci_config({"probe_schedule": "step"})
    with pytest.raises(ConfigError, match="probe_data"):
        lci_config({"probe_data": "places365"})
    with pytest.raises(ConfigError, match="places205"):  # Table 4.6 probes the ImageNet C
        lci_config({**stl, "probe_mode": "streaming", "probe_data": "places205"})
    with pytest.raises(ConfigError, match="probe_test_crops"):
        lci_config({"probe_test_crops": 5})
    with pytest.raises(ConfigError, match="probe_test_crops"):  # the dagger rows: ImageNet / Places, streaming
        lci_config({"probe_test_crops": 10, "probe_mode": "streaming"})
