"""The Visual Decathlon loader on a fixture in the release's format: labels, splits, the 72-px
images, the released augmentation, and the errors for missing and corrupt files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from thesislib.data.decathlon import DecathlonDomain, DecathlonTransform, parse_annotations, read_mean_std
from thesislib.data.decathlon_fixtures import write_decathlon_fixture
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dec")
    write_decathlon_fixture(root, {"dtd": 3, "gtsrb": 2}, n_train=2, n_val=1, n_test=1)
    return root


def test_reads_the_fixture(data, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(data))
    train = DecathlonDomain("dtd", "train")
    assert train.root == data / "decathlon" and len(train) == 6 and train.num_classes == 3
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    image, label = train[2]
    assert image.dtype.name == "uint8" and min(image.shape[:2]) == 72 and label == 1
    test = DecathlonDomain("dtd", "test", root=data / "decathlon")
    assert (test.labels == -1).all() and len(test) == 3
    mean, std = read_mean_std(data / "decathlon", "dtd")
    assert mean == (0.5, 0.5, 0.5) and std == (0.25, 0.25, 0.25)


def test_parse_annotations_maps_offset_category_ids():
    doc = {"images": [{"id": 12, "file_name": "b"}, {"id": 11, "file_name": "a"}],
           "annotations": [{"id": 1, "image_id": 12, "category_id": 40000003},
                           {"id": 2, "image_id": 11, "category_id": 40000001}],
           "categories": [{"id": 40000003, "name": "z"}, {"id": 40000001, "name": "y"}]}
    files, labels, names, ids = parse_annotations(doc)
    assert files == ["a", "b"] and labels.tolist() == [0, 1] and names == ["y", "z"]
    doc["annotations"].pop()
    with pytest.raises(ValueError, match="0 annotations"):
        parse_annotations(doc)


def test_transform_follows_the_released_augmentation(data):
    image, _ = DecathlonDomain("dtd", "train", root=data / "decathlon")[0]
    g = torch.Generator().manual_seed(0)
    x = DecathlonTransform("dtd", True, (0.5,) * 3, (0.25,) * 3, generator=g)(image)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    y = DecathlonTransform("dtd", False, (0.5,) * 3, (0.25,) * 3)(image)
    h, w = image.shape[:2]
    top, left = (h - 64) // 2, (w - 64) // 2
    ref = (torch.from_numpy(image[top:top + 64, left:left + 64]).permute(2, 0, 1).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(y, ref)
    square = np.random.default_rng(0).integers(0, 256, (72, 72, 3), dtype=np.uint8)
    norm = ((0.5,) * 3, (0.25,) * 3)
    centre = DecathlonTransform("dtd", False, *norm, crop=72)(square)

    def draws(flip: bool) -> set[str]:
        out = set()
        for s in range(12):
            g = torch.Generator().manual_seed(s)
            x = DecathlonTransform("dtd", True, *norm, crop=72, flip=flip, generator=g)(square)
            out.add("same" if torch.equal(x, centre) else "flipped" if torch.equal(x, centre.flip(-1)) else "other")
        return out
    assert draws(True) == {"same", "flipped"} and draws(False) == {"same"}
    sym = DecathlonTransform("gtsrb", True, (0.5,) * 3, (0.25,) * 3)(image)
    assert sym.shape == (3, 72, 72)  # text/symbol domains: centre 72 crop, no flip


def test_missing_dataset_names_the_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        DecathlonDomain("dtd", "train")
    text = str(err.value)
    assert str(tmp_path / "decathlon") in text and "annotations/<domain>_train.json" in text
    assert "THESISLIB_DATA" in text
    with pytest.raises(ValueError, match="unknown decathlon domain"):
        DecathlonDomain("mnist", "train", root=tmp_path)


def test_corrupt_files_are_named(data, tmp_path):
    base = tmp_path / "decathlon"
    shutil.copytree(data / "decathlon", base)
    ann = base / "annotations" / "dtd_val.json"
    ann.write_text("{not json")
    with pytest.raises(DatasetCorruptError) as err:
        DecathlonDomain("dtd", "val", root=base)
    assert err.value.path == ann
    first = json.loads((base / "annotations" / "dtd_train.json").read_text())["images"][0]["file_name"]
    (base / first).write_bytes(b"not a jpeg")
    with pytest.raises(DatasetCorruptError) as err:
        DecathlonDomain("dtd", "train", root=base)[0]
    assert err.value.path == base / first
    (base / "decathlon_mean_std.pickle").write_bytes(b"\x80garbage")
    with pytest.raises(DatasetCorruptError):
        read_mean_std(base, "dtd")
