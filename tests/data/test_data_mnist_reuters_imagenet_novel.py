"""MNIST (IDX, gz and raw), DEC's Reuters-10K .npy dict, and the ImageNet 882/118 novel-class split files,
each on a fixture written in the real format; missing and corrupt files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.imagenet_novel import ImageFiles, novel_imagenet_split, write_novel_split_fixture
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.mnist import load_mnist, read_idx, write_mnist_fixture
from thesislib.data.reuters import load_reuters10k, write_reuters10k_fixture


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    base = write_mnist_fixture(tmp_path, n_train=20, n_test=10, gz=gz)
    x, y = load_mnist("train", base)
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.uint8 and y.tolist() == [i % 10 for i in range(20)]
    # the fixture's bar for class c sits at rows 2+2c..3+2c
    assert int(x[3, 0, 8, 10]) == 255 and int(x[3, 0, 2, 10]) < 30
    xt, yt = load_mnist("test", base)
    assert xt.shape == (10, 1, 28, 28) and yt.shape == (10,)


def test_mnist_header_written_by_hand_is_read(tmp_path):
    base = tmp_path / "mnist"
    base.mkdir()
    pixels = np.arange(2 * 28 * 28, dtype=np.uint8) % 251
    (base / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 2, 28, 28) + pixels.tobytes())
    (base / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 0x801, 2) + bytes([7, 3])))
    x, y = load_mnist("test", base)
    assert y.tolist() == [7, 3] and int(x[1, 0, 0, 0]) == pixels[784]


def test_mnist_missing_and_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)mnist.*train-images-idx3-ubyte\[\.gz\]"):
        load_mnist("train")
    base = write_mnist_fixture(tmp_path, gz=False)
    (base / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x803, 30) + bytes(30))
    with pytest.raises(DatasetCorruptError, match="train-labels-idx1-ubyte") as err:
        load_mnist("train")
    assert "magic" in err.value.reason
    (base / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 10, 28, 28) + bytes(100))
    with pytest.raises(DatasetCorruptError, match="header announces"):
        read_idx(base / "t10k-images-idx3-ubyte", 3)


def test_reuters10k_dec_format(tmp_path, monkeypatch):
    base = write_reuters10k_fixture(tmp_path, n=12, dim=40)
    x, y = load_reuters10k(base)
    assert x.shape == (12, 40) and x.dtype == torch.float32 and y.tolist() == [i % 4 for i in range(12)]
    # each class puts its weight on its own block of 10 terms
    assert all(int(x[i].argmax()) // 10 == i % 4 for i in range(12))
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)reuters10k.*reutersidf10k\.npy"):
        load_reuters10k()
    np.save(base / "reutersidf10k.npy", {"data": np.zeros((3, 5)), "labels": np.zeros(3)})
    with pytest.raises(DatasetCorruptError, match="reutersidf10k.npy"):
        load_reuters10k(base)
    (base / "reutersidf10k.npy").write_bytes(b"not numpy")
    with pytest.raises(DatasetCorruptError, match="reutersidf10k.npy"):
        load_reuters10k(base)


def test_imagenet_novel_split_files(tmp_path):
    base = write_novel_split_fixture(tmp_path, n_classes=8, n_held_out=4, n_subset=2, n_train=2)
    split = novel_imagenet_split("B", base)
    assert split.labelled == [f"n9{k:07d}" for k in range(4)]
    assert split.unlabelled == ["n90000006", "n90000007"]
    lab, unl = split.samples("labelled"), split.samples("unlabelled")
    assert len(lab) == 8 and len(unl) == 4 and sorted({c for _, c in unl}) == [0, 1]
    assert all(p.parent.name == split.unlabelled[c] for p, c in unl)
    image, label = ImageFiles(unl, size=16)[0]
    assert image.shape == (3, 16, 16) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and label == 0
    assert novel_imagenet_split("C", base).unlabelled == ["n90000004", "n90000006"]


def test_imagenet_novel_split_errors(tmp_path):
    base = write_novel_split_fixture(tmp_path)
    with pytest.raises(ValueError, match="subset"):
        novel_imagenet_split("D", base)
    (base / "imagenet_rand118" / "imagenet_30_A.txt").write_text("n90000000\nn90000004\n")
    with pytest.raises(DatasetCorruptError, match="imagenet_30_A.txt"):
        novel_imagenet_split("A", base)
    (base / "imagenet_rand118" / "imagenet_30_A.txt").write_text("n90000004\nnot-a-wnid\n")
    with pytest.raises(DatasetCorruptError, match="line 2 is not a wnid"):
        novel_imagenet_split("A", base)
    (base / "imagenet_rand118" / "imagenet_30_A.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"(?s)imagenet_30_A\.txt.*download_imagenet_splits"):
        novel_imagenet_split("A", base)
