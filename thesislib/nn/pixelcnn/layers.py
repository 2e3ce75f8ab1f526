"""PixelCNN++ building blocks: shifted convolutions, gated residual blocks, the non-causal embedding.

Shapes are (B, C, H, W). Raster order: pixel (i, j) comes before (i', j') when i < i', or i == i' and
j < j'. The causal layers (Salimans et al. 2017, "PixelCNN++", §2.3; van den Oord et al. 2016) keep
two streams: the *vertical* ``u`` stream, whose value at (i, j) depends only on rows < i (after its
initial down shift), and the *horizontal* ``ul`` stream, which also sees row i left of j. Every
convolution here is weight-normalised (Salimans & Kingma 2016), as the thesis says (§4.3.3, §5.3.2:
"convs are preceded by concatenated ELU and weight-normalized").

Footprint of each causal layer (rows above, columns left, columns right of the output position,
inclusive of the output's own row/column) is exposed as ``footprint`` so that the exact fast sampler
can bound the receptive field (see :mod:`thesislib.nn.pixelcnn.sampling`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

ConvFactory = Callable[[int, int], nn.Module]


def concat_elu(x: Tensor) -> Tensor:
    """Concatenated ELU (Shang et al. 2016): ``elu(cat([x, -x], dim=1))``; (B, C, H, W) -> (B, 2C, H, W)."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: Tensor) -> Tensor:
    """Shift the map one row down (zeros enter at the top, the last row drops): (B, C, H, W) -> same."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: Tensor) -> Tensor:
    """Shift the map one column right (zeros enter at the left, the last column drops)."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


