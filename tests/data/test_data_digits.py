import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from thesislib.data.digits import DIGIT_CLASSES, load_digits_split


def test_split_shapes_dtypes_and_ranges():
    split = load_digits_split(test_fraction=0.3, seed=0)
    assert split.x_train.shape == (1257, 1, 8, 8) and split.x_test.shape == (540, 1, 8, 8)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert float(split.x_train.min()) == 0.0 and float(split.x_train.max()) == 1.0
    assert split.class_names == DIGIT_CLASSES and split.num_classes == 10
    # disjoint and complete
    both = torch.cat([split.index_train, split.index_test]).sort().values
    assert torch.equal(both, torch.arange(1797))


def test_pixel_round_trip_against_sklearn():
    split = load_digits_split(seed=3)
    bunch = load_digits()
    i = split.index_test[7].item()
    expected = torch.from_numpy(bunch.images[i] / 16.0).float()
    assert torch.equal(split.x_test[7, 0], expected)
    assert split.y_test[7].item() == bunch.target[i]


def test_stratified_and_seeded():
    a, b, c = load_digits_split(seed=1), load_digits_split(seed=1), load_digits_split(seed=2)
    assert torch.equal(a.index_test, b.index_test)
    assert not torch.equal(a.index_test, c.index_test)
    full = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(a.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.3 * full) <= 1.0)


def test_flat_view_and_datasets():
    img, flat = load_digits_split(seed=0), load_digits_split(seed=0, flat=True)
    assert flat.x_train.shape == (1257, 64)
    assert torch.equal(flat.x_train, img.x_train.reshape(-1, 64))
    x, y = flat.train_dataset()[5]
    assert x.shape == (64,) and y == flat.y_train[5]
    with pytest.raises(ValueError):
        load_digits_split(test_fraction=1.5)
