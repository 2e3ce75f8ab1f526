"""The two-stream PixelCNN++ (Salimans et al. 2017), with and without down/up-sampling.

``PixelCNNpp(in_channels, out_channels, nr_resnet, nr_filters, cond_channels, updown, dropout)``:
x (B, in_channels, H, W) scaled to [-1, 1] -> raw output map (B, out_channels, H, W), e.g. the DMOL
parameters of :mod:`thesislib.nn.pixelcnn.likelihood` or 16 logits of the 4-bit model. The output
at pixel (i, j) depends only on the pixels before (i, j) in raster order (all channels of them), and
on the conditioning map ``h`` (B, cond_channels, H, W) anywhere.

* ``updown=True``: PixelCNN++ as published: three resolutions (H, H/2, H/4), ``nr_resnet`` gated
  blocks per resolution in the up pass, ``nr_resnet``, ``nr_resnet + 1``, ``nr_resnet + 1`` in the
  down pass, stride-2 shifted convs down and shifted transposed convs up; ``h`` is average-pooled to
  each resolution. H and W must be divisible by 4.
* ``updown=False``: one resolution, ``nr_resnet`` blocks in the up pass and ``nr_resnet`` in the
  down pass (with the same skip connections): the variant "without down/up-sampling layers" of the
  Pyramid PixelCNN (§4.4.2, 3 blocks) and PIC's f^θ (§5.3.2, 4 blocks, 160 filters). Its receptive
  field is bounded (:meth:`PixelCNNpp.receptive_field`), which the exact fast sampler uses.

Skips follow PixelCNN++: in the up pass the ``ul`` block gets ``u`` as its skip input ``a``; in the
down pass the ``u`` block gets the matching up-pass ``u`` and the ``ul`` block gets
concat(u, matching up-pass ``ul``). A constant ones channel is appended to x so that the zero
padding of the shifted convolutions marks the image border (as in PixelCNN++).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thesislib.nn.pixelcnn.layers import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    GatedResnet,
    down_shift,
    right_shift,
    wn_conv2d,
)

Box = tuple[int, int, int]          # rows above, columns left, columns right


def _u_conv(i: int, o: int) -> nn.Module:
    return DownShiftedConv2d(i, o, (2, 3))


def _ul_conv(i: int, o: int) -> nn.Module:
    return DownRightShiftedConv2d(i, o, (2, 2))


def _add(box: Box, footprint: Box) -> Box:
    return (box[0] + footprint[0], box[1] + footprint[1], box[2] + footprint[2])


def _max(*boxes: Box) -> Box:
    return tuple(max(b[k] for b in boxes) for k in range(3))  # type: ignore[return-value]


def _block_box(block: GatedResnet, x: Box, a: Box | None) -> Box:
    """Dependency box of a gated block's output from those of its inputs (1x1 convs add nothing)."""
    c1 = _add(x, block.conv_input.footprint)
    if a is not None:
        c1 = _max(c1, a)
    return _max(x, _add(c1, block.conv_out.footprint))


