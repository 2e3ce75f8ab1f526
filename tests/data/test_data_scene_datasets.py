"""MIT Indoor-67 and Places205 (Places10) read from their release layouts (fixtures in those formats), and the
random square crop of the full-size transfer runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.scene_datasets import (
    PLACES10_DEFAULT,
    load_mit67,
    load_places,
    square_resize,
    write_mit67_fixture,
    write_places205_fixture,
)
from thesislib.data.transforms import random_square_crop


def test_mit67_lists_and_class_order(tmp_path: Path):
    base = write_mit67_fixture(tmp_path, classes=("kitchen", "bakery", "library"), n_train=3, n_test=2)
    x, y, classes = load_mit67("train", 24, base)
    assert classes == ["bakery", "kitchen", "library"]                   # sorted folder names
    assert x.shape == (9, 3, 24, 24) and x.dtype == torch.uint8
    assert y.tolist() == [1, 1, 1, 0, 0, 0, 2, 2, 2]                     # in TrainImages.txt order
    xt, yt, _ = load_mit67("test", 24, base)
    assert yt.tolist() == [1, 1, 0, 0, 2, 2]
    # each class has its own colour in the fixture: the decoded pixels keep it
    assert abs(float(x[0, 0].float().mean()) - 20.0) < 10 and abs(float(x[3, 0].float().mean()) - 80.0) < 10


def test_mit67_missing_and_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError, match="mit67") as err:
        load_mit67("train")
    assert "TrainImages.txt" in str(err.value) and "THESISLIB_DATA" in str(err.value)
    base = write_mit67_fixture(tmp_path, classes=("bakery", "kitchen"), n_train=2, n_test=1)
    bad = base / "Images" / "kitchen" / "tr_1.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetCorruptError, match="tr_1.jpg"):
        load_mit67("train", 16, base)
    (base / "TestImages.txt").write_text("kitchen/te_0.jpg\nnoslash.jpg\n")
    with pytest.raises(DatasetCorruptError, match="line 2"):
        load_mit67("test", 16, base)
    (base / "TestImages.txt").write_text("kitchen/gone.jpg\n")
    with pytest.raises(DatasetNotFoundError, match="gone.jpg"):
        load_mit67("test", 16, base)


def test_places_categories_limits_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    base = write_places205_fixture(tmp_path, categories=("a/abbey", "a/alley", "b/bakery/shop"), n_train=3, n_val=2)
    x, y = load_places("train", ("/b/bakery/shop", "a/abbey"), 20, base)
    assert x.shape == (6, 3, 20, 20) and y.tolist() == [1, 1, 1, 0, 0, 0]
    _, y = load_places("test", ("alley",), 20, base)
    assert y.tolist() == [0, 0]
    _, y = load_places("train", ("abbey", "alley"), 20, base, max_per_class=1)
    assert y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="arch"):
        load_places("train", ("abbey", "arch"), 20, base)
    (base / "trainvalsplit_places205" / "val_places205.csv").write_text("a/abbey/x.jpg zero\n")
    with pytest.raises(DatasetCorruptError, match="val_places205.csv"):
        load_places("test", ("abbey",), 20, base)
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError, match="places205"):
        load_places("train")
    assert len(PLACES10_DEFAULT) == 10 == len(set(PLACES10_DEFAULT))


def test_square_resize_keeps_the_centre():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255                                                  # the centre 20 columns are white
    out = square_resize(Image.fromarray(img), 10)
    assert out.shape == (3, 10, 10) and out[:, :, 1:-1].min() >= 250     # bilinear: only the edge columns blend


def test_random_square_crop_is_a_window_of_each_image():
    x = torch.arange(2 * 1 * 6 * 6).reshape(2, 1, 6, 6)
    g = torch.Generator().manual_seed(3)
    out = random_square_crop(x, 4, generator=g)
    g = torch.Generator().manual_seed(3)
    top, left = torch.randint(0, 3, (2,), generator=g), torch.randint(0, 3, (2,), generator=g)
    for i in range(2):
        assert torch.equal(out[i], x[i, :, top[i]:top[i] + 4, left[i]:left[i] + 4])
    flipped = random_square_crop(x, 6, flip=True, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(f, x[i]) or torch.equal(f, x[i].flip(-1)) for i, f in enumerate(flipped))
    g = torch.Generator().manual_seed(5)
    mirrored = random_square_crop(x, 4, flip=True, generator=g)          # a mirrored window, not a mirrored image
    g = torch.Generator().manual_seed(5)
    top, left = torch.randint(0, 3, (2,), generator=g), torch.randint(0, 3, (2,), generator=g)
    flips = torch.rand(2, generator=g) < 0.5
    for i in range(2):
        window = x[i, :, top[i]:top[i] + 4, left[i]:left[i] + 4]
        assert torch.equal(mirrored[i], window.flip(-1) if flips[i] else window)
    with pytest.raises(ValueError, match="exceeds"):
        random_square_crop(x, 7)


def test_places205_reads_lazily_with_the_csv_labels(tmp_path: Path):
    from thesislib.data.crops import LabelledRandomCrop, LabelledResize
    from thesislib.data.scene_datasets import Places205

    base = write_places205_fixture(tmp_path, n_train=3, n_val=2, nested=True)
    train = Places205("train", root=base, transform=LabelledRandomCrop(24, load=30))
    assert len(train) == 9 and train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    torch.manual_seed(0)
    views = {tuple(train[4][0].flatten()[:32].tolist()) for _ in range(6)}
    x, y = train[4]
    assert x.shape == (3, 24, 24) and y == 1 and len(views) > 1 and -1.0 <= float(x.min()) <= float(x.max()) <= 1.0
    val = Places205("val", root=base, transform=LabelledResize(30))
    assert len(val) == 6 and val[5][0].shape == (3, 30, 30) and val[5][1] == 2
    raw = Places205("val", root=base)[0]
    assert set(raw) == {"image", "label"} and raw["image"].size == (48, 48)
    with pytest.raises(ValueError, match="split"):
        Places205("test", root=base)
    first = base / "data/vision/torralba/deeplearning/images256" / train.paths[0]
    first.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetCorruptError, match="gsun_train0000"):
        train[0]
    first.unlink()
    with pytest.raises(DatasetNotFoundError, match="places205"):
        train[0]
