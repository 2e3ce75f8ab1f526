"""STL-10 binary release: byte order, labels, folds, the unlabelled split, missing and corrupt files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import STL10 as TorchvisionSTL10

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.fixtures import write_stl10_fixture
from thesislib.data.stl10 import STL10, load_stl10, stl10_fold_indices


@pytest.fixture(scope="module")
def stl_root(tmp_path_factory) -> Path:
    return write_stl10_fixture(tmp_path_factory.mktemp("data"), n_train=30, n_test=14, n_unlabeled=9,
                               fold_size=6, seed=3)


class _UncheckedSTL10(TorchvisionSTL10):
    """torchvision's reader without its MD5 check (the fixture is not the release)."""

    def _check_integrity(self) -> bool:
        return True


def test_byte_order_is_column_major_per_channel(tmp_path: Path) -> None:
    """Byte (c*96 + x)*96 + y of an image is row y, column x of channel c (the release's order)."""
    root = write_stl10_fixture(tmp_path, n_train=10, n_test=10, n_unlabeled=1, fold_size=1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(3, 96, 96), dtype=np.uint8)      # (c, row y, column x)
    flat = np.empty(3 * 96 * 96, dtype=np.uint8)
    for c in range(3):
        for x in range(96):
            flat[(c * 96 + x) * 96: (c * 96 + x + 1) * 96] = image[c, :, x]
    path = root / "stl10_binary" / "train_X.bin"
    data = bytearray(path.read_bytes())
    data[:flat.size] = flat.tobytes()
    path.write_bytes(bytes(data))
    images, _ = load_stl10("train", root)
    assert torch.equal(images[0], torch.from_numpy(image))


def test_splits_match_torchvision_reader(stl_root: Path) -> None:
    for split, n in (("train", 30), ("test", 14)):
        images, labels = load_stl10(split, stl_root)
        assert images.shape == (n, 3, 96, 96) and images.dtype == torch.uint8
        assert labels.dtype == torch.int64 and set(labels.tolist()) <= set(range(10))
        reference = _UncheckedSTL10(str(stl_root), split=split, download=False)
        assert np.array_equal(images.numpy(), reference.data)
        assert np.array_equal(labels.numpy(), reference.labels)
    images, _ = load_stl10("train", stl_root)
    assert (images[:, :, 4:12, :] == 250).all() and not (images[:, :, :, 4:12] == 250).all()   # rows, not columns


def test_folds_match_torchvision_and_select_train_items(stl_root: Path) -> None:
    folds = stl10_fold_indices(stl_root)
    assert len(folds) == 10 and all(len(f) == 6 and len(set(f.tolist())) == 6 for f in folds)
    images, labels = load_stl10("train", stl_root)
    for k in (0, 7):
        fold_images, fold_labels = load_stl10("train", stl_root, fold=k)
        assert torch.equal(fold_images, images[folds[k]]) and torch.equal(fold_labels, labels[folds[k]])
        reference = _UncheckedSTL10(str(stl_root), split="train", folds=k, download=False)
        assert np.array_equal(fold_labels.numpy(), reference.labels)
    with pytest.raises(ValueError, match="training"):
        load_stl10("test", stl_root, fold=0)
    with pytest.raises(ValueError, match="0..9"):
        load_stl10("train", stl_root, fold=10)


def test_item_dataset_concatenates_train_and_unlabeled(stl_root: Path) -> None:
    data = STL10(("train", "unlabeled"), stl_root, transform=lambda x: x.float() / 255)
    assert len(data) == 39
    assert (data.labels[30:] == -1).all() and (data.labels[:30] >= 0).all()
    images, labels = load_stl10("train", stl_root)
    x, y = data[4]
    assert torch.equal(x, images[4].float() / 255) and y == int(labels[4])
    unlabeled, _ = load_stl10("unlabeled", stl_root)
    assert torch.equal(data[-1][0], unlabeled[-1].float() / 255) and data[-1][1] == -1
    fold = STL10("train", stl_root, fold=2)
    assert len(fold) == 6 and torch.equal(fold[1][0], images[stl10_fold_indices(stl_root)[2][1]])
    with pytest.raises(IndexError):
        data[39]


def test_missing_dataset_names_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_stl10("train")
    text = str(err.value)
    assert str(tmp_path / "stl10") in text and "THESISLIB_DATA" in text and "train_X.bin" in text
    root = write_stl10_fixture(tmp_path / "other")
    (root / "stl10_binary" / "unlabeled_X.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="unlabeled_X.bin"):
        STL10(("train", "unlabeled"), root)


@pytest.mark.parametrize("damage", ["truncated", "label", "count", "fold"])
def test_corrupt_files_are_named(tmp_path: Path, damage: str) -> None:
    root = write_stl10_fixture(tmp_path, n_train=20, n_test=10, fold_size=4)
    folder = root / "stl10_binary"
    if damage == "truncated":
        bad = folder / "train_X.bin"
        bad.write_bytes(bad.read_bytes()[:-100])
    elif damage == "label":
        bad = folder / "train_y.bin"
        bad.write_bytes(bytes([11]) + bad.read_bytes()[1:])
    elif damage == "count":
        bad = folder / "train_y.bin"
        bad.write_bytes(bad.read_bytes()[:-1])
    else:
        bad = folder / "fold_indices.txt"
        bad.write_text(bad.read_text().replace("\n", " 20\n", 1))
    with pytest.raises(DatasetCorruptError) as err:
        load_stl10("train", root, fold=0 if damage == "fold" else None)
    assert err.value.path == bad
