"""The cached sampler (Ramachandran et al. 2017): same samples as the naive sampler for both PixelCNN++
variants, and its cache holds the full forward pass's activations at every final position."""

from __future__ import annotations

import pytest
import torch

from thesislib.nn.pixelcnn import (
    CachedPixelCNNpp,
    PixelCNNpp,
    categorical_step,
    dmol_params_count,
    dmol_step,
    sample_cached,
    sample_naive,
)
from thesislib.nn.pixelcnn import cached as cached_module

# (updown, height, width): odd and even sizes without down/up-sampling; with it H, W must be multiples of 4
SHAPES = [(False, 9, 7), (False, 8, 8), (True, 8, 8), (True, 12, 8)]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("updown,height,width", SHAPES)
def test_cached_equals_naive_rgb_dmol_with_conditioning(updown, height, width):
    torch.manual_seed(0)
    model = PixelCNNpp(3, dmol_params_count(3, 2), nr_resnet=1, nr_filters=8, cond_channels=2, updown=updown,
                       dropout=0.5)
    h = torch.randn(2, 2, height, width)
    step = dmol_step(3, 2)
    shape = (2, 3, height, width)
    a = sample_naive(model, shape, step, gen(1), h=h)
    b = sample_cached(model, shape, step, gen(1), h=h)
    assert torch.equal(a, b)
    assert a.unique().numel() > 20                                  # not a constant image
    assert not torch.equal(a, sample_cached(model, shape, step, gen(2), h=h))   # the generator matters
    assert not torch.equal(a, sample_cached(model, shape, step, gen(1), h=h.flip(-1)))  # and so does h


@pytest.mark.parametrize("updown,height,width", [SHAPES[0], SHAPES[2]])
def test_cached_equals_naive_variance_reduction_and_map(updown, height, width):
    torch.manual_seed(3)
    model = PixelCNNpp(3, dmol_params_count(3, 2), nr_resnet=1, nr_filters=8, updown=updown, dropout=0.0)
    for step in (dmol_step(3, 2, variance_reduction=0.3), dmol_step(3, 2, map=True)):
        shape = (1, 3, height, width)
        assert torch.equal(sample_naive(model, shape, step, gen(5)), sample_cached(model, shape, step, gen(5)))


@pytest.mark.parametrize("updown,height,width", SHAPES)
def test_cached_equals_naive_categorical_16_levels(updown, height, width):
    torch.manual_seed(2)
    model = PixelCNNpp(1, 16, nr_resnet=2, nr_filters=8, updown=updown, dropout=0.0)
    a = sample_naive(model, (3, 1, height, width), categorical_step(), gen(4))
    b = sample_cached(model, (3, 1, height, width), categorical_step(), gen(4))
    assert torch.equal(a, b) and a.unique().numel() > 4


@pytest.mark.parametrize("updown,height,width", [SHAPES[1], SHAPES[3]])
def test_cached_equals_naive_pic_canvas_with_given_channel(updown, height, width):
    """PIC's use: the canvas holds the given L channel, the chroma pair is drawn (C = 2 DMOL), with h."""
    torch.manual_seed(1)
    model = PixelCNNpp(3, dmol_params_count(2, 3), nr_resnet=1, nr_filters=8, cond_channels=4, updown=updown,
                       dropout=0.0)
    canvas = torch.zeros(2, 3, height, width)
    canvas[:, 0] = torch.rand(2, height, width) * 2 - 1
    h = torch.randn(2, 4, height, width)
    step = dmol_step(2, 3)
    shape = (2, 3, height, width)
    a = sample_naive(model, shape, step, gen(3), h=h, canvas=canvas, target_channels=[1, 2])
    b = sample_cached(model, shape, step, gen(3), h=h, canvas=canvas, target_channels=[1, 2])
    assert torch.equal(a, b) and torch.equal(b[:, 0], canvas[:, 0])


def _forward_activations(model, canvas, h, names):
    """The maps ``names`` (the model's submodule names, and ``ul_init``) and the output of one full
    forward pass, by forward hooks."""
    acts, hooks = {}, []
    for name, module in model.named_modules():
        if name in names:
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: acts.__setitem__(name, o)))
    hooks.append(model.up_ul[0][0].register_forward_pre_hook(lambda m, args: acts.__setitem__("ul_init", args[0])))
    with torch.no_grad():
        acts["out"] = model(canvas, h)
    for hk in hooks:
        hk.remove()
    return acts


