"""Exact cached sampling from a PixelCNN++ (after Ramachandran et al. 2017, "Fast generation for
convolutional autoregressive models"), for both :class:`PixelCNNpp` variants and with conditioning.

:func:`sample_cached` has the signature and the ``step_fn``/generator protocol of
:func:`~thesislib.nn.pixelcnn.sampling.sample_naive` and returns the same samples. Instead of one full
forward pass per pixel it keeps every activation map of the network in a cache and, at each step,
computes only the positions of each map that have just become *final*.

What is cached. :class:`CachedPixelCNNpp` mirrors :meth:`PixelCNNpp.forward` as a list of nodes in
forward order, one per activation map: the initial ``u`` and ``ul`` maps, every gated block's output
(and inside it the two convolution inputs ``concat_elu(x)`` and ``concat_elu(c1)``), the strided
down-sampling maps and the transposed up-sampling maps, and the output. Each node holds its map at its
resolution (factor s = 1, 2 or 4 below the image) in a zero-padded buffer (one row on top, one column
either side: the padding every shifted convolution of the model reads), so that a convolution at a
position reads its window straight from the buffer. The weight-normalised weights (g v / ||v||) of
every convolution are computed once, and the conditioning bias ``cond(h)`` of every block (h average-
pooled to the block's resolution, as in the forward pass) is computed once for the whole image.

When a cached value is final. Causality of the two streams (tested by gradients in
``tests/nn/test_pixelcnn_model.py``): a ``u``-stream value at row a of a map at factor s depends only
on image rows < s a; a ``ul``-stream value at (a, b) depends only on the pixels before (s a, s b) in
raster order. So at step (i, j), the step that draws pixel (i, j):

* a ``u`` node's whole row a = i / s is final at the first step of image row i = s a (j = 0): every
  pixel it depends on has been drawn. It is computed then, for all columns at once, from the rows
  a - 1 and a of its inputs (the (2, 3) kernels) or, for the transposed up-sampling, from the coarse
  row a // 2;
* a ``ul`` node's position (a, b) is final at step (s a, s b) and computed then, from its inputs at
  (a - 1..a, b - 1..b) (the (2, 2) kernels), the ``u`` value at (a, b) (row a, already computed), the
  skip maps at (a, b) and, for the up-sampling, the coarse position (a // 2, b // 2);
* the output at (i, j) is computed from the last ``ul`` map at (i, j) and handed to ``step_fn``.

Every input a computation reads is either zero padding (as in the forward pass) or a position computed
at an earlier step or earlier in this step's forward order, and final; by induction over steps and
nodes every cached value equals the full forward pass's value on the canvas (the test checks this
invariant after partial runs), hence the output at (i, j), the draws and the samples equal the naive
sampler's. Each layer's map is computed once per image in total (one new row per image row for the
``u`` stream, one new position per step for the ``ul`` stream, once per s x s block at coarse
resolutions), instead of once per pixel.

Floating point: a convolution or an elementwise kernel applied to a window or a row may sum or round
in a different order than on the whole map (the library picks kernels by size), so cached values
can differ from the forward pass by float32 rounding (about 1e-6 relative). A sample differs only if
a draw falls within that rounding of a bin or mixture boundary, which the tests do not see (they
assert equal samples); the same holds for :func:`~thesislib.nn.pixelcnn.sampling.sample_fast`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.nn.pixelcnn.layers import (
    DownRightShiftedConv2d,
    DownShiftedConv2d,
    GatedResnet,
    _ShiftedConvTranspose2d,
    concat_elu,
)
from thesislib.nn.pixelcnn.model import PixelCNNpp
from thesislib.nn.pixelcnn.sampling import StepFn, _prepare, _write

__all__ = ["CachedPixelCNNpp", "sample_cached"]

_PAD = 1  # rows on top, columns left and right of every cached buffer (the widest shifted-conv padding)


class _Conv:
    """A (shifted) convolution's weights, computed once, evaluated on a few output positions.

    ``weight`` (out, in, fh, fw), ``bias`` (out,) or None, ``stride``, ``top`` / ``left``: the zero rows
    above and columns left that the layer pads its input with (its causal shift)."""

    def __init__(self, conv: nn.Conv2d, top: int, left: int) -> None:
        self.weight = conv.weight.detach()          # weight norm evaluated once
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.stride = conv.stride[0]
        self.fh, self.fw = self.weight.shape[-2:]
        self.top, self.left = top, left

    @classmethod
    def of(cls, layer: nn.Module) -> _Conv:
        if isinstance(layer, DownShiftedConv2d | DownRightShiftedConv2d):
            left, _, top, _ = layer.pad
            return cls(layer.conv, top, left)
        if isinstance(layer, nn.Conv2d):
            return cls(layer, layer.padding[0], layer.padding[1])
        raise TypeError(f"no cached form for {type(layer).__name__}")

    def at(self, buf: Tensor, a: int, c0: int, c1: int) -> Tensor:
        """Output row ``a``, columns ``c0..c1-1`` from a padded input buffer -> (B, out, 1, c1 - c0)."""
        s = self.stride
        r0, k0 = s * a - self.top + _PAD, s * c0 - self.left + _PAD
        window = buf[:, :, r0: r0 + self.fh, k0: k0 + s * (c1 - c0 - 1) + self.fw]
        return F.conv2d(window, self.weight, self.bias, stride=s)


class _Node:
    """One cached activation map (B, C, H/s, W/s) in a zero-padded buffer; ``pixel`` says whether it
    belongs to the ``ul`` stream (computed a position per step) or the ``u`` stream (a row per image row)."""

    def __init__(self, batch: int, channels: int, height: int, width: int, scale: int, pixel: bool,
                 like: Tensor) -> None:
        self.scale, self.pixel = scale, pixel
        self.height, self.width = height, width
        self.buf = like.new_zeros(batch, channels, height + _PAD, width + 2 * _PAD)

    @property
    def value(self) -> Tensor:
        """The map without its padding, (B, C, H/s, W/s) (a view)."""
        return self.buf[:, :, _PAD:, _PAD: _PAD + self.width]

    def unit(self, a: int, c0: int, c1: int) -> Tensor:
        """Row ``a``, columns ``c0..c1-1`` -> (B, C, 1, c1 - c0) (a view)."""
        return self.buf[:, :, _PAD + a: _PAD + a + 1, _PAD + c0: _PAD + c1]

    def store(self, a: int, c0: int, c1: int, value: Tensor) -> None:
        self.unit(a, c0, c1).copy_(value)

    def compute(self, a: int, c0: int, c1: int) -> None:
        raise NotImplementedError

    def final_mask(self, i: int, j: int) -> Tensor:
        """(H/s, W/s) bool: the positions final (and computed) once step (i, j) has run."""
        s = self.scale
        rows = torch.arange(self.height, device=self.buf.device)[:, None] * s
        cols = torch.arange(self.width, device=self.buf.device)[None, :] * s
        if not self.pixel:
            return (rows <= i).expand(self.height, self.width)
        return (rows < i) | ((rows == i) & (cols <= j))


class _InitU(_Node):
    """``u_init``: (2, 3) down-shifted conv of the input, shifted one row down (row a reads rows a-2, a-1)."""

    def __init__(self, layer: DownShiftedConv2d, source: _Node, **kw) -> None:
        super().__init__(**kw)
        self.conv, self.source = _Conv.of(layer), source

    def compute(self, a: int, c0: int, c1: int) -> None:
        if a > 0:                                   # row 0 is the zero row the shift brings in
            self.store(a, c0, c1, self.conv.at(self.source.buf, a - 1, c0, c1))


class _InitUL(_Node):
    """``down_shift(ul_init_down(x)) + right_shift(ul_init_right(x))`` at one position."""

    def __init__(self, down: DownShiftedConv2d, right: DownRightShiftedConv2d, source: _Node, **kw) -> None:
        super().__init__(**kw)
        self.down, self.right, self.source = _Conv.of(down), _Conv.of(right), source

    def compute(self, a: int, c0: int, c1: int) -> None:
        shape = (self.buf.shape[0], self.buf.shape[1], 1, c1 - c0)
        above = self.down.at(self.source.buf, a - 1, c0, c1) if a > 0 else self.buf.new_zeros(shape)
        left = self.buf.new_zeros(shape)                # column 0: the zero column the right shift brings in
        if c1 > max(c0, 1):
            k0 = max(c0, 1)
            left[..., k0 - c0:] = self.right.at(self.source.buf, a, k0 - 1, c1 - 1)
        self.store(a, c0, c1, above + left)


class _Block(_Node):
    """A :class:`GatedResnet` (Salimans et al. 2017, §2.4) at one unit: keeps the padded maps
    ``concat_elu(x)`` and ``concat_elu(c1)`` its two causal convolutions read; ``cond`` is the block's
    precomputed conditioning bias over the whole map (or None)."""

    def __init__(self, block: GatedResnet, source: _Node, skips: Sequence[_Node], cond: Tensor | None,
                 **kw) -> None:
        super().__init__(**kw)
        b, c = self.buf.shape[:2]
        self.source, self.skips, self.cond = source, list(skips), cond
        self.conv_input, self.conv_out = _Conv.of(block.conv_input), _Conv.of(block.conv_out)
        self.nin = None if block.nin_skip is None else _Conv.of(block.nin_skip)
        self.ce_x = self.buf.new_zeros(b, 2 * c, *self.buf.shape[2:])
        self.ce_c1 = self.buf.new_zeros(b, 2 * c, *self.buf.shape[2:])

    def compute(self, a: int, c0: int, c1: int) -> None:
        cols = slice(_PAD + c0, _PAD + c1)
        x = self.source.unit(a, c0, c1)
        self.ce_x[:, :, _PAD + a: _PAD + a + 1, cols] = concat_elu(x)
        h1 = self.conv_input.at(self.ce_x, a, c0, c1)
        if self.nin is not None:
            skip = torch.cat([s.unit(a, c0, c1) for s in self.skips], dim=1) if len(self.skips) > 1 \
                else self.skips[0].unit(a, c0, c1)
            h1 = h1 + F.conv2d(concat_elu(skip), self.nin.weight, self.nin.bias)
        if self.cond is not None:
            h1 = h1 + self.cond[:, :, a: a + 1, c0:c1]
        self.ce_c1[:, :, _PAD + a: _PAD + a + 1, cols] = concat_elu(h1)
        value, gate = self.conv_out.at(self.ce_c1, a, c0, c1).chunk(2, dim=1)
        self.store(a, c0, c1, x + value * torch.sigmoid(gate))


class _Strided(_Node):
    """A stride-2 shifted convolution (down-sampling): row or position a of the coarse map."""

    def __init__(self, layer: nn.Module, source: _Node, **kw) -> None:
        super().__init__(**kw)
        self.conv, self.source = _Conv.of(layer), source

    def compute(self, a: int, c0: int, c1: int) -> None:
        self.store(a, c0, c1, self.conv.at(self.source.buf, a, c0, c1))


class _Upsampled(_Node):
    """A shifted x2 transposed convolution (up-sampling) with a (2, fw) kernel: fine row a comes from
    coarse row a // 2 alone (kernel row a % 2); fine column c (column c + crop of the uncropped
    output) from the coarse columns b with 2b <= c + crop <= 2b + fw - 1."""

    def __init__(self, layer: _ShiftedConvTranspose2d, source: _Node, **kw) -> None:
        super().__init__(**kw)
        deconv = layer.deconv
        self.weight = deconv.weight.detach()
        self.bias = None if deconv.bias is None else deconv.bias.detach()
        self.fw = self.weight.shape[-1]
        if self.weight.shape[-2] != 2 or deconv.stride != (2, 2):
            raise ValueError("the cached sampler supports the (2, fw) stride-2 shifted transposed convolutions")
        self.crop = layer.crop(2 * source.width + self.fw - 1).start or 0
        self.source = source

    def compute(self, a: int, c0: int, c1: int) -> None:
        lo, hi = c0 + self.crop, c1 - 1 + self.crop           # uncropped columns wanted
        b0, b1 = max(0, -(-(lo - self.fw + 1) // 2)), min(self.source.width - 1, hi // 2)
        coarse = self.source.unit(a // 2, b0, b1 + 1)
        out = F.conv_transpose2d(coarse, self.weight, self.bias, stride=2, output_padding=1)
        self.store(a, c0, c1, out[:, :, a % 2: a % 2 + 1, lo - 2 * b0: hi + 1 - 2 * b0])


class CachedPixelCNNpp:
    """The activation cache of a :class:`PixelCNNpp` for sampling a (B, C, H, W) canvas (module docstring).

    ``step(i, j)`` computes every map's newly final positions in forward order and returns the model's
    raw output at pixel (i, j), (B, out_channels, 1, 1); ``write(i, j, canvas)`` then enters the drawn
    pixel. ``nodes`` maps the names ``u_init``, ``up_u.k.n``, ``up_ul.k.n``, ``down_u.k.n``,
    ``down_ul.k.n``, ``downsize_u.k``, ``downsize_ul.k``, ``upsize_u.k``, ``upsize_ul.k`` (the
    model's submodule names) and ``ul_init`` to their :class:`_Node`; ``order`` lists them in forward order.
    """

    @torch.no_grad()
    def __init__(self, model: PixelCNNpp, canvas: Tensor, h: Tensor | None = None) -> None:
        model._check(canvas, h)
        if model.training:
            raise ValueError("CachedPixelCNNpp needs the model in eval mode (dropout off)")
        batch, channels, height, width = canvas.shape
        levels = len(model.up_u)
        f = model.nr_filters
        hs = [None if h is None else (h if k == 0 else F.avg_pool2d(h, 2 ** k)) for k in range(levels)]
        self.nodes: dict[str, _Node] = {}
        self.order: list[_Node] = []

        def node(name: str, cls: type[_Node], *args, scale: int, pixel: bool, width_c: int = f, **kw) -> _Node:
            n = cls(*args, **kw, batch=batch, channels=width_c, height=height // scale, width=width // scale,
                    scale=scale, pixel=pixel, like=canvas)
            self.nodes[name] = n
            self.order.append(n)
            return n

        self.input = _Node(batch, channels + 1, height, width, 1, True, canvas)
        self.input.value.copy_(torch.cat([canvas, torch.ones_like(canvas[:, :1])], dim=1))
        self.channels = channels

        def block(name: str, blk: GatedResnet, src: _Node, skips: list[_Node], level: int, pixel: bool) -> _Node:
            cond = None if blk.cond is None else blk.cond(hs[level])
            return node(name, _Block, blk, src, skips, cond, scale=2 ** level, pixel=pixel)

        u_list = [node("u_init", _InitU, model.u_init, self.input, scale=1, pixel=False)]
        ul_list = [node("ul_init", _InitUL, model.ul_init_down, model.ul_init_right, self.input, scale=1,
                        pixel=True)]
        for k in range(levels):
            for n, (bu, bul) in enumerate(zip(model.up_u[k], model.up_ul[k], strict=True)):
                u_list.append(block(f"up_u.{k}.{n}", bu, u_list[-1], [], k, False))
                ul_list.append(block(f"up_ul.{k}.{n}", bul, ul_list[-1], [u_list[-1]], k, True))
            if model.updown and k < levels - 1:
                u_list.append(node(f"downsize_u.{k}", _Strided, model.downsize_u[k], u_list[-1],
                                   scale=2 ** (k + 1), pixel=False))
                ul_list.append(node(f"downsize_ul.{k}", _Strided, model.downsize_ul[k], ul_list[-1],
                                    scale=2 ** (k + 1), pixel=True))
        u, ul = u_list.pop(), ul_list.pop()
        for k in range(levels):
            level = levels - 1 - k
            for n, (bu, bul) in enumerate(zip(model.down_u[k], model.down_ul[k], strict=True)):
                u = block(f"down_u.{k}.{n}", bu, u, [u_list.pop()], level, False)
                ul = block(f"down_ul.{k}.{n}", bul, ul, [u, ul_list.pop()], level, True)
            if model.updown and k < levels - 1:
                u = node(f"upsize_u.{k}", _Upsampled, model.upsize_u[k], u, scale=2 ** (level - 1), pixel=False)
                ul = node(f"upsize_ul.{k}", _Upsampled, model.upsize_ul[k], ul, scale=2 ** (level - 1),
                          pixel=True)
        if u_list or ul_list:
            raise RuntimeError("CachedPixelCNNpp: unbalanced skip connections")
        self.last = ul
        self.nin_out = _Conv.of(model.nin_out)
        self.out_channels = model.out_channels

    def step(self, i: int, j: int) -> Tensor:
        """Compute the positions final at step (i, j); return the raw output at (i, j), (B, P, 1, 1)."""
        for n in self.order:
            s = n.scale
            if i % s:
                continue
            if n.pixel:
                if j % s == 0:
                    n.compute(i // s, j // s, j // s + 1)
            elif j == 0:
                n.compute(i // s, 0, n.width)
        return F.conv2d(F.elu(self.last.unit(i, j, j + 1)), self.nin_out.weight, self.nin_out.bias)

    def write(self, i: int, j: int, canvas: Tensor) -> None:
        """Enter the canvas's pixel (i, j) (all channels) into the cached input."""
        self.input.unit(i, j, j + 1)[:, : self.channels].copy_(canvas[:, :, i: i + 1, j: j + 1])


@torch.no_grad()
def sample_cached(model: PixelCNNpp, shape: Sequence[int], step_fn: StepFn, generator: torch.Generator | None = None,
                  h: Tensor | None = None, canvas: Tensor | None = None,
                  target_channels: Sequence[int] | None = None) -> Tensor:
    """Exact cached sampling for :class:`PixelCNNpp` (both variants): same arguments and result as
    :func:`~thesislib.nn.pixelcnn.sampling.sample_naive` (same samples for the same generator); each
    layer's activations are computed once per image position over the whole run (module docstring).

    shape (B, C, H, W); ``h`` (B, cond_channels, H, W); ``canvas`` (B, C, H, W) with given channels;
    only ``target_channels`` are written. Returns the filled canvas (values in [-1, 1]).
    """
    if not isinstance(model, PixelCNNpp):
        raise ValueError(f"sample_cached needs a PixelCNNpp, got {type(model).__name__}; use sample_naive")
    model.eval()
    canvas, targets = _prepare(model, shape, h, canvas, target_channels)
    cache = CachedPixelCNNpp(model, canvas, h)
    _, _, height, width = canvas.shape
    for i in range(height):
        for j in range(width):
            _write(canvas, step_fn(cache.step(i, j), generator), targets, i, j)
            cache.write(i, j, canvas)
    return canvas
