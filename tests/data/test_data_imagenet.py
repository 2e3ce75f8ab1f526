"""ILSVRC CLS-LOC loader on fixtures in the real layout: splits, labels, boxes, ground-truth sources,
missing and corrupt files, the resize transform."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.imagenet import (
    ImageNetLocalization,
    ResizeNormalize,
    check_layout,
    collate_localization,
    read_box_xml,
    read_synsets,
    read_val_solution,
)
from thesislib.data.imagenet_fixtures import fixture_wnids, render_loc_image, write_imagenet_fixture


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("data")
    write_imagenet_fixture(base, n_classes=3, n_train=4, n_val=2, val_ground_truth="both", train_box_every=2)
    return base


@pytest.fixture(autouse=True)
def env(root, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(root))


def test_layout_files(root):
    base = root / "imagenet"
    wnids, names = read_synsets(base / "LOC_synset_mapping.txt")
    assert wnids == fixture_wnids(3) and names[0].startswith("fixture class 0")
    train = base / "ILSVRC" / "Data" / "CLS-LOC" / "train"
    assert sorted(p.name for p in (train / wnids[1]).iterdir()) == [f"{wnids[1]}_{n}.JPEG" for n in range(1, 5)]
    xmls = sorted((base / "ILSVRC" / "Annotations" / "CLS-LOC" / "train" / wnids[0]).iterdir())
    assert [p.stem for p in xmls] == [f"{wnids[0]}_1", f"{wnids[0]}_3"]        # every 2nd train image
    assert (base / "LOC_val_solution.csv").read_text().splitlines()[0] == "ImageId,PredictionString"


def test_train_split_labels_and_boxes():
    ds = ImageNetLocalization("train")
    assert len(ds) == 12 and ds.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.indices_of(1).tolist() == [4, 5, 6, 7]
    item = ds[0]
    pixels, box = render_loc_image(ds.ids[0], 0)
    assert item["image"].shape == pixels.shape and item["label"] == 0 and item["size"] == pixels.shape[:2]
    assert item["boxes"].tolist() == [[box[0], box[1], box[2] + 1, box[3] + 1]]     # inclusive -> edges
    assert ds.has_boxes(0) and not ds.has_boxes(1) and ds.boxes(1).shape == (0, 4)
    small = ImageNetLocalization("train", classes=[fixture_wnids(3)[2]], max_per_class=2)
    assert small.labels.tolist() == [2, 2] and small.ids == [f"{fixture_wnids(3)[2]}_1", f"{fixture_wnids(3)[2]}_2"]
    with pytest.raises(KeyError, match="unknown wnid"):
        ImageNetLocalization("train", classes=["n01440764"])


def test_val_from_csv_and_from_xml_agree(root, tmp_path):
    from_csv = ImageNetLocalization("val")
    assert len(from_csv) == 6 and sorted(from_csv.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    copy = tmp_path / "imagenet"
    shutil.copytree(root / "imagenet", copy)
    (copy / "LOC_val_solution.csv").unlink()
    from_xml = ImageNetLocalization("val", root=copy)
    assert from_xml.ids == from_csv.ids and np.array_equal(from_xml.labels, from_csv.labels)
    for i in range(len(from_csv)):
        assert np.array_equal(from_xml.boxes(i), from_csv.boxes(i))
    xml_size, objects = read_box_xml(copy / "ILSVRC" / "Annotations" / "CLS-LOC" / "val" / f"{from_csv.ids[0]}.xml")
    assert xml_size == from_csv.read(0)["size"] and objects[0][0] == fixture_wnids(3)[from_csv.labels[0]]


def test_missing_dataset_names_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        ImageNetLocalization("train", root=tmp_path / "nowhere")
    text = str(err.value)
    assert "THESISLIB_DATA" in text and "ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG" in text
    assert "LOC_synset_mapping.txt" in text and "Kaggle" in text
    with pytest.raises(ValueError, match="split"):
        ImageNetLocalization("test")


def test_val_without_any_ground_truth_is_reported(root, tmp_path):
    copy = tmp_path / "imagenet"
    shutil.copytree(root / "imagenet", copy)
    (copy / "LOC_val_solution.csv").unlink()
    shutil.rmtree(copy / "ILSVRC" / "Annotations" / "CLS-LOC" / "val")
    with pytest.raises(DatasetNotFoundError, match="LOC_val_solution.csv or ILSVRC/Annotations/CLS-LOC/val"):
        check_layout(copy)


def test_corrupt_files_are_reported_not_regenerated(root, tmp_path):
    copy = tmp_path / "imagenet"
    shutil.copytree(root / "imagenet", copy)
    bad_xml = next((copy / "ILSVRC" / "Annotations" / "CLS-LOC" / "train" / fixture_wnids(3)[0]).iterdir())
    bad_xml.write_text("<annotation><size>")
    with pytest.raises(DatasetCorruptError, match="unreadable box annotation"):
        read_box_xml(bad_xml)
    (copy / "LOC_val_solution.csv").write_text("id,boxes\nx,y\n")
    with pytest.raises(DatasetCorruptError, match="ImageId,PredictionString"):
        read_val_solution(copy / "LOC_val_solution.csv")
    (copy / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n90000000 1 2 3\n")
    with pytest.raises(DatasetCorruptError, match="malformed row"):
        read_val_solution(copy / "LOC_val_solution.csv")
    (copy / "LOC_synset_mapping.txt").write_text("tench\n")
    with pytest.raises(DatasetCorruptError, match="wnid"):
        read_synsets(copy / "LOC_synset_mapping.txt")


def test_resize_transform_scales_boxes_into_the_input_frame():
    ds = ImageNetLocalization("val", transform=ResizeNormalize(32))
    raw = ImageNetLocalization("val")
    image, label, size, boxes = ds[0]
    height, width = raw.read(0)["size"]
    assert image.shape == (3, 32, 32) and label == raw.labels[0] and size.tolist() == [height, width]
    assert np.allclose(boxes, raw.boxes(0) * np.array([32 / width, 32 / height] * 2))
    images, labels, sizes, box_list = collate_localization([ds[0], ds[1]])
    assert images.shape == (2, 3, 32, 32) and labels.dtype == torch.long and sizes.shape == (2, 2)
    assert len(box_list) == 2 and box_list[0].shape == (1, 4)
    # ImageNet normalisation: roughly centred pixels
    assert -3 < float(images.mean()) < 3
