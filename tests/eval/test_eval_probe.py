import pytest
import torch
from torch import nn

from thesislib.eval.probe import ProbeConfig, extract_features, linear_probe


def _blobs(n, dim, classes, seed, separable=True):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 6
    x = torch.randn(n, dim, generator=gen) * 3 + 100  # offset / scale: standardisation matters
    if separable:
        x = x + centres[y]
    else:
        y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def test_separable_data_reaches_100_percent():
    xtr, ytr = _blobs(300, 16, 4, seed=0)
    xte, yte = _blobs(200, 16, 4, seed=1)
    out = linear_probe(xtr, ytr, xte, yte, "cpu", epochs=20, batch_size=64, seed=0)
    assert out["train_acc"] == 1.0 and out["test_acc"] >= 0.99
    assert isinstance(out["config"], ProbeConfig) and out["config"].lr == 0.1
    # the returned model takes raw features
    assert (out["model"](xte).argmax(1) == yte).float().mean().item() == out["test_acc"]


def test_random_labels_give_chance():
    xtr, ytr = _blobs(400, 32, 10, seed=2, separable=False)
    xte, yte = _blobs(1000, 32, 10, seed=3, separable=False)
    out = linear_probe(xtr, ytr, xte, yte, "cpu", epochs=30, batch_size=64, seed=0)
    assert 0.05 <= out["test_acc"] <= 0.16
    assert out["train_acc"] > out["test_acc"] + 0.1  # it can memorise, not generalise


def test_deterministic_with_seed_and_lbfgs():
    xtr, ytr = _blobs(120, 8, 3, seed=4)
    a = linear_probe(xtr, ytr, xtr, ytr, "cpu", epochs=5, batch_size=32, seed=7, weight_decay=1e-3)
    b = linear_probe(xtr, ytr, xtr, ytr, "cpu", epochs=5, batch_size=32, seed=7, weight_decay=1e-3)
    c = linear_probe(xtr, ytr, xtr, ytr, "cpu", epochs=5, batch_size=32, seed=8, weight_decay=1e-3)
    wa, wb, wc = (r["model"][1].weight for r in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    lb = linear_probe(xtr, ytr, xtr, ytr, "cpu", epochs=50, optimizer="lbfgs", weight_decay=1e-2)
    assert lb["train_acc"] == 1.0 and lb["config"].lr == 1.0
    with pytest.raises(ValueError):
        linear_probe(xtr, ytr, xtr, ytr, "cpu", optimizer="adam")


def test_extract_features_order_shapes_and_mode():
    x = torch.randn(10, 3, 4, 4)
    y = torch.arange(10)
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2))
    net.train()
    feats, labels = extract_features(net, torch.utils.data.TensorDataset(x, y), "cpu", batch_size=4)
    assert feats.shape == (10, 2 * 2 * 2) and feats.dtype == torch.float32
    assert torch.equal(labels, y)
    assert net.training  # restored
    net.eval()
    with torch.no_grad():
        assert torch.allclose(feats, net(x).flatten(1))  # eval-mode BN was used, in order


class _RandomShift(torch.utils.data.Dataset):
    """Items (x + a draw from torch's global generator, label): a stand-in for a random-crop transform."""

    def __init__(self, n: int) -> None:
        self.x, self.y = torch.randn(n, 2, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 2

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i] + torch.rand(()), int(self.y[i])


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)

    def conv_layers(self, x, upto="conv1"):
        return {"conv1": self.conv(x)}


