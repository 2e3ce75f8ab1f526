"""Multi-domain ResNet-26: shapes, adapters as identity at initialisation, domain isolation,
training modes, weight-decay groups and the joint SVD compression (Rebuffi Ch. 3-4)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from thesislib.eval.decathlon import count_parameters
from thesislib.nn import build_backbone
from thesislib.nn.adapter_svd import compress_parallel_adapters, joint_factors, stacked_adapters
from thesislib.nn.multidomain import WeightDecay, param_groups, prepare_domain, trainable_parameters
from thesislib.nn.resnet26_adapters import MultiDomainResNet, SeriesAdapter, domain_predictor, resnet26

SMALL = {"width": 0.25, "blocks": (1, 1, 1)}


def _randomise(net: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.ndim == 1 else 0.0))


def test_resnet26_shapes_and_depth() -> None:
    net = resnet26([10, 5])
    x = torch.randn(2, 3, 64, 64)
    assert net(x, 0).shape == (2, 10) and net(x, 1).shape == (2, 5)
    assert net.features(x).shape == (2, 256)
    convs3 = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs3) == 1 + 3 * 4 * 2  # + 1 classifier = 26 weighted layers
    assert build_backbone("resnet26", num_classes=3, width=0.5)(x).shape == (2, 3)
    with pytest.raises(IndexError):
        net(x, 2)


def test_resolution_is_halved_per_stage() -> None:
    net = resnet26(4, **SMALL)
    sizes = []
    hooks = [unit.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
             for stage in net.stages for unit in stage]
    net(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert sizes == [32, 16, 8]


@pytest.mark.parametrize("adapter", ["series", "parallel"])
def test_adapters_at_initialisation_leave_the_function_unchanged(adapter: str) -> None:
    plain = resnet26([7], **SMALL)
    _randomise(plain)
    adapted = resnet26([7], adapter=adapter, **SMALL)
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all("adapters" in k for k in missing)
    # the series adapters' own BN gets random statistics: alpha = 0 must still give the identity
    for m in adapted.modules():
        if isinstance(m, SeriesAdapter):
            m.bn.running_mean.normal_()
            m.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 3, 32, 32)
    plain.eval(), adapted.eval()
    torch.testing.assert_close(adapted(x), plain(x))
    adapted.train(), plain.train()
    torch.testing.assert_close(adapted(x), plain(x))


def test_parallel_adapter_is_a_centre_tap_change() -> None:
    """f * x + diag_1(alpha) * x == (f + diag_L(alpha)) * x (Ch. 4 eq. 3)."""
    net = resnet26([3], adapter="parallel", **SMALL)
    conv = net.stages[0][0].conv1
    with torch.no_grad():
        conv.adapters[0].weight.normal_()
    x = torch.randn(2, conv.c_in, 16, 16)
    fused = conv.conv.weight.detach().clone()
    fused[:, :, 1, 1] += conv.adapters[0].weight[:, :, 0, 0]
    y = torch.nn.functional.conv2d(x, fused, stride=conv.stride, padding=1)
    torch.testing.assert_close(conv.conv(x) + conv.adapters[0](x), y)


def test_add_domain_copies_the_source_and_isolates_domains() -> None:
    net = resnet26([4], adapter="series", **SMALL)
    _randomise(net)
    d = net.add_domain(6)
    assert d == 1 and net.num_classes == [4, 6]
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    torch.testing.assert_close(net.features(x, 1), net.features(x, 0))
    before = net(x, 0).detach()
    view = prepare_domain(net, d, "adapters")
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    view.train()
    for _ in range(3):
        opt.zero_grad()
        view(torch.randn(4, 3, 16, 16)).logsumexp(1).mean().backward()
        opt.step()
    net.eval()
    torch.testing.assert_close(net(x, 0), before)  # the source domain is untouched
    assert not torch.allclose(net.features(x, 1), net.features(x, 0))


def test_modes_train_the_right_groups() -> None:
    net = resnet26([4, 3], adapter="series", **SMALL)
    groups = {m: {g for g, _ in trainable_parameters(net, 1, m)} for m in ("feature", "bn", "adapters", "finetune")}
    assert groups["feature"] == {"head"}
    assert groups["bn"] == {"bn", "head"}
    assert groups["adapters"] == {"adapter", "bn", "head"}
    assert groups["finetune"] == {"conv3x3", "adapter", "bn", "head"}
    n_bn = count_parameters([p for _, p in trainable_parameters(net, 1, "bn")])
    n_ad = count_parameters([p for _, p in trainable_parameters(net, 1, "adapters")])
    assert n_bn < n_ad
    with pytest.raises(ValueError, match="adapters"):
        trainable_parameters(resnet26(3, **SMALL), 0, "adapters")
    pg = param_groups(net, 1, "adapters", WeightDecay(adapter=0.005, bn=0.0, head=1e-4))
    assert {g["name"]: g["weight_decay"] for g in pg} == {"adapter": 0.005, "bn": 0.0, "head": 1e-4}
    with pytest.raises(ValueError, match="nosuch"):
        param_groups(net, 1, "bn", {"nosuch": 1.0})


def test_feature_mode_keeps_frozen_bn_on_running_statistics() -> None:
    net = resnet26([4], **SMALL)
    d = net.add_domain(2)
    view = prepare_domain(net, d, "feature")
    view.train()
    stats = net.stem.bns[d].running_mean.clone()
    view(torch.randn(8, 3, 16, 16) * 3 + 1)
    torch.testing.assert_close(net.stem.bns[d].running_mean, stats)
    assert not net.stem.bns[d].training and net.heads[d].training


def test_frozen_bn_stays_frozen_after_sync_batchnorm_conversion() -> None:
    """The engine converts BNs to SyncBatchNorm under DDP: the feature extractor's frozen BNs (new
    module objects after the conversion) must still be put in eval mode by the view's train()."""
    net = resnet26([4], **SMALL)
    d = net.add_domain(2)
    view = prepare_domain(net, d, "feature")
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(view)
    converted.train()
    bns = [m for m in converted.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert bns and all(not bn.training for bn in bns)  # feature mode trains no BN
    assert converted.net.heads[d].training
    assert len(converted.frozen_bns()) == len(bns)


def test_add_domain_on_a_compressed_network() -> None:
    net = resnet26([4, 3, 3], adapter="parallel", **SMALL)
    _randomise(net)
    compress_parallel_adapters(net, [1, 2], 0.5)
    d = net.add_domain(5, init_from=None)
    x = torch.randn(2, 3, 16, 16)
    assert net(x, d).shape == (2, 5)
    for conv in net.domain_convs():
        assert conv.adapters[d].out_channels == conv.basis.in_channels
        assert not conv.adapters[d].weight.any()


def test_series_parameter_count_per_module() -> None:
    """Domain-specific parameters of one residual module with C channels and series adapters:
    2 x (C^2 adapter + 2C adapter BN + 2C task BN) (Ch. 3 footnote 2 counts 2(C^2 + 5C) with the
    conv biases the released code does not have)."""
    net = resnet26([3], adapter="series", **SMALL)
    unit = net.stages[1][0]
    c = unit.conv2.c_out
    own = count_parameters(list(unit.conv1.bns[0].parameters()) + list(unit.conv1.adapters[0].parameters())
                           + list(unit.conv2.bns[0].parameters()) + list(unit.conv2.adapters[0].parameters()))
    assert own == 2 * (c * c + 4 * c)


def test_placement() -> None:
    def adapted(net: MultiDomainResNet) -> list[str]:
        return [c.adapter for c in net.domain_convs()]
    # the stem keeps its adapter in every placement (the released code's conv_task)
    assert adapted(resnet26(2, adapter="parallel", placement="early", **SMALL)) == [
        "parallel", "parallel", "parallel", "none", "none", "none", "none"]
    assert adapted(resnet26(2, adapter="parallel", placement="late", **SMALL))[-2:] == ["parallel", "parallel"]
    assert adapted(resnet26(2, adapter="parallel", placement="half", **SMALL)) == [
        "parallel", "none", "parallel", "none", "parallel", "none", "parallel"]
    assert adapted(resnet26(2, adapter="parallel", placement="mid", **SMALL))[0] == "parallel"
    assert set(adapted(resnet26(2, adapter="parallel", **SMALL))) == {"parallel"}
    with pytest.raises(ValueError, match="placement"):
        resnet26(2, placement="everywhere")


def test_joint_svd_on_a_hand_case() -> None:
    stacked = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]], dtype=torch.float64)
    beta, gammas, s = joint_factors(stacked, 2, 1)
    torch.testing.assert_close(s, torch.tensor([3.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(beta @ gammas[0], torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(beta @ gammas[1], torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="K must"):
        joint_factors(stacked, 2, 3)


def test_svd_with_full_rank_reproduces_the_adapters() -> None:
    net = resnet26([3, 4, 5], adapter="parallel", **SMALL)
    _randomise(net, 1)
    net.eval()
    x = torch.randn(2, 3, 16, 16)
    before = [net(x, d) for d in range(3)]
    weights = {id(c): stacked_adapters(c, [1, 2]) for c in net.domain_convs()}
    spectra = compress_parallel_adapters(net, [1, 2], fraction=1.0)
    assert len(spectra) == 7 and all((s[:-1] >= s[1:]).all() for s in spectra.values())
    for d in (1, 2):
        torch.testing.assert_close(net(x, d), before[d], rtol=1e-4, atol=1e-4)
    conv = net.stages[1][0].conv1
    recon = torch.cat([(conv.basis.weight[:, :, 0, 0] @ conv.adapters[t].weight[:, :, 0, 0]).double()
                       for t in (1, 2)], 1)
    torch.testing.assert_close(recon, weights[id(conv)], rtol=1e-4, atol=1e-5)
    assert not conv.basis.weight.requires_grad
    # domain 0 was not compressed: its adapter is now zero (the plain network)
    assert float(conv.adapters[0].weight.detach().abs().sum()) == 0.0


def test_svd_half_rank_halves_the_adapter_parameters() -> None:
    net = resnet26([3, 3, 3, 3], adapter="parallel", **SMALL)
    conv = net.stages[2][0].conv2
    c = conv.c_out
    compress_parallel_adapters(net, [0, 1, 2, 3], fraction=0.5)
    k = conv.basis.weight.shape[1]
    assert k == c // 2
    per_domain = conv.adapters[0].weight.numel()
    assert per_domain == k * c and conv.basis.weight.numel() == c * k  # (T C K + C K) / (T C^2) -> K / C


def test_domain_predictor() -> None:
    net = domain_predictor(5, width=0.25)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5) and net.blocks == (2, 2, 2)


def test_copy_domain_joins_separately_trained_domains() -> None:
    from thesislib.nn.multidomain import copy_domain

    a = resnet26([4], adapter="parallel", **SMALL)
    _randomise(a, 2)
    a.add_domain(3)
    _randomise(a, 3)
    joint = resnet26([4], adapter="parallel", **SMALL)
    keys = joint.state_dict()
    joint.load_state_dict({k: v for k, v in a.state_dict().items() if k in keys})
    joint.add_domain(3, init_from=None)
    copy_domain(a, 1, joint, 1)
    a.eval(), joint.eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(joint(x, 1), a(x, 1))
