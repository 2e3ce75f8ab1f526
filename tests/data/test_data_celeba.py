"""CelebA loader on a fixture in the release's layout: crop box, splits, resize, missing and corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.celeba import CROP_BOX, CelebA, crop_face, random_split, read_partition
from thesislib.data.pixelcnn_fixtures import CELEBA_MARGIN_RGB, write_celeba_fixture


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_celeba_fixture(tmp_path_factory.mktemp("data"), n_images=20)


def test_crop_box_is_the_thesis_margins():
    # left 25, right 25, top 50, bottom 40 of 178 x 218
    assert CROP_BOX == (50, 218 - 40, 25, 178 - 25)
    image = np.arange(218 * 178).reshape(218, 178)[..., None]
    crop = crop_face(image)
    assert crop.shape == (128, 128, 1)
    assert crop[0, 0, 0] == 50 * 178 + 25 and crop[-1, -1, 0] == 177 * 178 + 152
    with pytest.raises(ValueError, match="218x178"):
        crop_face(np.zeros((128, 128, 3)))


def test_items_are_the_exact_crop_of_the_decoded_jpeg(root):
    ds = CelebA("train", root=root)
    assert len(ds) == 12 and ds.names[0] == "000001.jpg"
    x = ds[3]
    assert x.dtype == torch.uint8 and x.shape == (3, 128, 128)
    full = np.array(Image.open(root / "img_align_celeba" / ds.names[3]).convert("RGB"))
    assert np.array_equal(x.permute(1, 2, 0).numpy(), full[50:178, 25:153])
    # the margins (green) are gone: no crop pixel is near the margin colour, and the margin is
    margin = np.abs(full[10, 10].astype(int) - CELEBA_MARGIN_RGB).max()
    inside = np.abs(x.permute(1, 2, 0).numpy().astype(int) - CELEBA_MARGIN_RGB).max(-1)
    assert margin < 12 and inside[4:-4, 4:-4].min() > 60


def test_official_and_random_splits(root):
    names, parts = read_partition(root / "list_eval_partition.txt")
    assert len(names) == 20 and np.bincount(parts).tolist() == [12, 4, 4]
    assert [len(CelebA(s, root=root)) for s in ("train", "valid", "test", "all")] == [12, 4, 4, 20]
    tr, te = CelebA("train", root=root, partition="random"), CelebA("test", root=root, partition="random")
    assert len(te) == 1 and len(tr) == 19 and not set(tr.names) & set(te.names)
    assert CelebA("test", root=root, partition="random", seed=0).names == te.names
    train_idx, test_idx = random_split(202599, 0.05, seed=0)
    assert len(test_idx) == 10130 and len(train_idx) == 202599 - 10130
    assert np.array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(202599))
    assert not np.array_equal(random_split(1000, 0.05, 1)[1], random_split(1000, 0.05, 0)[1])
    with pytest.raises(ValueError, match="split"):
        CelebA("valid", root=root, partition="random")


def test_downscaled_and_tensors(root):
    ds = CelebA("valid", root=root, size=32)
    x = ds.tensors()
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8
    big = CelebA("valid", root=root).tensors().float()
    # the downscale is an area-like average: block means of the 128 crop are close to it
    pooled = torch.nn.functional.avg_pool2d(big, 4)
    assert (pooled - x.float()).abs().mean() < 6


def test_missing_dataset_message_names_the_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        CelebA("train")
    text = str(err.value)
    assert str(tmp_path / "celeba") in text and "THESISLIB_DATA" in text
    assert "img_align_celeba" in text and "list_eval_partition.txt" in text


def test_missing_image_and_corrupt_files_are_named(tmp_path):
    base = write_celeba_fixture(tmp_path, n_images=5, partition=(3, 1, 1))
    (base / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="000002.jpg"):
        CelebA("train", root=base)
    base2 = write_celeba_fixture(tmp_path / "b", n_images=5, partition=(3, 1, 1))
    bad = base2 / "img_align_celeba" / "000003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    ds = CelebA("train", root=base2)
    ds[0]
    with pytest.raises(DatasetCorruptError) as err:
        ds[2]
    assert err.value.path == bad and str(bad) in str(err.value)
    (base2 / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DatasetCorruptError, match="list_eval_partition.txt"):
        CelebA("train", root=base2)