class PixelCNNpp(nn.Module):
    """Two-stream (u / ul) PixelCNN++; see the module docstring. x: (B, C_in, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, nr_resnet: int = 5, nr_filters: int = 160,
                 cond_channels: int = 0, updown: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or nr_resnet < 1 or nr_filters < 1:
            raise ValueError("PixelCNNpp needs in_channels, out_channels, nr_resnet, nr_filters >= 1")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.nr_resnet, self.nr_filters, self.cond_channels = nr_resnet, nr_filters, cond_channels
        self.updown = updown
        levels = 3 if updown else 1
        f = nr_filters

        def blocks(n: int, conv, skip: int) -> nn.ModuleList:
            return nn.ModuleList(GatedResnet(f, conv, cond_channels, dropout, skip_channels=skip) for _ in range(n))

        self.u_init = DownShiftedConv2d(in_channels + 1, f, (2, 3), shift_output_down=True)
        self.ul_init_down = DownShiftedConv2d(in_channels + 1, f, (1, 3))
        self.ul_init_right = DownRightShiftedConv2d(in_channels + 1, f, (2, 1))
        self.up_u = nn.ModuleList(blocks(nr_resnet, _u_conv, 0) for _ in range(levels))
        self.up_ul = nn.ModuleList(blocks(nr_resnet, _ul_conv, f) for _ in range(levels))
        down_counts = [nr_resnet] + [nr_resnet + 1] * (levels - 1)
        self.down_u = nn.ModuleList(blocks(n, _u_conv, f) for n in down_counts)
        self.down_ul = nn.ModuleList(blocks(n, _ul_conv, 2 * f) for n in down_counts)
        if updown:
            self.downsize_u = nn.ModuleList(DownShiftedConv2d(f, f, (2, 3), stride=2) for _ in range(2))
            self.downsize_ul = nn.ModuleList(DownRightShiftedConv2d(f, f, (2, 2), stride=2) for _ in range(2))
            self.upsize_u = nn.ModuleList(DownShiftedConvTranspose2d(f, f, (2, 3)) for _ in range(2))
            self.upsize_ul = nn.ModuleList(DownRightShiftedConvTranspose2d(f, f, (2, 2)) for _ in range(2))
        self.nin_out = wn_conv2d(f, out_channels)

    def _check(self, x: Tensor, h: Tensor | None) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PixelCNNpp expects x of shape (B, {self.in_channels}, H, W) in [-1, 1], "
                             f"got {tuple(x.shape)}")
        if self.updown and (x.shape[2] % 4 or x.shape[3] % 4):
            raise ValueError(f"PixelCNNpp(updown=True) needs H and W divisible by 4, got {tuple(x.shape[2:])}")
        if (h is None) != (self.cond_channels == 0):
            raise ValueError(f"PixelCNNpp built with cond_channels={self.cond_channels} needs h of shape "
                             f"(B, {self.cond_channels}, H, W) exactly when cond_channels > 0")
        if h is not None and (h.dim() != 4 or h.shape[1] != self.cond_channels or h.shape[0] != x.shape[0]
                              or h.shape[2:] != x.shape[2:]):
            raise ValueError(f"conditioning h must have shape {(x.shape[0], self.cond_channels, *x.shape[2:])}, "
                             f"got {tuple(h.shape)}")

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x: (B, in_channels, H, W) in [-1, 1]; h: (B, cond_channels, H, W) -> (B, out_channels, H, W)."""
        self._check(x, h)
        levels = len(self.up_u)
        hs = [None if h is None else (h if k == 0 else F.avg_pool2d(h, 2 ** k)) for k in range(levels)]
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        u_list = [self.u_init(x)]
        ul_list = [down_shift(self.ul_init_down(x)) + right_shift(self.ul_init_right(x))]
        for k in range(levels):
            for bu, bul in zip(self.up_u[k], self.up_ul[k], strict=True):
                u_list.append(bu(u_list[-1], h=hs[k]))
                ul_list.append(bul(ul_list[-1], a=u_list[-1], h=hs[k]))
            if self.updown and k < levels - 1:
                u_list.append(self.downsize_u[k](u_list[-1]))
                ul_list.append(self.downsize_ul[k](ul_list[-1]))
        u, ul = u_list.pop(), ul_list.pop()
        for k in range(levels):
            level = levels - 1 - k
            for bu, bul in zip(self.down_u[k], self.down_ul[k], strict=True):
                u = bu(u, a=u_list.pop(), h=hs[level])
                ul = bul(ul, a=torch.cat([u, ul_list.pop()], dim=1), h=hs[level])
            if self.updown and k < levels - 1:
                u = self.upsize_u[k](u)
                ul = self.upsize_ul[k](ul)
        if u_list or ul_list:
            raise RuntimeError("PixelCNNpp: unbalanced skip connections (a bug in the block counts)")
        return self.nin_out(F.elu(ul))

    def receptive_field(self) -> Box:
        """Bound (rows above, columns left, columns right) of the pixels the output at (i, j) depends on.

        Only for ``updown=False``. Computed from the layers' footprints by mirroring :meth:`forward`
        on dependency boxes: a convolution adds its footprint (Minkowski sum of windows), a merge
        (skip, sum, gate) takes the elementwise maximum, 1x1 convolutions add nothing. The bound is
        exact for each coordinate over all paths, so it contains the true receptive field (the tests
        check it against gradients). The output at (i, j) then depends only on input rows
        i - up .. i and columns j - left .. j + right (and only on pixels before (i, j)).
        """
        if self.updown:
            raise ValueError("receptive_field() is defined for PixelCNNpp(updown=False) only "
                             "(with down/up-sampling the field covers the image above)")
        zero: Box = (0, 0, 0)
        u_list: list[Box] = [_add(zero, self.u_init.footprint)]
        ul_list: list[Box] = [_max(_add(_add(zero, self.ul_init_down.footprint), (1, 0, 0)),
                                   _add(_add(zero, self.ul_init_right.footprint), (0, 1, 0)))]
        for bu, bul in zip(self.up_u[0], self.up_ul[0], strict=True):
            u_list.append(_block_box(bu, u_list[-1], None))
            ul_list.append(_block_box(bul, ul_list[-1], u_list[-1]))
        u, ul = u_list.pop(), ul_list.pop()
        for bu, bul in zip(self.down_u[0], self.down_ul[0], strict=True):
            u = _block_box(bu, u, u_list.pop())
            ul = _block_box(bul, ul, _max(u, ul_list.pop()))
        return ul
