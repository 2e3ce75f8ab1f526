"""VOC 2007 classification and CelebA attributes, read from fixtures in the releases' formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.celeba import CelebA, read_attributes
from thesislib.data.pixelcnn_fixtures import write_celeba_fixture
from thesislib.data.selfsup_fixtures import write_celeba_attributes, write_voc07_fixture
from thesislib.data.voc07 import VOC07_CLASSES, VOC07Input, VOC2007Classification, parse_annotation, voc07_targets


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return write_voc07_fixture(tmp_path_factory.mktemp("data"), n_trainval=10, n_test=6)


def test_annotation_labels_follow_the_devkit(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text("<annotation><object><name>dog</name><difficult>0</difficult></object>"
                   "<object><name>cat</name><difficult>1</difficult></object>"
                   "<object><name>dog</name><difficult>1</difficult></object>"
                   "<object><name>car</name></object></annotation>")
    labels = parse_annotation(xml)
    want = np.full(20, -1)
    want[VOC07_CLASSES.index("dog")] = 1      # one non-difficult dog is enough
    want[VOC07_CLASSES.index("cat")] = 0      # only difficult cats: ignored
    want[VOC07_CLASSES.index("car")] = 1      # <difficult> absent = not difficult
    assert labels.tolist() == want.tolist()
    targets, valid = voc07_targets(labels[None])
    assert targets[0, VOC07_CLASSES.index("dog")] == 1 and not valid[0, VOC07_CLASSES.index("cat")]


def test_splits_items_and_transform(voc_root):
    train = VOC2007Classification("trainval", root=voc_root)
    test = VOC2007Classification("test", root=voc_root)
    assert len(train) == 10 and len(test) == 6 and train.ids[0] == "000001"
    assert len(VOC2007Classification("train", root=voc_root)) == 5
    item = train[3]
    assert item["image"].shape == (48, 64, 3) and item["labels"][3] == 1  # first object of image k is class k
    image, labels = VOC2007Classification("test", root=voc_root, transform=VOC07Input(32))[0]
    assert image.shape == (3, 32, 32) and labels.dtype == torch.int8 and labels.shape == (20,)


def test_missing_and_corrupt_files_are_named(voc_root, tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        VOC2007Classification("test")
    text = str(err.value)
    assert str(tmp_path / "voc") in text and "VOCdevkit/VOC2007/Annotations" in text and "THESISLIB_DATA" in text
    base = write_voc07_fixture(tmp_path / "b", n_trainval=4, n_test=2)
    (base / "VOCdevkit/VOC2007/JPEGImages/000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="000002.jpg"):
        VOC2007Classification("trainval", root=base)
    bad = base / "VOCdevkit/VOC2007/Annotations/000005.xml"
    bad.write_text("<annotation><object><name>dog</name>")
    with pytest.raises(DatasetCorruptError) as err2:
        VOC2007Classification("test", root=base)
    assert err2.value.path == bad
    bad.write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(DatasetCorruptError, match="unicorn"):
        VOC2007Classification("test", root=base)


def test_celeba_attributes(tmp_path):
    base = write_celeba_fixture(tmp_path, n_images=6, partition=(4, 1, 1))
    values = write_celeba_attributes(base, seed=3)
    names, attr_names, read = read_attributes(base / "list_attr_celeba.txt")
    assert names[0] == "000001.jpg" and len(attr_names) == 40 and np.array_equal(read, values)
    ds = CelebA("train", root=base, size=32, attributes=True)
    image, attrs = ds[1]
    assert image.shape == (3, 32, 32) and attrs.tolist() == (values[1] > 0).astype(np.float32).tolist()
    assert CelebA("test", root=base).attributes is None and CelebA("test", root=base)[0].shape == (3, 128, 128)
    (base / "list_attr_celeba.txt").write_text("6\n" + " ".join(attr_names) + "\n000001.jpg 1 0\n")
    with pytest.raises(DatasetCorruptError, match="line 3"):
        CelebA("train", root=base, attributes=True)
    (base / "list_attr_celeba.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="list_attr_celeba.txt"):
        CelebA("train", root=base, attributes=True)