def test_layer_probes_train_views_stack_seeded_random_views():
    from thesislib.eval.probe import LayerFeatures, _train_features, layer_probes

    torch.manual_seed(0)
    model, data = _Conv(), _RandomShift(6)
    fn = LayerFeatures(model, "conv1", dims=48)
    state = torch.random.get_rng_state()
    x3, y3 = _train_features(fn, data, "cpu", 4, views=3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left as it was
    assert x3.shape == (18, 48) and torch.equal(y3, torch.cat([data.y] * 3))
    assert not torch.allclose(x3[:6], x3[6:12])  # each view draws its own crops
    again, _ = _train_features(fn, data, "cpu", 2, views=3, seed=5)
    assert torch.allclose(x3, again)  # seeded: the same views whatever the batch size
    other, _ = _train_features(fn, data, "cpu", 4, views=3, seed=6)
    assert not torch.allclose(x3, other)
    out = layer_probes(model, ["conv1"], data, data, "cpu", dims=48, batch_size=4, train_views=3, epochs=2, seed=5)
    assert out["conv1"]["dims"] == 48 and 0.0 <= out["conv1"]["test_acc"] <= 1.0
    with pytest.raises(ValueError, match="train_views"):
        layer_probes(model, ["conv1"], data, data, "cpu", train_views=0)


# --- multi-label probes (one logistic regression per label, mean per-label average precision) ---

def _one_feature_two_labels():
    """Train: x in {-2, -1, 1, 2} (repeated); label A = x > 0, label B = x < 0 (separable, so the fitted weights
    carry those signs). Test: x = 4, 3, 2, 1 with A = [1, 0, 0, 1], B = [0, 1, 0, 1]."""
    xtr = torch.tensor([-2.0, -1.0, 1.0, 2.0]).repeat(8)[:, None]
    ytr = torch.stack([(xtr[:, 0] > 0), (xtr[:, 0] < 0)], dim=1).float()
    xte = torch.tensor([4.0, 3.0, 2.0, 1.0])[:, None]
    yte = torch.tensor([[1, 0], [0, 1], [0, 0], [1, 1]], dtype=torch.float32)
    return xtr, ytr, xte, yte


def test_multilabel_probe_ap_is_the_hand_computed_mean_of_per_label_aps():
    xtr, ytr, xte, yte = _one_feature_two_labels()
    out = linear_probe(xtr, ytr, xte, yte, "cpu", epochs=30, batch_size=8, seed=0, multilabel=True)
    w = out["model"][1].weight[:, 0]
    assert w[0] > 0 > w[1]  # A rises with x, B falls
    # A ranks the test images by x descending: positives at ranks 1 and 4 -> (1/1 + 2/4) / 2 = 0.75.
    # B ranks by x ascending (x = 1, 2, 3, 4): positives at ranks 1 and 3 -> (1/1 + 2/3) / 2 = 5/6.
    assert out["test_ap_per_class"] == pytest.approx([0.75, 5 / 6])
    assert out["test_ap"] == pytest.approx((0.75 + 5 / 6) / 2)
    assert out["train_ap"] == pytest.approx(1.0) and out["train_acc"] == 1.0
    # per-label accuracy at p >= 0.5 (logit >= 0): A predicted on all four test images (x > 0) -> 2/4 right,
    # B predicted on none -> 2/4 right
    assert out["test_acc"] == pytest.approx(0.5)
    assert out["config"].multilabel


def test_multilabel_probe_skips_labels_without_positives_and_checks_shapes():
    xtr, ytr, xte, yte = _one_feature_two_labels()
    yte = yte.clone()
    yte[:, 1] = 0  # label B has no positive in the test set: NaN, left out of the mean
    out = linear_probe(xtr, ytr, xte, yte, "cpu", epochs=10, batch_size=8, multilabel=True, optimizer="lbfgs")
    assert out["test_ap_per_class"][1] != out["test_ap_per_class"][1]  # NaN
    assert out["test_ap"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="multilabel"):
        linear_probe(xtr, ytr[:, 0], xte, yte, "cpu", multilabel=True)
    with pytest.raises(ValueError, match="multilabel"):
        linear_probe(xtr, ytr, xte, yte[:, :1], "cpu", multilabel=True)


def test_layer_probes_pass_multilabel_targets_through():
    from thesislib.eval.probe import layer_probes

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)

        def conv_layers(self, x, upto=None):
            return {"conv1": self.conv(x)}

    torch.manual_seed(0)
    x = torch.randn(24, 1, 4, 4)
    y = torch.stack([(x.mean((1, 2, 3)) > 0), (x[:, 0, 0, 0] > 0), torch.ones(24, dtype=torch.bool)], 1).float()
    data = torch.utils.data.TensorDataset(x, y)
    out = layer_probes(Net(), ["conv1"], data, data, "cpu", dims=32, epochs=5, batch_size=8, multilabel=True)
    assert len(out["conv1"]["test_ap_per_class"]) == 3 and 0.0 < out["conv1"]["test_ap"] <= 1.0
    assert out["conv1"]["test_ap_per_class"][2] == pytest.approx(1.0)  # an all-positive label: AP 1