def wn_conv2d(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 1, **kwargs) -> nn.Module:
    """A weight-normalised ``nn.Conv2d`` (weight = g * v / ||v||, per output channel)."""
    return weight_norm(nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs))


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if len(size) != 2:
        raise ValueError(f"filter_size must be an int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


class DownShiftedConv2d(nn.Module):
    """Convolution whose output at (i, j) sees rows i-fh+1..i and columns j-(fw-1)/2..j+(fw-1)/2.

    ``filter_size`` (fh, fw) with fw odd (default (2, 3)). ``shift_output_down=True`` shifts the
    result one row down, so the output at (i, j) sees only rows < i (the ``u`` stream's first layer).
    (B, in, H, W) -> (B, out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, filter_size: int | Sequence[int] = (2, 3),
                 stride: int = 1, shift_output_down: bool = False) -> None:
        super().__init__()
        fh, fw = _pair(filter_size)
        if fw % 2 != 1:
            raise ValueError(f"DownShiftedConv2d needs an odd filter width, got filter_size={(fh, fw)}")
        self.filter_size = (fh, fw)
        self.pad = ((fw - 1) // 2, (fw - 1) // 2, fh - 1, 0)       # left, right, top, bottom
        self.conv = wn_conv2d(in_channels, out_channels, (fh, fw), stride=stride)
        self.shift_output_down = shift_output_down
        self.footprint = (fh - 1 + int(shift_output_down), (fw - 1) // 2, (fw - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.pad(x, self.pad))
        return down_shift(x) if self.shift_output_down else x


class DownRightShiftedConv2d(nn.Module):
    """Convolution whose output at (i, j) sees rows i-fh+1..i and columns j-fw+1..j (default (2, 2)).

    ``shift_output_right=True`` shifts the result one column right (the output then sees columns < j
    of its own row). (B, in, H, W) -> (B, out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, filter_size: int | Sequence[int] = (2, 2),
                 stride: int = 1, shift_output_right: bool = False) -> None:
        super().__init__()
        fh, fw = _pair(filter_size)
        self.filter_size = (fh, fw)
        self.pad = (fw - 1, 0, fh - 1, 0)
        self.conv = wn_conv2d(in_channels, out_channels, (fh, fw), stride=stride)
        self.shift_output_right = shift_output_right
        self.footprint = (fh - 1, fw - 1 + int(shift_output_right), 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.pad(x, self.pad))
        return right_shift(x) if self.shift_output_right else x


class _ShiftedConvTranspose2d(nn.Module):
    """Weight-normalised transposed convolution whose output is cropped to keep a causal structure:
    :meth:`crop` of the subclass says which columns (and the rows below) go."""

    def __init__(self, in_channels: int, out_channels: int, filter_size: int | Sequence[int],
                 stride: int = 2) -> None:
        super().__init__()
        fh, fw = _pair(filter_size)
        self.filter_size = (fh, fw)
        self.deconv = weight_norm(nn.ConvTranspose2d(in_channels, out_channels, (fh, fw), stride,
                                                     output_padding=1))

    def crop(self, w: int) -> slice:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        x = self.deconv(x)
        fh = self.filter_size[0]
        return x[:, :, : x.shape[-2] - fh + 1, self.crop(x.shape[-1])]


class DownShiftedConvTranspose2d(_ShiftedConvTranspose2d):
    """Transposed convolution (x ``stride`` upsampling) keeping the down-shifted causal structure.

    (B, in, H, W) -> (B, out, stride*H, stride*W) for the default (2, 3) filter and stride 2.
    """

    def __init__(self, in_channels: int, out_channels: int, filter_size: int | Sequence[int] = (2, 3),
                 stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, filter_size, stride)

    def crop(self, w: int) -> slice:
        half = (self.filter_size[1] - 1) // 2  # centred columns
        return slice(half, w - half)


class DownRightShiftedConvTranspose2d(_ShiftedConvTranspose2d):
    """Transposed convolution (x ``stride`` upsampling) keeping the down-right-shifted causal structure.

    (B, in, H, W) -> (B, out, stride*H, stride*W) for the default (2, 2) filter and stride 2.
    """

    def __init__(self, in_channels: int, out_channels: int, filter_size: int | Sequence[int] = (2, 2),
                 stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, filter_size, stride)

    def crop(self, w: int) -> slice:
        return slice(0, w - self.filter_size[1] + 1)  # columns to the left


class GatedResnet(nn.Module):
    """Gated residual block of PixelCNN++ (Salimans et al. 2017, §2.4; thesis §4.3.3 and §5.3.2).

    With ``conv(in, out)`` a convolution factory (causal or not)::

        c1 = conv(concat_elu(x)) [+ nin(concat_elu(a))] [+ cond(h)]
        c2 = conv_out(dropout(concat_elu(c1)))                  # 2 * channels outputs
        y  = x + c2[:C] * sigmoid(c2[C:])

    ``a`` (B, skip_channels, H, W) is the skip input from the other stream / the up pass, ``h``
    (B, cond_channels, H, W) a spatial conditioning map added as a bias to the first convolution
    through a 1x1 convolution (the thesis's "added as a bias to the convolutions of every residual
    block"; FaceGeneration/PIC add it after the first conv). x: (B, channels, H, W) -> same shape.
    ``out_conv`` (default ``conv``) builds the second convolution (the embedding dilates only the first).
    """

    def __init__(self, channels: int, conv: ConvFactory, cond_channels: int = 0, dropout: float = 0.0,
                 skip_channels: int = 0, out_conv: ConvFactory | None = None) -> None:
        super().__init__()
        self.channels, self.cond_channels, self.skip_channels = channels, cond_channels, skip_channels
        self.conv_input = conv(2 * channels, channels)
        self.nin_skip = wn_conv2d(2 * skip_channels, channels) if skip_channels else None
        self.cond = wn_conv2d(cond_channels, channels, bias=False) if cond_channels else None
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_out = (out_conv or conv)(2 * channels, 2 * channels)

    def forward(self, x: Tensor, a: Tensor | None = None, h: Tensor | None = None) -> Tensor:
        c1 = self.conv_input(concat_elu(x))
        if (a is None) != (self.nin_skip is None):
            raise ValueError(f"GatedResnet built with skip_channels={self.skip_channels} needs a skip input "
                             f"a of shape (B, {self.skip_channels}, H, W) exactly when skip_channels > 0")
        if a is not None:
            c1 = c1 + self.nin_skip(concat_elu(a))
        if h is not None:
            if self.cond is None:
                raise ValueError("GatedResnet got a conditioning map h but was built with cond_channels=0")
            c1 = c1 + self.cond(h)
        c2 = self.conv_out(self.dropout(concat_elu(c1)))
        value, gate = c2.chunk(2, dim=1)
        return x + value * torch.sigmoid(gate)


def plain_conv(kernel_size: int = 3, dilation: int = 1) -> ConvFactory:
    """Factory of weight-normalised 'same' convolutions (non-causal), for :class:`GatedResnet`."""
    return lambda i, o: wn_conv2d(i, o, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation)


@dataclass(frozen=True)
class EmbeddingStage:
    """One stage of :class:`Embedding`: a 3x3 conv to ``width`` (stride ``stride``; ``up=True`` makes
    it a x2 transposed conv instead), then ``blocks`` gated residual blocks whose first conv has
    dilation ``dilation``."""

    width: int
    blocks: int
    stride: int = 1
    dilation: int = 1
    up: bool = False

    def __post_init__(self) -> None:
        if self.width < 1 or self.blocks < 0 or self.stride not in (1, 2) or self.dilation < 1:
            raise ValueError(f"bad EmbeddingStage {self}: width >= 1, blocks >= 0, stride in (1, 2), dilation >= 1")
        if self.up and self.stride != 1:
            raise ValueError(f"EmbeddingStage {self}: an up stage has stride 1 (it upsamples x2)")


class Embedding(nn.Module):
    """Non-causal conditioning network: "one flow of residual blocks and no shifting" (thesis §4.3.3).

    The f_w of the Pyramid PixelCNN and the g^w of PIC (Table 5.1). Each :class:`EmbeddingStage` is
    a 3x3 conv (stride 1 or 2, or a x2 transposed conv) followed by gated residual blocks (plain
    'same' convs, the first one optionally dilated); a final 3x3 conv maps to ``out_channels``.
    x: (B, in_channels, H, W) -> (B, out_channels, H * up / down, W * up / down).

    Table 5.1 (CIFAR-10) is ``Embedding(1, 256, [EmbeddingStage(32, 2), EmbeddingStage(64, 2, stride=2),
    EmbeddingStage(128, 2), EmbeddingStage(256, 3, dilation=2)])``.
    """

    def __init__(self, in_channels: int, out_channels: int, stages: Sequence[EmbeddingStage],
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not stages:
            raise ValueError("Embedding needs at least one EmbeddingStage")
        layers: list[nn.Module] = []
        width = in_channels
        for stage in stages:
            if stage.up:
                layers.append(weight_norm(nn.ConvTranspose2d(width, stage.width, 3, stride=2, padding=1,
                                                             output_padding=1)))
            else:
                layers.append(wn_conv2d(width, stage.width, 3, stride=stage.stride, padding=1))
            for _ in range(stage.blocks):
                layers.append(GatedResnet(stage.width, plain_conv(3, stage.dilation), dropout=dropout,
                                          out_conv=plain_conv(3)))
            width = stage.width
        layers.append(wn_conv2d(width, out_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Embedding expects x of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.layers(x)
