"""The shared data of the streaming linear probes (thesislib.data.imagenet.linear_probe_sets), used by both Jenni
chapters (review #7: one copy, not one per chapter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import thesislib.data.crops as crops
from thesislib.data.crops import ImageNetCrop, LabelledRandomCrop
from thesislib.data.imagenet import IMAGENET_CLASSES, linear_probe_sets
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.data.scene_datasets import PLACES205_CLASSES, write_places205_fixture

torch.set_num_threads(1)


def test_labelled_random_crop_is_the_imagenet_crop_with_its_label() -> None:
    item = {"image": (torch.rand(40, 50, 3) * 255).to(torch.uint8).numpy(), "label": 7}
    torch.manual_seed(3)
    x, y = LabelledRandomCrop(16, load=20)(item)
    torch.manual_seed(3)
    assert y == 7 and torch.equal(x, ImageNetCrop(16, load=20)(item))
    torch.manual_seed(3)
    default = LabelledRandomCrop(16)(item)[0]
    torch.manual_seed(3)
    assert torch.equal(default, ImageNetCrop(16)(item))  # load 0: 1.15 x size, ImageNetCrop's margin
    assert "LabelledRandomCrop" in crops.__all__


def test_linear_probe_sets_for_imagenet_and_places(tmp_path: Path) -> None:
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=2, n_val=2)
    write_places205_fixture(tmp_path, n_train=2, n_val=1)
    train, test, k = linear_probe_sets("imagenet", 20, data_root=tmp_path)
    assert (len(train), len(test), k) == (6, 6, IMAGENET_CLASSES)
    assert train[0][0].shape == (3, 20, 20) and test[0][0].shape == (3, 23, 23)  # load round(1.15 x 20)
    train, test, k = linear_probe_sets("places205", 20, data_root=tmp_path, load=24)
    assert (len(train), len(test), k) == (6, 3, PLACES205_CLASSES)
    assert train[0][0].shape == (3, 20, 20) and test[0][0].shape == (3, 24, 24)
    with pytest.raises(ValueError, match="places365"):
        linear_probe_sets("places365", 20, data_root=tmp_path)
    with pytest.raises(ValueError, match="smaller"):
        linear_probe_sets("imagenet", 20, data_root=tmp_path, load=16)


def test_both_chapters_build_their_streaming_probe_data_through_it(tmp_path: Path, monkeypatch) -> None:
    import thesislib.methods.lci.data as lci_data
    import thesislib.methods.spotting_artifacts.data as sa_data
    from thesislib.methods.lci.config import lci_config
    from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config

    write_imagenet_fixture(tmp_path, n_classes=2, n_train=2, n_val=2)
    calls = []

    def spy(name, side, data_root=None, load=0):
        calls.append((name, side))
        return linear_probe_sets(name, side, data_root=data_root, load=load)

    monkeypatch.setattr(lci_data, "linear_probe_sets", spy)
    monkeypatch.setattr(sa_data, "linear_probe_sets", spy)
    lci = lci_config(dict(data="imagenet", data_root=str(tmp_path), load_size=32, image_size=24, patch_size=8,
                          border=2, n_unlabelled=4, probe_mode="streaming", probe_size=20))
    assert lci_data.chapter_data(lci, 0).probe_crop == 20
    sa = spotting_artifacts_config(dict(data="imagenet", data_root=str(tmp_path), image_size=16, n_unlabelled=4,
                                        probe_mode="streaming", probe_size=20))
    assert sa_data.chapter_data(sa, 0).probe_classes == IMAGENET_CLASSES
    assert calls == [("imagenet", 20), ("imagenet", 20)]
