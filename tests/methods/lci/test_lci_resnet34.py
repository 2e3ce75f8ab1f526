"""Table 4.7: LCI's C as a small-input ResNet-34, trained by the chapter's C step, then fine-tuned on STL-10's
labelled images with a multi-crop test (``configs/lci/full_stl10_resnet34.yaml``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.utils.data

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.data.fixtures import write_stl10_fixture
from thesislib.data.tensors import TensorImages
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.evaluate import finetune_network, stl10_finetune
from thesislib.methods.lci.experiments import (
    ReplicateResult,
    aggregate,
    experiment_id,
    finetune_experiment_id,
    random_experiment_id,
)
from thesislib.methods.lci.model import build_classifier
from thesislib.methods.lci.train import train_lci
from thesislib.nn.resnet import SmallInputResNet

ROOT = Path(__file__).resolve().parents[3]
TINY = dict(load_size=16, image_size=12, patch_size=8, border=2, inpainter_width=4, iterations=1, batch_size=2,
            n_unlabelled=8, probe_per_class=1, probe_epochs=1, progress="none", n_seeds=1, classifier="resnet34",
            probe_layers=("layer4",))


def test_resnet34_c_has_torchvision_stages_a_small_stem_and_the_transformation_head() -> None:
    params = lci_config({**TINY, "data": "stl10"})
    torch.manual_seed(0)
    net = build_classifier(params).eval()
    assert isinstance(net, SmallInputResNet)
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]  # ResNet-34's blocks
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and not hasattr(net, "maxpool")
    assert net.fc.out_features == 6  # identity, rot90/180/270, warp, lci
    with torch.no_grad():
        maps = net.conv_layers(torch.zeros(2, 3, 64, 64))
        assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {
            "layer1": (64, 64, 64), "layer2": (128, 32, 32), "layer3": (256, 16, 16), "layer4": (512, 8, 8)}
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 6)


def test_one_lci_training_step_updates_the_resnet34_c() -> None:
    params = lci_config(TINY)  # smoke data: one channel
    torch.manual_seed(0)
    fresh = build_classifier(params).state_dict()
    images = torch.rand(8, 1, 16, 16) * 2 - 1
    nets, history = train_lci(params, TensorImages(images), torch.device("cpu"))
    assert isinstance(nets["cls"], SmallInputResNet) and set(nets) == {"cls", "inp", "disc"}
    assert "ssl_acc" in history.last() and "loss_cls" in history.last()
    trained = nets["cls"].state_dict()
    assert not torch.equal(trained["layer4.0.conv1.weight"], fresh["layer4.0.conv1.weight"])


def test_probe_layers_must_exist_in_the_chosen_classifier() -> None:
    with pytest.raises(ConfigError, match="layer1, layer2, layer3, layer4"):
        lci_config({**TINY, "probe_layers": ("conv5",)})
    with pytest.raises(ConfigError, match="conv1, conv2, conv3, conv4, conv5"):
        lci_config({"probe_layers": ("layer4",)})
    with pytest.raises(ConfigError, match="classifier"):
        lci_config({"classifier": "vgg16"})
    with pytest.raises(ConfigError, match="conv1-5"):
        lci_config({**TINY, "data": "stl10", "transfer": ["voc07_cls"]})  # Table 4.4 transfers AlexNet's convs
    with pytest.raises(ConfigError, match="finetune_epochs"):
        lci_config({"finetune_epochs": 3})  # smoke data has no STL-10 fine-tune


def test_finetune_replaces_the_head_and_scores_multi_crop_on_a_stl10_fixture(tmp_path: Path) -> None:
    write_stl10_fixture(tmp_path, n_train=12, n_test=6)
    params = lci_config({**TINY, "data": "stl10", "data_root": str(tmp_path), "load_size": 16, "image_size": 12,
                         "finetune_epochs": 1, "finetune_batch_size": 4, "finetune_test_crops": 3})
    torch.manual_seed(0)
    cls = build_classifier(params)
    before = {k: v.clone() for k, v in cls.state_dict().items()}
    net = finetune_network(cls)
    assert net.fc.out_features == 10 and cls.fc.out_features == 6
    out = stl10_finetune(params, cls, torch.device("cpu"), seed=0)
    assert set(out) == {"stl10_acc"} and 0.0 <= out["stl10_acc"] <= 100.0
    assert out["stl10_acc"] * 6 / 100 == pytest.approx(round(out["stl10_acc"] * 6 / 100))  # hits over 6 images
    assert all(torch.equal(v, cls.state_dict()[k]) for k, v in before.items())  # C itself is untouched
    with pytest.raises(Exception, match="stl10"):
        stl10_finetune(replace(params, data_root=str(tmp_path / "missing")), cls, torch.device("cpu"), seed=0)


def test_table_4_7_config_and_ids() -> None:
    from thesislib.replication import paper_numbers

    ids = {n.experiment for n in paper_numbers("lci")}
    params = lci_config(load_yaml(ROOT / "configs" / "lci" / "full_stl10_resnet34.yaml"))
    assert params.classifier == "resnet34" and params.transforms == ("rot", "warp", "lci")
    assert (params.image_size, params.batch_size, params.patch_size, params.border) == (64, 64, 48, 2)
    assert params.iterations == 105_000 * 200 // 64 and params.finetune_epochs == 300
    assert params.finetune_test_crops > 1
    assert finetune_experiment_id(params) == "stl10-resnet34/ours" in ids
    assert experiment_id(params) not in ids and random_experiment_id(params) not in ids  # no AlexNet table row
    for off in (replace(params, finetune_epochs=30), replace(params, transforms=("rot",)),
                replace(params, patch_size=32), replace(params, n_unlabelled=1000),
                replace(params, finetune_test_crops=1)):
        assert finetune_experiment_id(off) not in ids
    agg = aggregate(params, [ReplicateResult(s, finetune={"stl10_acc": 80.0 + s}) for s in range(2)])
    assert agg["stl10-resnet34/ours"]["stl10_acc"]["mean"] == pytest.approx(80.5)


def test_finetune_classifier_test_crops_average_the_softmax_of_fixed_crops() -> None:
    from torch import nn
    from torch.utils.data import TensorDataset

    from thesislib.eval.transfer import MultiCropItems, TransferConfig, finetune_classifier

    torch.manual_seed(0)
    images, labels = torch.randn(10, 3, 10, 10), torch.randint(0, 3, (10,))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    config = TransferConfig(iterations=2, batch_size=4, lr=1e-2, crop=6, seed=5, rescale=False)
    out = finetune_classifier(model, TensorDataset(images, labels), TensorDataset(images, labels), "cpu", config,
                              test_crops=4)
    crops = MultiCropItems(TensorDataset(images, labels), 6, 4, seed=5)
    model.eval()
    with torch.no_grad():
        probs = torch.stack([torch.softmax(model(crops[i][0]), dim=1).mean(0) for i in range(10)])
    assert out["acc"] == pytest.approx(float((probs.argmax(1) == labels).float().mean()))


def test_knn_figures_read_layer4_of_a_resnet34_c() -> None:
    from thesislib.methods.lci.config import replicate
    from thesislib.methods.lci.data import chapter_data
    from thesislib.methods.lci.evaluate import random_classifier
    from thesislib.methods.lci.experiments import knn_neighbours

    torch.set_num_threads(1)
    params = lci_config({"n_seeds": 1, "classifier": "resnet34", "probe_layers": ("layer4",)})
    full = chapter_data(params, 1)
    data = dataclasses.replace(full, probe_test=torch.utils.data.Subset(full.probe_test, range(24)))
    result = ReplicateResult(1, nets={"cls": random_classifier(replicate(params, 1), 1)}, data=data)
    out = knn_neighbours(params, result, torch.device("cpu"), ks=(1,), n_retrieved=2)
    assert out.accuracy["ssl"] == out.accuracy["random"] and out.neighbours["ssl"].shape == (len(data.probe_test), 2)
