"""VOC07 detection transfer: the devkit AP on a hand-computed case, the box loader, Faster R-CNN on a backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.selfsup_fixtures import write_voc07_fixture
from thesislib.data.voc07 import VOC07DetectionInput, VOC2007Detection, parse_boxes
from thesislib.eval.detection import (
    DetectionConfig,
    finetune_detection,
    interpolated_ap,
    transfer_faster_rcnn,
    voc_detection_ap,
)
from thesislib.eval.transfer import ConvFeatures
from thesislib.nn.alexnet import spot_artifacts_discriminator_trunk


def _t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_voc07_detection_ap_hand_case() -> None:
    # class 1: two normal objects (image 0 and 1) and a difficult one (image 1).
    gt = [{"boxes": _t([[0, 0, 10, 10]]), "labels": torch.tensor([1]), "difficult": torch.tensor([False])},
          {"boxes": _t([[20, 20, 30, 30], [50, 50, 60, 60]]), "labels": torch.tensor([1, 1]),
           "difficult": torch.tensor([False, True])}]
    det = [{"boxes": _t([[0, 0, 10, 10], [0, 0, 10, 9.5], [70, 70, 80, 80]]),
            "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([1, 1, 1])},
           {"boxes": _t([[50, 50, 60, 60], [20, 20, 30, 30]]), "scores": torch.tensor([0.65, 0.6]),
            "labels": torch.tensor([1, 1])}]
    # ranks: 0.9 TP, 0.8 duplicate FP, 0.7 FP, 0.65 on the difficult object (ignored), 0.6 TP; npos = 2
    # recall .5 .5 .5 1; precision 1 .5 1/3 .5 -> 11-point AP = (6 * 1 + 5 * 0.5) / 11
    out = voc_detection_ap(det, gt, num_classes=2)
    assert float(out["ap"][0]) == pytest.approx(8.5 / 11)
    assert torch.isnan(out["ap"][1]) and out["map"] == pytest.approx(8.5 / 11)
    # area under the envelope: recall 0 -> .5 at precision 1, .5 -> 1 at precision .5
    area = voc_detection_ap(det, gt, num_classes=2, kind="area")
    assert area["map"] == pytest.approx(0.75)
    # review finding 3: IoU exactly 0.5 is a hit (the devkit's ovmax >= minoverlap): AP 1, not 0
    half = voc_detection_ap([{"boxes": _t([[0, 0, 10, 5]]), "scores": torch.tensor([0.9]),
                              "labels": torch.tensor([1])}],
                            [{"boxes": _t([[0, 0, 10, 10]]), "labels": torch.tensor([1]),
                              "difficult": torch.tensor([False])}], num_classes=1)
    assert half["map"] == pytest.approx(1.0)


def test_interpolated_ap_edge_cases() -> None:
    assert interpolated_ap(torch.zeros(0), torch.zeros(0)) == 0.0
    assert interpolated_ap(torch.tensor([1.0]), torch.tensor([1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kind"):
        interpolated_ap(torch.tensor([1.0]), torch.tensor([1.0]), kind="coco")  # type: ignore[arg-type]


def _annotation(tmp: Path, body: str) -> Path:
    path = tmp / "000001.xml"
    path.write_text(f"<annotation><filename>000001.jpg</filename>{body}</annotation>")
    return path


def test_parse_boxes_reads_the_devkit_format(tmp_path: Path) -> None:
    body = ("<object><name>dog</name><difficult>0</difficult><bndbox><xmin>11</xmin><ymin>21</ymin>"
            "<xmax>40</xmax><ymax>60</ymax></bndbox></object>"
            "<object><name>person</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>5</xmax><ymax>8</ymax></bndbox></object>")
    boxes = parse_boxes(_annotation(tmp_path, body))
    np.testing.assert_array_equal(boxes.boxes, [[10, 20, 40, 60], [0, 0, 5, 8]])  # 1-based inclusive -> 0-based
    np.testing.assert_array_equal(boxes.labels, [12, 15])  # dog, person (1-based; 0 = background)
    np.testing.assert_array_equal(boxes.difficult, [False, True])


def test_parse_boxes_names_a_broken_file(tmp_path: Path) -> None:
    bad = _annotation(tmp_path, "<object><name>dog</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>3</xmax>"
                                "<ymax>4</ymax></bndbox></object>")
    with pytest.raises(DatasetCorruptError, match="000001.xml"):
        parse_boxes(bad)
    empty = _annotation(tmp_path, "<object><name>dog</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>3</xmax>"
                                  "<ymax>4</ymax></bndbox></object>")
    with pytest.raises(DatasetCorruptError, match="valid bndbox"):
        parse_boxes(empty)


def test_detection_input_flips_boxes_with_the_image() -> None:
    sample = {"image": np.zeros((10, 20, 3), np.uint8), "boxes": np.array([[2, 1, 5, 4]], np.float32),
              "labels": np.array([3]), "difficult": np.array([False])}
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        _, target = VOC07DetectionInput(flip=True)(sample)
        seen.add(tuple(target["boxes"][0].tolist()))
    assert seen == {(2.0, 1.0, 5.0, 4.0), (15.0, 1.0, 18.0, 4.0)}


def test_detection_input_drops_difficult_objects_for_training_only() -> None:
    sample = {"image": np.zeros((10, 20, 3), np.uint8),
              "boxes": np.array([[2, 1, 5, 4], [6, 2, 9, 8], [0, 0, 3, 3]], np.float32),
              "labels": np.array([3, 7, 3]), "difficult": np.array([False, True, False])}
    _, train = VOC07DetectionInput(keep_difficult=False)(sample)
    assert train["boxes"].tolist() == [[2, 1, 5, 4], [0, 0, 3, 3]] and train["labels"].tolist() == [3, 3]
    assert not bool(train["difficult"].any())
    _, test = VOC07DetectionInput()(sample)
    assert test["labels"].tolist() == [3, 7, 3] and test["difficult"].tolist() == [False, True, False]


def test_faster_rcnn_transfer_trains_and_scores_on_the_voc07_fixture(tmp_path: Path) -> None:
    root = write_voc07_fixture(tmp_path, n_trainval=6, n_test=4, size=(48, 64))
    train = VOC2007Detection("trainval", root=root, transform=VOC07DetectionInput(flip=True, keep_difficult=False))
    test = VOC2007Detection("test", root=root, transform=VOC07DetectionInput())
    assert len(train.objects) == 6 and train.objects[0].boxes.shape[1] == 4
    torch.manual_seed(0)
    trunk = spot_artifacts_discriminator_trunk(width=0.0625, conv1_kernel=3, conv1_stride=2, input_size=32)
    cfg = DetectionConfig(scales=(48, 56), test_scale=48, max_size=96, anchor_sizes=(16, 32), representation=16,
                          iterations=2, batch_size=2, lr=1e-3, rescale_images=4, seed=0)
    model = transfer_faster_rcnn(ConvFeatures(trunk), cfg)
    before = [p.detach().clone() for p in model.parameters()]
    out = finetune_detection(model, train, test, "cpu", cfg)
    assert out["rescale"]["folded"] == 1
    assert len(out["history"].train) >= 1
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert out["ap"].shape == (20,)
    assert np.isnan(out["map"]) or 0.0 <= out["map"] <= 1.0