@pytest.mark.parametrize("updown,height,width", [SHAPES[0], SHAPES[3]])
def test_cache_holds_the_forward_pass_at_final_positions(updown, height, width):
    """After step (i, j) (and the draw), each cached map equals a full forward pass on the canvas at
    every position :meth:`final_mask` calls final; the outputs handed to the step agree too."""
    torch.manual_seed(4)
    model = PixelCNNpp(3, dmol_params_count(3, 2), nr_resnet=1, nr_filters=8, cond_channels=2, updown=updown,
                       dropout=0.0).eval()
    h = torch.randn(2, 2, height, width)
    canvas = torch.zeros(2, 3, height, width)
    cache = CachedPixelCNNpp(model, canvas, h)
    step, g = dmol_step(3, 2), gen(0)
    stops = {(0, 0), (1, 0), (4, 3), (5, 0), (height - 1, width - 1)}
    for i in range(height):
        for j in range(width):
            out = cache.step(i, j)
            canvas[:, :, i, j] = step(out, g)[:, :, 0, 0]
            cache.write(i, j, canvas)
            if (i, j) not in stops:
                continue
            acts = _forward_activations(model, canvas, h, set(cache.nodes))
            torch.testing.assert_close(out, acts["out"][:, :, i: i + 1, j: j + 1], atol=1e-5, rtol=1e-5)
            assert set(acts) == set(cache.nodes) | {"out"}          # every map of the network is cached
            for name, node in cache.nodes.items():
                mask = node.final_mask(i, j)
                assert mask.any() and mask.shape == acts[name].shape[2:], name
                torch.testing.assert_close(node.value[:, :, mask], acts[name][:, :, mask], atol=1e-5, rtol=1e-5,
                                           msg=f"{name} at step {(i, j)}")
                assert (node.value[:, :, ~mask] == 0).all(), f"{name} computed ahead of its final step"


@pytest.mark.parametrize("updown", [False, True])
def test_each_map_position_is_computed_once(updown, monkeypatch):
    """Incremental: over a whole pass of steps each map computes each of its positions exactly once (a
    row at a time in the u stream, one position at a time in the ul stream), not once per pixel."""
    torch.manual_seed(0)
    model = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=updown, dropout=0.0)
    counts: dict[int, int] = {}
    for cls in (cached_module._InitU, cached_module._InitUL, cached_module._Block, cached_module._Strided,
                cached_module._Upsampled):
        original = cls.compute

        def counted(self, a, c0, c1, original=original):
            counts[id(self)] = counts.get(id(self), 0) + (c1 - c0)
            return original(self, a, c0, c1)
        monkeypatch.setattr(cls, "compute", counted)
    cache = CachedPixelCNNpp(model.eval(), torch.zeros(1, 1, 8, 8))
    for i in range(8):
        for j in range(8):
            cache.step(i, j)
    for name, node in cache.nodes.items():
        assert counts[id(node)] == node.height * node.width, name


def test_cached_rejects_bad_input():
    model = PixelCNNpp(1, 16, nr_resnet=1, nr_filters=8, updown=True, dropout=0.0)
    with pytest.raises(ValueError, match="divisible by 4"):
        sample_cached(model, (1, 1, 6, 8), categorical_step(), gen(0))
    with pytest.raises(ValueError, match="PixelCNNpp"):
        sample_cached(torch.nn.Identity(), (1, 1, 4, 4), categorical_step(), gen(0))
    with pytest.raises(ValueError, match="eval mode"):
        CachedPixelCNNpp(model.train(), torch.zeros(1, 1, 4, 4))


@pytest.mark.gpu
@pytest.mark.parametrize("updown", [False, True])
def test_cached_equals_naive_on_cuda(updown):
    """On CUDA (fp32 convolutions, TF32 off for both samplers), with h."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = PixelCNNpp(3, dmol_params_count(3, 2), nr_resnet=1, nr_filters=8, cond_channels=2, updown=updown,
                       dropout=0.0).to(device)
    h = torch.randn(2, 2, 8, 8, device=device)
    step = dmol_step(3, 2)
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        a = sample_naive(model, (2, 3, 8, 8), step, torch.Generator(device).manual_seed(1), h=h)
        b = sample_cached(model, (2, 3, 8, 8), step, torch.Generator(device).manual_seed(1), h=h)
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    assert b.device.type == "cuda" and torch.equal(a, b)
