import math

import pytest
import torch

from thesislib.eval.segmentation import SegmentationConfusion

TARGET = torch.tensor([[[0, 0, 1, 1], [2, 255, 1, 0]]])
PRED = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 0]]])


def test_hand_computed_with_ignore():
    m = SegmentationConfusion(3)
    m.update(PRED, TARGET)
    assert m.matrix.tolist() == [[2, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert m.ignored_pixels == 1
    assert m.iou().tolist() == pytest.approx([2 / 3, 1 / 2, 1 / 2])
    assert m.mean_iou().item() == pytest.approx(5 / 9)
    assert m.pixel_accuracy().item() == pytest.approx(5 / 7)
    assert m.foreground_fraction().item() == pytest.approx(5 / 8)  # 3 of 8 predicted pixels are 0
    s = m.summary()
    assert s["mIoU"] == pytest.approx(5 / 9) and s["IoU_2"] == pytest.approx(0.5)


def test_absent_class_is_nan_and_excluded():
    m = SegmentationConfusion(5)
    m.update(PRED, TARGET)
    iou = m.iou()
    assert math.isnan(iou[3].item()) and math.isnan(iou[4].item())
    assert m.mean_iou().item() == pytest.approx(5 / 9)
    # a class in the ground truth that is never predicted counts as 0
    m.update(torch.zeros(1, 1, 2, dtype=torch.int64), torch.tensor([[[3, 3]]]))
    assert m.iou()[3].item() == 0.0 and math.isnan(m.iou()[4].item())


def test_accumulation_equals_single_update_and_reference():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (6, 9, 11), generator=gen)
    target = torch.randint(0, 4, (6, 9, 11), generator=gen)
    target[torch.rand(6, 9, 11, generator=gen) < 0.1] = 255
    whole, parts = SegmentationConfusion(4), SegmentationConfusion(4)
    whole.update(pred, target)
    for k in range(6):
        parts.update(pred[k:k + 1].to(torch.uint8), target[k:k + 1].to(torch.uint8))
    assert torch.equal(whole.matrix, parts.matrix)
    ref = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(target.flatten().tolist(), pred.flatten().tolist()):
        if t != 255:
            ref[t, p] += 1
    assert torch.equal(whole.matrix, ref)
    merged = SegmentationConfusion(4)
    merged.merge(whole)
    merged.merge(parts)
    assert torch.equal(merged.matrix, 2 * ref)
    whole.reset()
    assert whole.matrix.sum().item() == 0


def test_invalid_labels_reported_when_read():
    m = SegmentationConfusion(3)
    m.update(torch.tensor([[0, 7]]), torch.tensor([[0, 1]]))  # no error (no host sync) here...
    with pytest.raises(ValueError, match="outside 0..2"):
        m.mean_iou()                                           # ...but when results are read
    with pytest.raises(TypeError):
        m.update(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.int64))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 21, (4, 64, 64), generator=gen)
    target = torch.randint(0, 21, (4, 64, 64), generator=gen)
    target[:, :3] = 255
    cpu, gpu = SegmentationConfusion(21), SegmentationConfusion(21, device="cuda")
    cpu.update(pred, target)
    gpu.update(pred.cuda(), target.cuda())
    assert torch.equal(gpu.matrix.cpu(), cpu.matrix)
