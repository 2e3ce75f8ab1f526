import json

import numpy as np
import pytest
import torch

from thesislib.data import CocoMultiLabel, DatasetCorruptError, DatasetNotFoundError
from thesislib.data.fixtures import coco_fixture_color, write_coco_fixture
from thesislib.data.names import COCO_CATEGORIES


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco_fixture(tmp_path_factory.mktemp("data"), n_train=9, n_test=5, seed=0)


def _instances(coco, split):
    return json.loads((coco / "annotations" / f"instances_{split}.json").read_text())


def _reference_labels(instances, include_crowd=True):
    """Per-annotation loop: image id -> set of contiguous class indices."""
    index = {cid: i for i, cid in enumerate(sorted(c["id"] for c in instances["categories"]))}
    labels = {im["id"]: set() for im in instances["images"]}
    for ann in instances["annotations"]:
        if include_crowd or not ann["iscrowd"]:
            labels[ann["image_id"]].add(index[ann["category_id"]])
    return labels


@pytest.mark.parametrize("split,n", [("train2014", 9), ("val2014", 5)])
def test_counts_and_labels_match_reference(coco, split, n):
    ds = CocoMultiLabel(root=coco, split=split)
    assert ds.num_images_total == n and len(ds) == n - 1  # one unlabeled image dropped
    everything = CocoMultiLabel(root=coco, split=split, drop_unlabeled=False)
    assert len(everything) == n
    ref = _reference_labels(_instances(coco, split))
    for i, image_id in enumerate(ds.image_ids.tolist()):
        _, target = ds[i]
        assert target.dtype == torch.float32 and target.shape == (80,)
        assert set(torch.nonzero(target).flatten().tolist()) == ref[image_id]
    assert np.all(np.diff(ds.image_ids) > 0)
    assert torch.equal(ds.targets, torch.from_numpy(ds.labels).float())


def test_category_mapping_is_ascending_id_order(coco, tmp_path):
    ds = CocoMultiLabel(root=coco, split="val2014")
    assert ds.class_names[0] == "person" and ds.class_names[79] == "toothbrush"
    assert ds.category_index(90) == 79 and ds.category_index(13) == 11
    assert ds.class_names == [name for _, name, _ in COCO_CATEGORIES]
    # shuffling the category list in the file does not change the mapping
    inst = _instances(coco, "val2014")
    inst["categories"] = inst["categories"][::-1]
    other = tmp_path / "coco"
    (other / "annotations").mkdir(parents=True)
    (other / "val2014").symlink_to(coco / "val2014")
    (other / "annotations" / "instances_val2014.json").write_text(json.dumps(inst))
    shuffled = CocoMultiLabel(root=other, split="val2014")
    assert shuffled.class_names == ds.class_names
    assert np.array_equal(shuffled.labels, ds.labels)


def test_crowd_only_image_and_fixture_fields(coco):
    inst = _instances(coco, "train2014")
    crowd = [a for a in inst["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and set(crowd[0]["segmentation"]) == {"counts", "size"}
    h, w = crowd[0]["segmentation"]["size"]
    assert sum(crowd[0]["segmentation"]["counts"]) == h * w
    assert sum(crowd[0]["segmentation"]["counts"][1::2]) == crowd[0]["area"]
    plain = [a for a in inst["annotations"] if not a["iscrowd"]]
    assert all(len(a["bbox"]) == 4 and isinstance(a["segmentation"], list) for a in plain)
    without_crowd = CocoMultiLabel(root=coco, split="train2014", include_crowd=False)
    assert len(without_crowd) == 9 - 2
    assert crowd[0]["image_id"] not in without_crowd.image_ids.tolist()


def test_pixel_round_trip(coco):
    ds = CocoMultiLabel(root=coco, split="train2014")
    sizes = {im["id"]: (im["width"], im["height"]) for im in _instances(coco, "train2014")["images"]}
    for i in range(len(ds)):
        image, _ = ds[i]
        image_id = int(ds.image_ids[i])
        assert image.size == sizes[image_id] and image.mode == "RGB"
        block = np.asarray(image)[2:14, 2:14].reshape(-1, 3).mean(axis=0)
        assert np.allclose(block, coco_fixture_color(image_id), atol=3)


def test_transform_is_applied(coco):
    ds = CocoMultiLabel(root=coco, split="val2014", transform=lambda im: np.asarray(im).shape)
    shape, _ = ds[0]
    assert len(shape) == 3 and shape[2] == 3


def test_missing_dataset_message(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        CocoMultiLabel(split="val2014")
    text = str(err.value)
    assert "THESISLIB_DATA" in text and "coco/annotations/instances_val2014.json" in text
    assert "coco/val2014/" in text and str(tmp_path / "coco") in text


def test_missing_image_and_corrupt_json(coco, tmp_path):
    base = write_coco_fixture(tmp_path, n_train=3, n_test=2, seed=1)
    ds = CocoMultiLabel(root=base, split="train2014")
    ds.image_path(0).unlink()
    with pytest.raises(DatasetNotFoundError, match=ds.file_names[0]):
        ds[0]
    (base / "annotations" / "instances_val2014.json").write_text('{"images": [')
    with pytest.raises(DatasetCorruptError, match="instances_val2014.json"):
        CocoMultiLabel(root=base, split="val2014")
    with pytest.raises(ValueError):
        CocoMultiLabel(root=base, split="test2015")
