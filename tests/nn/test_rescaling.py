"""Krähenbühl et al.'s rescaling (thesislib.nn.rescaling): BN folding, within-layer and between-layer steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thesislib.nn import alexnet
from thesislib.nn.rescaling import (
    between_layer_rescale,
    change_rates,
    fold_batchnorm,
    krahenbuhl_rescale,
    parameter_layers,
    within_layer_init,
)


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 5, 3, bias=False), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 4 * 4, 6), nn.BatchNorm1d(6))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def test_fold_batchnorm_is_exact_in_eval_mode() -> None:
    net = _bn_net()
    x = torch.randn(7, 3, 6, 6)
    before = net(x)
    assert fold_batchnorm(net) == 3
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in net.modules())
    assert net[3].bias is not None  # the bias-free conv got one
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_hand_case() -> None:
    lin, bn = nn.Linear(1, 1), nn.BatchNorm1d(1).eval()
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.fill_(1.0)
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(4.0 - bn.eps)  # sqrt(var + eps) = 2
        bn.weight.fill_(0.5)
        bn.bias.fill_(0.25)
    net = nn.Sequential(lin, bn)
    fold_batchnorm(net)
    # s = 0.5 / 2 = 0.25; W' = 0.5; b' = 0.25 (1 - 3) + 0.25 = -0.25
    assert float(lin.weight.detach()) == pytest.approx(0.5)
    assert float(lin.bias.detach()) == pytest.approx(-0.25)


def test_fold_batchnorm_rejects_an_orphan_norm() -> None:
    net = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="cannot be folded"):
        fold_batchnorm(net)


def test_within_layer_hand_case() -> None:
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.fill_(1.0)
    x = torch.tensor([[1.0], [2.0], [3.0]])  # z = 3, 5, 7: mean 5, std sqrt(8/3)
    within_layer_init(lin, [lin], x)
    sigma = math.sqrt(8 / 3)
    assert float(lin.weight.detach()) == pytest.approx(2 / sigma, rel=1e-6)
    assert float(lin.bias.detach()) == pytest.approx(-4 / sigma, rel=1e-6)


def test_within_layer_gives_every_channel_the_target_statistics() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 6, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 2 * 2, 5))
    x = torch.randn(16, 3, 10, 10) * 3 + 1
    layers = parameter_layers(net)
    within_layer_init(net, layers, x, mean=0.1, std=2.0)
    h = x
    for module in net:  # check the pre-activations of the final network, layer by layer
        h = module(h)
        if isinstance(module, nn.Conv2d | nn.Linear):
            flat = h.transpose(0, 1).reshape(h.shape[1], -1).double()
            torch.testing.assert_close(flat.mean(1), torch.full((h.shape[1],), 0.1, dtype=torch.float64),
                                       atol=1e-4, rtol=0)
            torch.testing.assert_close(flat.std(1, unbiased=False), torch.full((h.shape[1],), 2.0,
                                                                               dtype=torch.float64), atol=1e-4, rtol=0)


def test_between_layer_hand_case_two_scalar_layers() -> None:
    # f = w2 relu(w1 x), x > 0: r1 / r2 = (w2 / w1)^2, so the rescaled weights are both sqrt(w1 w2) = 2.
    l1, l2 = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        l1.weight.fill_(4.0)
        l2.weight.fill_(1.0)
    net = nn.Sequential(l1, nn.ReLU(), l2)
    x = torch.rand(8, 1) + 0.5
    before = net(x).detach()
    res = between_layer_rescale(net, [l1, l2], x)
    assert float(l1.weight.detach()) == pytest.approx(2.0, rel=1e-6)
    assert float(l2.weight.detach()) == pytest.approx(2.0, rel=1e-6)
    torch.testing.assert_close(res["scales"], torch.tensor([0.5, 2.0], dtype=torch.float64))
    torch.testing.assert_close(net(x), before)


def test_between_layer_equalises_rates_and_keeps_a_homogeneous_function() -> None:
    torch.manual_seed(2)
    net = alexnet(num_classes=7, width=0.125, norm="none", padding="same", fc_dims=(32,), conv1_kernel=3,
                  conv1_stride=1, input_size=16)
    with torch.no_grad():  # make the layers' rates very different
        net.conv2[-2].weight.mul_(20.0)
        net.head.weight.mul_(0.05)
    x = torch.randn(12, 3, 16, 16)
    net.eval()
    before = net(x).detach()
    layers = parameter_layers(net)
    res = between_layer_rescale(net, layers, x, iterations=5)
    r = res["rates_after"]
    assert float(r.max() / r.min()) < 1.01 < float(res["rates_before"].max() / res["rates_before"].min())
    assert float(res["scales"].prod()) == pytest.approx(1.0, rel=1e-6)
    torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-5)  # ReLU / max-pool net: f unchanged
    again = change_rates(net, layers, x, seed=0, samples=4)
    torch.testing.assert_close(again, r)  # common random numbers: the estimate is a function of the weights


def test_krahenbuhl_rescale_folds_initialises_and_rescales() -> None:
    torch.manual_seed(3)
    trunk = alexnet(None, width=0.125, norm="bn", padding="same", fc_dims=(), conv1_kernel=3, conv1_stride=1,
                    input_size=16, pool5=True)
    head = nn.Linear(trunk.trunk_features, 4)
    net = nn.Sequential(trunk, head)
    x = torch.randn(10, 3, 16, 16)
    trunk.train()
    trunk(x)  # give the BNs running statistics
    res = krahenbuhl_rescale(net, x, new_layers=[head])
    assert res["folded"] == 5
    r = res["rates_after"]
    assert float(r.max() / r.min()) < 1.01


def _preactivation_stats(model: nn.Module, layers: list[nn.Module], x: torch.Tensor) -> list[tuple[torch.Tensor,
                                                                                                    torch.Tensor]]:
    """Per-channel (mean, std) of each layer's output, copied before any in-place op after it can run."""
    seen: dict[int, torch.Tensor] = {}
    handles = [layer.register_forward_hook(lambda m, i, o: seen.__setitem__(id(m), o.detach().clone()))
               for layer in layers]
    try:
        with torch.no_grad():
            model.eval()
            model(x)
    finally:
        for h in handles:
            h.remove()
    out = []
    for layer in layers:
        z = seen[id(layer)]
        flat = z.transpose(0, 1).reshape(z.shape[1], -1).double()
        out.append((flat.mean(1), flat.std(1, unbiased=False)))
    return out


