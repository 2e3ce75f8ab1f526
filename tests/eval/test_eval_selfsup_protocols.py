"""Per-layer probe pooling, kNN classification / retrieval, the folds protocol, VOC07 transfer pieces."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from thesislib.eval.folds import fold_protocol
from thesislib.eval.knn import knn_accuracy, knn_predict, precision_at_k, retrieve
from thesislib.eval.multilabel import average_precision
from thesislib.eval.probe import layer_probes, probe_grid, probe_pool
from thesislib.eval.transfer import (
    MultiCropItems,
    RandomCropItems,
    TransferConfig,
    finetune_multilabel,
    masked_bce,
    voc07_map,
)
from thesislib.nn.alexnet import alexnet


def test_probe_grid_gives_the_protocols_9k_dims():
    # AlexNet conv1..conv5 channels at 224 px: 10x10, 6x6, 5x5, 5x5, 6x6 (study note 004 §0)
    assert [probe_grid(c) for c in (96, 256, 384, 384, 256)] == [10, 6, 5, 5, 6]
    assert all(8500 < c * probe_grid(c) ** 2 < 10000 for c in (96, 256, 384))


def test_probe_pool_averages_blocks_and_never_upsamples():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    pooled = probe_pool(x, dims=4)  # s = 2: 2x2 block means
    assert torch.allclose(pooled, torch.tensor([[2.5, 4.5, 10.5, 12.5]]))
    assert probe_pool(torch.zeros(2, 4, 3, 3), dims=10_000).shape == (2, 4 * 9)


def test_layer_probes_on_a_frozen_alexnet():
    torch.manual_seed(0)
    net = alexnet(width=0.0625, padding="same", conv1_kernel=3, conv1_stride=1, input_size=16, fc_dims=(),
                  pool5=False)
    y = torch.arange(40) % 2
    x = torch.randn(40, 3, 16, 16) + y[:, None, None, None] * 2.0  # brightness tells the class
    before = [p.clone() for p in net.parameters()]
    out = layer_probes(net, ["conv1", "conv3"], TensorDataset(x, y), TensorDataset(x, y), "cpu", dims=64,
                       epochs=30, batch_size=20)
    assert set(out) == {"conv1", "conv3"} and out["conv1"]["train_acc"] == 1.0
    assert out["conv1"]["dims"] == net.channels[0] * probe_grid(net.channels[0], 64) ** 2
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # frozen


def test_knn_on_hand_points():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    test = torch.tensor([[2.0, 0.1], [0.2, 3.0]])
    assert knn_predict(train, labels, test, k=1).tolist() == [0, 1]
    assert knn_predict(train, labels, test, k=5).tolist() == [1, 1]  # 3 votes for class 1
    # cosine: scale does not matter; [0, 1] and [0, 2] tie for [0, 3], the lower index first
    sims, idx = retrieve(torch.tensor([[0.0, 3.0]]), train, k=3)
    assert idx[0].tolist() == [2, 4, 3] and torch.allclose(sims[0, :2], torch.ones(2))
    assert knn_accuracy(train, labels, train, labels, k=1) == 1.0
    loo, loo_idx = retrieve(train, train, k=1, exclude_self=True)
    assert (loo_idx[:, 0] != torch.arange(5)).all()
    assert precision_at_k(labels, labels, loo_idx).tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(train, labels, test, k=6)


def test_weighted_vote_differs_from_majority():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.05, 1.0]])
    labels = torch.tensor([0, 1, 1])
    q = torch.tensor([[1.0, 0.9]])
    assert knn_predict(train, labels, q, k=3).item() == 1
    assert knn_predict(train, labels, q, k=3, vote="weighted").item() == 1
    q2 = torch.tensor([[1.0, 0.02]])
    # weighted: 1.0 for class 0 vs ~0.02 + ~0.07 for class 1
    assert knn_predict(train, labels, q2, k=3, vote="weighted").item() == 0


def test_fold_protocol_mean_and_sample_sd():
    folds = [np.arange(i * 3, i * 3 + 3) for i in range(4)]
    seen = []
    out = fold_protocol(folds, lambda i, idx: (seen.append(idx.tolist()), [0.7, 0.8, 0.9, 0.8][i])[1])
    assert seen[2] == [6, 7, 8] and out["n_folds"] == 4
    assert math.isclose(out["mean"], 0.8) and math.isclose(out["std"], float(np.std([0.7, 0.8, 0.9, 0.8], ddof=1)))


def test_voc07_eleven_point_ap_and_difficult_entries():
    s = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    t = torch.tensor([1, 0, 1, 0, 0])
    # positives at ranks 1 (P=1, R=.5) and 3 (P=2/3, R=1): 6 levels at 1, 5 levels at 2/3
    assert math.isclose(float(average_precision(s, t, "voc07")), (6 + 5 * 2 / 3) / 11, rel_tol=1e-9)
    # a difficult item ranked first is ignored: same AP as without it
    labels = torch.tensor([[0], [1], [-1], [1], [-1], [-1]])
    scores = torch.tensor([[0.95], [0.9], [0.8], [0.7], [0.6], [0.5]])
    assert math.isclose(float(voc07_map(scores, labels)), (6 + 5 * 2 / 3) / 11, rel_tol=1e-9)


def test_masked_bce_ignores_difficult():
    logits = torch.tensor([[0.0, 5.0, -3.0]])
    labels = torch.tensor([[1, 0, -1]])
    want = (torch.nn.functional.softplus(torch.tensor(-0.0)) + torch.nn.functional.softplus(torch.tensor(-3.0))) / 2
    assert torch.allclose(masked_bce(logits, labels), want)


def test_crops_are_windows_and_test_crops_are_fixed_per_item():
    img = torch.arange(2 * 6 * 7, dtype=torch.float32).reshape(2, 6, 7)
    ds = [(img, torch.tensor([1]))]
    crop, _ = RandomCropItems(ds, 4, flip=False)[0]
    assert crop.shape == (2, 4, 4)
    top, left = divmod(int(crop[0, 0, 0]), 7)
    assert torch.equal(crop, img[:, top:top + 4, left:left + 4])
    multi = MultiCropItems(ds, 4, n=3, seed=5)
    a, _ = multi[0]
    assert a.shape == (3, 2, 4, 4) and torch.equal(a, multi[0][0])


def test_finetune_multilabel_learns_a_colour_rule():
    torch.manual_seed(0)
    n = 24
    cls = torch.arange(n) % 2
    x = torch.randn(n, 3, 10, 10) * 0.1 + torch.where(cls[:, None, None, None] == 1, 1.0, -1.0)
    labels = torch.stack([torch.where(cls == 1, 1, -1), torch.where(cls == 0, 1, -1)], dim=1).to(torch.int8)
    data = TensorDataset(x, labels)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
    cfg = TransferConfig(iterations=60, batch_size=8, lr=0.1, crop=8, n_test_crops=2, seed=1)
    out = finetune_multilabel(net, data, data, "cpu", cfg)
    assert out["scores"].shape == (n, 2) and out["map"] == 1.0


def test_training_crops_are_flipped_half_the_time_and_seeded():
    """Regression: the docstring promised flips, RandomCropItems never flipped."""
    img = torch.arange(2 * 6 * 7, dtype=torch.float32).reshape(2, 6, 7)
    items = RandomCropItems([(img, torch.tensor([1]))], 4)
    torch.manual_seed(0)
    crops = [items[0][0] for _ in range(200)]
    flipped = [bool(c[0, 0, 0] > c[0, 0, -1]) for c in crops]  # a flipped window reads right-to-left
    assert 60 < sum(flipped) < 140
    for c, f in zip(crops, flipped):
        plain = c.flip(-1) if f else c
        top, left = divmod(int(plain[0, 0, 0]), 7)
        assert torch.equal(plain, img[:, top:top + 4, left:left + 4])
    torch.manual_seed(0)
    assert all(torch.equal(a, items[0][0]) for a in crops[:5])


def test_transfer_net_with_rescaling_fine_tunes_an_alexnet_backbone():
    """The VOC07 path end to end on a tiny fixture: AlexNet conv layers (BN after conv5, LRN) as the
    backbone, new fc layers, Krähenbühl rescaling (BN folded, rates equalised), fine-tuning, 2-crop test."""
    from thesislib.eval.transfer import ConvFeatures, TransferNet
    from thesislib.nn.alexnet import spot_artifacts_discriminator_trunk

    torch.manual_seed(0)
    n = 24
    cls = torch.arange(n) % 2
    x = torch.randn(n, 3, 20, 20) * 0.3 + torch.where(cls[:, None, None, None] == 1, 0.8, -0.8)
    labels = torch.stack([torch.where(cls == 1, 1, -1), torch.where(cls == 0, 1, 0)], dim=1).to(torch.int8)
    data = TensorDataset(x, labels)
    trunk = spot_artifacts_discriminator_trunk(width=0.0625, conv1_kernel=3, conv1_stride=1, input_size=16)
    net = TransferNet(ConvFeatures(trunk), 2, input_size=16, fc_dims=(16,), dropout=0.0)
    assert len(net.new_layers()) == 2
    cfg = TransferConfig(iterations=40, batch_size=8, lr=1e-3, crop=16, n_test_crops=2, seed=1, rescale_images=16)
    out = finetune_multilabel(net, data, data, "cpu", cfg)
    assert out["rescale"]["folded"] == 1  # the BN after conv5
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    r = out["rescale"]["rates_after"]
    assert float(r.max() / r.min()) < 1.1  # LRN is not homogeneous: equalised to within the iterations' tolerance
    assert out["scores"].shape == (n, 2) and out["map"] > 0.9


def test_conv_features_rejects_a_module_without_conv_layers():
    from thesislib.eval.transfer import ConvFeatures

    with pytest.raises(TypeError, match="conv_layers"):
        ConvFeatures(torch.nn.Linear(2, 2))


def test_transfer_net_fc_layers_are_caffe_alexnet_order():
    # review finding 8: fc - relu - dropout per hidden layer (drop7 before the classifier, no dropout on pool5)
    from thesislib.eval.transfer import ConvFeatures, TransferNet
    from thesislib.nn.alexnet import spot_artifacts_discriminator_trunk

    trunk = spot_artifacts_discriminator_trunk(width=0.0625, conv1_kernel=3, conv1_stride=1, input_size=16)
    net = TransferNet(ConvFeatures(trunk), 2, input_size=16, fc_dims=(16, 8), dropout=0.5)
    assert [type(m) for m in net.fc] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout] * 2


def test_rescale_inputs_picks_seeded_images_through_prepare():
    # review finding 10: one helper builds the rescaling batch for the cls / seg (crop) and det (resize) paths
    from thesislib.eval.transfer import rescale_inputs

    data = TensorDataset(torch.arange(5).float().view(5, 1, 1, 1).expand(5, 1, 4, 4).clone(), torch.zeros(5))
    seen = []

    def prepare(image, gen):
        seen.append(gen)
        return image[..., :2, :2] * 2

    batch = rescale_inputs(data, 3, seed=4, prepare=prepare)
    gen = torch.Generator().manual_seed(4)
    picks = torch.randperm(5, generator=gen)[:3]
    assert batch.shape == (3, 1, 2, 2) and batch.dtype == torch.float32
    assert torch.equal(batch[:, 0, 0, 0], 2 * picks.float())
    assert len({id(g) for g in seen}) == 1  # one generator for the picks and the prepare draws
    assert rescale_inputs(data, 9, seed=4, prepare=prepare).shape[0] == 5
