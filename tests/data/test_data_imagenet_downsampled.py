"""Downsampled ImageNet (npz and PNG releases) and ILSVRC rescaled to 128, on fixtures in their formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.imagenet_downsampled import ImageNet128, load_downsampled_imagenet, release_files, rescale_square
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.data.pixelcnn_fixtures import downsampled_fixture_images, write_downsampled_imagenet_fixture


@pytest.mark.parametrize("size", [32, 64])
def test_npz_release_rows_labels_and_order(tmp_path, size):
    base = write_downsampled_imagenet_fixture(tmp_path, size=size, n_train=11, n_val=4, n_batches=3, seed=5)
    kind, files = release_files(size, "train", base)
    assert kind == "npz" and [f.name for f in files] == [f"train_data_batch_{k}.npz" for k in (1, 2, 3)]
    x, y = load_downsampled_imagenet(size, "train", base)
    assert x.shape == (11, 3, size, size) and x.dtype == torch.uint8 and y.dtype == torch.int64
    raw = np.load(files[0])
    row, label = raw["data"][2], raw["labels"][2]
    # row layout: R plane, G plane, B plane, each row-major; labels 1-based on disk
    for c, i, j in [(0, 0, 0), (1, 3, 7), (2, size - 1, size - 2)]:
        assert x[2, c, i, j].item() == row[c * size * size + i * size + j]
    assert y[2].item() == label - 1 and 0 <= y.min() and y.max() <= 999
    expected, labels = downsampled_fixture_images(11, size, 5)
    assert np.array_equal(x.numpy(), expected) and np.array_equal(y.numpy(), labels - 1)
    xv, _ = load_downsampled_imagenet(size, "val", base)
    assert xv.shape == (4, 3, size, size)
    assert load_downsampled_imagenet(size, "train", base, limit=5)[0].shape[0] == 5


def test_png_release_and_default_root(tmp_path, monkeypatch):
    write_downsampled_imagenet_fixture(tmp_path, size=32, n_train=3, n_val=2, fmt="png", seed=1)
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    x, y = load_downsampled_imagenet(32, "val")
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [-1, -1]
    assert np.array_equal(x.numpy(), downsampled_fixture_images(2, 32, 2)[0])


def test_missing_and_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_downsampled_imagenet(64, "train")
    assert str(tmp_path / "imagenet64") in str(err.value) and "train_data_batch" in str(err.value)
    with pytest.raises(ValueError, match="ImageNet128"):
        load_downsampled_imagenet(128, "train")
    base = write_downsampled_imagenet_fixture(tmp_path, size=32, n_train=6, n_batches=2)
    bad = base / "Imagenet32_train_npz" / "train_data_batch_2.npz"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DatasetCorruptError) as err:
        load_downsampled_imagenet(32, "train")
    assert err.value.path == bad


def test_rescale_square_crop_policy():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 200  # the central square is uniform 200, the sides 0
    assert rescale_square(img, 16).unique().tolist() == [200]
    squashed = rescale_square(img, 16, crop="none")
    assert squashed.shape == (3, 16, 16) and squashed[:, :, 0].max() == 0 and squashed[:, :, 8].min() == 200


def test_imagenet128_reads_ilsvrc_folders(tmp_path):
    write_imagenet_fixture(tmp_path, n_classes=2, n_train=2, n_val=1)
    ds = ImageNet128("train", root=tmp_path / "imagenet", size=128)
    x, label = ds[0]
    assert x.shape == (3, 128, 128) and x.dtype == torch.uint8 and label == int(ds.labels[0])
    xs, ys = ImageNet128("val", root=tmp_path / "imagenet", size=64).tensors()
    assert xs.shape == (2, 3, 64, 64) and ys.shape == (2,)
