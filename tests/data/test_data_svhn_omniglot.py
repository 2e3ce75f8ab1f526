"""SVHN (.mat) and OmniGlot (image folders) loaders on fixtures written in the real formats."""

from pathlib import Path

import pytest
import torch

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.omniglot import load_omniglot, write_omniglot_fixture
from thesislib.data.svhn import load_svhn_tensors, write_svhn_fixture


def test_svhn_reads_the_mat_layout_and_maps_10_to_0(tmp_path: Path):
    base = write_svhn_fixture(tmp_path, n_train=20, n_test=10)
    x, y = load_svhn_tensors("train", base)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0] * 2
    # channel order: X[..., c, n] -> images[n, c]
    import scipy.io
    raw = scipy.io.loadmat(str(base / "train_32x32.mat"))["X"]
    assert torch.equal(x[3, 1], torch.from_numpy(raw[:, :, 1, 3]))
    assert load_svhn_tensors("test", base)[0].shape[0] == 10


def test_svhn_missing_and_corrupt(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="svhn") as err:
        load_svhn_tensors("train")
    assert "train_32x32.mat" in str(err.value) and "THESISLIB_DATA" in str(err.value)
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "train_32x32.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetCorruptError, match="train_32x32.mat"):
        load_svhn_tensors("train")
    with pytest.raises(ValueError, match="unknown SVHN split"):
        load_svhn_tensors("val")


def test_omniglot_reads_alphabets_and_characters(tmp_path: Path):
    base = write_omniglot_fixture(tmp_path, {"Alpha": 2, "Beta": 3}, drawers=2)
    o = load_omniglot("background", base, size=28)
    assert o.images.shape == (10, 1, 28, 28) and o.alphabets == ("Alpha", "Beta")
    assert o.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and o.alphabet.tolist() == [0] * 4 + [1] * 6
    assert o.characters[2] == "Beta/character01"
    full = load_omniglot("background", base)
    assert full.images.shape[-1] == 105 and 0 < float(full.images.mean()) < 0.2     # strokes are 1, sparse
    only = load_omniglot("background", base, alphabets=["Beta"])
    assert only.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_omniglot_missing_corrupt_and_torchvision_layout(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="images_evaluation"):
        load_omniglot("evaluation", tmp_path / "omniglot")
    base = write_omniglot_fixture(tmp_path, {"Alpha": 1}, drawers=1)
    bad = base / "images_background" / "Alpha" / "character01" / "0001_09.png"
    bad.write_bytes(b"broken")
    with pytest.raises(DatasetCorruptError, match="0001_09.png"):
        load_omniglot("background", base)
    tv = tmp_path / "tv"
    write_omniglot_fixture(tv / "omniglot-py", {"Alpha": 1}, drawers=1)
    (tv / "omniglot-py" / "omniglot").rename(tv / "omniglot-py" / "x")
    (tv / "omniglot-py" / "x" / "images_background").rename(tv / "omniglot-py" / "images_background")
    assert load_omniglot("background", tv).images.shape[0] == 1
    with pytest.raises(ValueError, match="unknown OmniGlot alphabets"):
        load_omniglot("background", tv, alphabets=["Zeta"])


def test_cifar100_superclasses_follow_the_official_grouping():
    from thesislib.data.cifar import cifar100_superclasses

    # fine 0 apple -> fruit and vegetables (4); 1 aquarium_fish -> fish (1); 4 beaver -> aquatic mammals (0)
    assert cifar100_superclasses(torch.tensor([0, 1, 4])).tolist() == [4, 1, 0]
    assert cifar100_superclasses(torch.arange(100)).bincount().tolist() == [5] * 20
    with pytest.raises(ValueError, match="0..99"):
        cifar100_superclasses(torch.tensor([100]))
