"""RICAP / MixUp with pairwise-target mixing (ch. 7 eq. 6) and RotNet (rotation batch, engine training)."""

import pytest
import torch
from torch.utils.data import TensorDataset

from thesislib.engine import TrainConfig
from thesislib.nn.staged_mlp import StagedMLP
from thesislib.selfsup import Composite, mix_targets, mixup, ricap, rotate_batch, train_rotnet


def test_mix_targets_hand_computed():
    a = torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]])
    perms = torch.tensor([[0, 1, 2], [1, 2, 0]])
    weights = torch.tensor([[0.7, 0.7, 0.7], [0.3, 0.3, 0.3]])
    t = mix_targets(a, Composite(torch.zeros(3), perms, weights))
    # t[0, 0] = 0.7 A[0,0] + 0.3 A[0,1] = 0.7; t[0, 1] = 0.7 A[0,1] + 0.3 A[0,2] = 0.3; t[1, 0] = 0.3
    assert t[0, 0] == pytest.approx(0.7) and t[0, 1] == pytest.approx(0.3) and t[1, 0] == pytest.approx(0.3)


def test_ricap_pixels_come_from_the_permuted_images_and_weights_are_areas():
    b = 6
    x = torch.arange(b, dtype=torch.float)[:, None, None, None].expand(b, 1, 8, 8).contiguous()
    c = ricap(x, 0.3, torch.Generator().manual_seed(0))
    w, h = c.sizes
    torch.testing.assert_close(c.weights[:, 0].sum(), torch.tensor(1.0))
    assert c.weights[0, 0] == pytest.approx(w * h / 64)
    if w > 0 and h > 0:   # top-left quadrant of composite j holds image perms[0, j]
        torch.testing.assert_close(c.images[:, 0, 0, 0], c.perms[0].float())
    # pixel shares of each source equal the weights: mean pixel value = sum_s w_s * perm_s(j)
    torch.testing.assert_close(c.images.mean((1, 2, 3)), (c.weights * c.perms.float()).sum(0))
    again = ricap(x, 0.3, torch.Generator().manual_seed(1), sizes=c.sizes, perms=c.perms)
    assert again.sizes == c.sizes and torch.equal(again.perms, c.perms)


def test_mixup_is_a_convex_combination():
    x = torch.randn(4, 1, 2, 2)
    c = mixup(x, lam=0.25, perm=torch.tensor([1, 0, 3, 2]))
    torch.testing.assert_close(c.images, 0.25 * x + 0.75 * x[[1, 0, 3, 2]])
    assert c.lam == 0.25 and torch.equal(c.perms[0], torch.arange(4))


def test_rotate_batch_labels_and_inverse():
    x = torch.randn(3, 1, 4, 4)
    r, y = rotate_batch(x)
    assert r.shape == (12, 1, 4, 4) and y.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    torch.testing.assert_close(torch.rot90(r[3:6], -1, dims=(2, 3)), x)
    with pytest.raises(ValueError, match="square"):
        rotate_batch(torch.randn(2, 1, 4, 5))


def test_rotnet_learns_through_the_engine():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 6, 6)
    x[:, :, :2, :] = 1.0               # an "up" bar: the rotation is visible
    x += 0.05 * torch.randn_like(x)
    model = StagedMLP(36, (32,), {"rotation": 4})
    h = train_rotnet(model, TensorDataset(x, torch.zeros(64, dtype=torch.long)),
                     TrainConfig(epochs=15, batch_size=32, progress="none", log_every=1), torch.device("cpu"))
    assert h.get("rot_acc")[-1] > 0.9
