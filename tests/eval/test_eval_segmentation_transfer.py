"""VOC12 segmentation transfer: the FCN head on a conv backbone, one train step, mIoU at the original size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.data.seg_fixtures import write_voc_fixture
from thesislib.data.voc import SegInputTransform, VOCSegmentation
from thesislib.eval.segmentation import SegmentationConfusion
from thesislib.eval.segmentation_transfer import (
    ImageMaskItems,
    SegmentationTransferConfig,
    finetune_segmentation,
    segmentation_loss,
)
from thesislib.eval.transfer import ConvFeatures
from thesislib.nn.alexnet import spot_artifacts_discriminator_trunk
from thesislib.nn.fcn import BackboneFCN


def _fcn(classes: int = 21) -> BackboneFCN:
    torch.manual_seed(0)
    trunk = spot_artifacts_discriminator_trunk(width=0.0625, conv1_kernel=3, conv1_stride=2, input_size=32)
    return BackboneFCN(ConvFeatures(trunk), classes, hidden=(16, 16), dropout=0.0)


def test_backbone_fcn_scores_every_input_pixel() -> None:
    net = _fcn(5).eval()
    out = net(torch.randn(2, 3, 40, 56))
    assert out.shape == (2, 5, 40, 56)
    assert len(net.new_layers()) == 3


def test_segmentation_loss_ignores_void() -> None:
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = 2.0  # class 1 at logit 2 everywhere; the void row would add log(1 + e^2) if counted
    mask = torch.tensor([[[1, 1], [255, 255]]])
    assert float(segmentation_loss(logits, mask)) == pytest.approx(0.126928, rel=1e-4)  # log(1 + e^-2)


def test_confusion_from_matrix_matches_updates() -> None:
    conf = SegmentationConfusion(3)
    conf.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 255]))
    rebuilt = SegmentationConfusion.from_matrix(conf.matrix)
    assert torch.equal(rebuilt.matrix, conf.matrix)
    assert float(rebuilt.mean_iou()) == pytest.approx(float(conf.mean_iou()))
    with pytest.raises(ValueError, match="square"):
        SegmentationConfusion.from_matrix(torch.zeros(2, 3, dtype=torch.int64))


def test_fcn_transfer_trains_and_scores_on_the_voc12_fixture(tmp_path: Path) -> None:
    root = write_voc_fixture(tmp_path, n_train=4, n_val=3)
    train = ImageMaskItems(VOCSegmentation("train", voc_root=root,
                                           transform=SegInputTransform((32, 32), "symmetric")), flip=True)
    val = ImageMaskItems(VOCSegmentation("val", voc_root=root,
                                         transform=SegInputTransform((32, 32), "symmetric", resize_mask=False)))
    assert val[0][1].shape != (32, 32)  # scored at the mask's own resolution
    net = _fcn()
    before = [p.detach().clone() for p in net.parameters()]
    cfg = SegmentationTransferConfig(iterations=2, batch_size=2, lr=1e-3, size=32, rescale_images=4)
    out = finetune_segmentation(net, train, val, "cpu", cfg)
    assert out["rescale"]["folded"] == 1
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, net.parameters()))
    assert 0.0 <= out["miou"] <= 1.0 and "pixel_acc" in out["summary"]