def test_within_layer_statistics_are_pre_activation_with_inplace_relu() -> None:
    # review finding 1: the captured output was overwritten by the next ReLU(inplace=True) (relu(z) statistics)
    from thesislib.eval.transfer import ConvFeatures, TransferNet

    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(5, 3), nn.ReLU(inplace=True), nn.Linear(3, 4), nn.ReLU(inplace=True))
    x = torch.randn(64, 5)
    within_layer_init(net, [net[0], net[2]], x)
    trunk = alexnet(None, width=0.125, norm="lrn", padding="same", fc_dims=(), conv1_kernel=3, conv1_stride=1,
                    input_size=16, pool5=False)
    tnet = TransferNet(ConvFeatures(trunk), 3, input_size=16, fc_dims=(8, 8), dropout=0.5)
    xt = torch.randn(32, 3, 16, 16)
    within_layer_init(tnet, tnet.new_layers(), xt)
    for model, layers, inputs in ((net, [net[0], net[2]], x), (tnet, tnet.new_layers(), xt)):
        for mu, sd in _preactivation_stats(model, layers, inputs):
            torch.testing.assert_close(mu, torch.zeros_like(mu), atol=1e-4, rtol=0)
            torch.testing.assert_close(sd, torch.ones_like(sd), atol=1e-4, rtol=0)


def test_rescaling_a_wrapped_classifier_touches_only_the_used_layers() -> None:
    # review finding 5: ConvFeatures(lci_classifier) keeps the classifier's fc layers, BNs and head unused;
    # the rescaling raised "receives no gradient"; now it treats conv1..conv5 + the new layers only
    from thesislib.eval.transfer import ConvFeatures, TransferNet
    from thesislib.nn import lci_classifier

    torch.manual_seed(5)
    clf = lci_classifier(num_classes=6, width=0.125, conv1_kernel=3, conv1_stride=1, fc_dims=(32, 32), input_size=16)
    x = torch.randn(12, 3, 16, 16)
    clf.train()
    clf(x)  # running statistics for every BN
    net = TransferNet(ConvFeatures(clf, "conv5"), 4, input_size=16, fc_dims=(8, 8), dropout=0.0)
    unused = {k: v.clone() for k, v in list(clf.fc.state_dict().items()) + list(clf.head.state_dict().items())}
    res = krahenbuhl_rescale(net, x, new_layers=net.new_layers())
    convs = [getattr(clf, n)[1] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")]  # SamePad2d, Conv2d, ...
    assert all(isinstance(c, nn.Conv2d) for c in convs)
    assert [id(m) for m in res["layers"]] == [id(m) for m in convs + net.new_layers()]
    assert res["folded"] == 5  # the conv BNs; the fc BNs are not used and stay
    assert sum(isinstance(m, nn.BatchNorm1d) for m in clf.fc) == 2
    after = dict(list(clf.fc.state_dict().items()) + list(clf.head.state_dict().items()))
    assert set(after) == set(unused)
    for k, v in unused.items():
        torch.testing.assert_close(after[k], v, rtol=0, atol=0)
    r = res["rates_after"]
    assert float(r.max() / r.min()) < 1.01
