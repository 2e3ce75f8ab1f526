"""Sequential sampling from a PixelCNN: the naive sampler and an exact fast one.

Both samplers fill a canvas (B, C, H, W) (values in [-1, 1]) pixel by pixel in raster order; at each
pixel they call ``step_fn(out_ij, generator) -> (B, len(target_channels), 1, 1)`` on the model's raw
output at that pixel only, ``out_ij`` (B, out_channels, 1, 1), so both draw exactly the same random
numbers in the same order (:func:`dmol_step`, :func:`categorical_step`; the channels of one pixel
are coupled inside the DMOL sampler). ``canvas`` may hold given channels (PIC's low-resolution L):
only ``target_channels`` are written.

:func:`sample_fast` is exact for ``PixelCNNpp(updown=False)``: it recomputes the network only on the
crop of the canvas that holds the receptive field of pixel (i, j). Argument: let R = (up, left, right)
be :meth:`PixelCNNpp.receptive_field`, a bound, per layer, on the positions of every intermediate
activation that the output at (i, j) depends on (Minkowski sums of the layers' windows along every
path). The crop is the image intersected with rows i-up..i and columns j-left..j+right, so it is
aligned with the image border wherever the box leaves the image: every convolution then sees, at
every position of the box, the same inputs as on the full canvas (real values inside, the same zero
padding outside the image, the same ones channel), by induction over the layers. Positions whose
values differ (near the crop's interior edges) lie outside the box and never reach (i, j). Hence
the network output at (i, j), the step's draws and the samples are the same as the naive sampler's,
up to floating-point summation order of the convolution kernels on a smaller input (the test checks
bit-equal samples). The cost per pixel falls from H*W positions to at most (up+1)(left+right+1).
With down/up-sampling (``updown=True``) the receptive field covers the whole image above, nothing
is saved, and :func:`sample_fast` refuses it. The exact cached sampler of
:mod:`thesislib.nn.pixelcnn.cached` (``sample_cached``) serves both variants and computes each layer
position once per image instead of once per crop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from thesislib.nn.pixelcnn.likelihood import categorical_sample, dmol_sample
from thesislib.nn.pixelcnn.model import PixelCNNpp

StepFn = Callable[[Tensor, "torch.Generator | None"], Tensor]


def dmol_step(channels: int, n_mix: int, bins: int = 256, variance_reduction: float = 0.0,
              map: bool = False) -> StepFn:
    """A ``step_fn`` drawing one pixel from the DMOL (see :func:`dmol_sample`)."""
    def step(out: Tensor, generator: torch.Generator | None) -> Tensor:
        return dmol_sample(out, channels, n_mix, generator, variance_reduction=variance_reduction, map=map,
                           bins=bins)
    return step


def categorical_step(map: bool = False, temperature: float = 1.0) -> StepFn:
    """A ``step_fn`` drawing one pixel of the per-pixel softmax (see :func:`categorical_sample`)."""
    def step(out: Tensor, generator: torch.Generator | None) -> Tensor:
        return categorical_sample(out, generator, map=map, temperature=temperature)
    return step


def _prepare(model: nn.Module, shape: Sequence[int], h: Tensor | None, canvas: Tensor | None,
             target_channels: Sequence[int] | None) -> tuple[Tensor, list[int]]:
    if len(shape) != 4:
        raise ValueError(f"shape must be (B, C, H, W), got {tuple(shape)}")
    device = next(model.parameters()).device
    if canvas is None:
        canvas = torch.zeros(tuple(shape), device=device)
    elif tuple(canvas.shape) != tuple(shape):
        raise ValueError(f"canvas must have shape {tuple(shape)}, got {tuple(canvas.shape)}")
    else:
        canvas = canvas.clone().to(device)
    targets = list(range(shape[1])) if target_channels is None else [int(c) for c in target_channels]
    if not targets or any(c < 0 or c >= shape[1] for c in targets):
        raise ValueError(f"target_channels must be channels of the canvas (0..{shape[1] - 1}), got {targets}")
    if h is not None and (h.shape[0] != shape[0] or tuple(h.shape[2:]) != tuple(shape[2:])):
        raise ValueError(f"h must have shape (B, cond, H, W) with B, H, W = {shape[0]}, {shape[2]}, {shape[3]}, "
                         f"got {tuple(h.shape)}")
    return canvas, targets


def _write(canvas: Tensor, value: Tensor, targets: list[int], i: int, j: int) -> None:
    if value.shape != (canvas.shape[0], len(targets), 1, 1):
        raise ValueError(f"step_fn must return (B, {len(targets)}, 1, 1), got {tuple(value.shape)}")
    canvas[:, targets, i, j] = value[:, :, 0, 0].to(canvas.dtype)


@torch.no_grad()
def sample_naive(model: nn.Module, shape: Sequence[int], step_fn: StepFn, generator: torch.Generator | None = None,
                 h: Tensor | None = None, canvas: Tensor | None = None,
                 target_channels: Sequence[int] | None = None) -> Tensor:
    """Sample (B, C, H, W) in raster order with one full forward ``model(canvas, h)`` per pixel.

    ``model`` maps (B, C, H, W) [, h] to its raw output (B, P, H, W); it is put in eval mode.
    Returns the filled canvas (values in [-1, 1]).
    """
    model.eval()
    canvas, targets = _prepare(model, shape, h, canvas, target_channels)
    _, _, height, width = canvas.shape
    for i in range(height):
        for j in range(width):
            out = model(canvas, h) if h is not None else model(canvas)
            _write(canvas, step_fn(out[:, :, i: i + 1, j: j + 1], generator), targets, i, j)
    return canvas


@torch.no_grad()
def sample_fast(model: PixelCNNpp, shape: Sequence[int], step_fn: StepFn, generator: torch.Generator | None = None,
                h: Tensor | None = None, canvas: Tensor | None = None,
                target_channels: Sequence[int] | None = None) -> Tensor:
    """Exact fast sampling for ``PixelCNNpp(updown=False)``: same arguments and result as
    :func:`sample_naive` (same samples for the same generator), computing each step on the
    receptive-field crop only (module docstring)."""
    if not isinstance(model, PixelCNNpp) or model.updown:
        raise ValueError("sample_fast is exact for PixelCNNpp(updown=False) only; use sample_naive otherwise")
    model.eval()
    canvas, targets = _prepare(model, shape, h, canvas, target_channels)
    up, left, right = model.receptive_field()
    _, _, height, width = canvas.shape
    for i in range(height):
        r0 = max(0, i - up)
        for j in range(width):
            c0, c1 = max(0, j - left), min(width, j + right + 1)
            crop = canvas[:, :, r0: i + 1, c0:c1]
            out = model(crop, None if h is None else h[:, :, r0: i + 1, c0:c1])
            _write(canvas, step_fn(out[:, :, i - r0: i - r0 + 1, j - c0: j - c0 + 1], generator), targets, i, j)
    return canvas


class _Enough(Exception):
    """Stops :func:`sample_naive` once the timed rows are drawn (:func:`time_naive_rows`)."""


def time_naive_rows(model: nn.Module, shape: Sequence[int], step_fn: StepFn, rows: int,
                    generator: torch.Generator | None = None, h: Tensor | None = None) -> tuple[float, Tensor]:
    """Time :func:`sample_naive` over the first ``rows`` image rows and extrapolate to the whole image.

    Every naive step is one forward pass over the whole canvas, so its cost per pixel does not depend
    on the pixel and the extrapolation (seconds * H / rows) is the full run's time up to timing noise.
    Returns (seconds for the whole image, the drawn values of the timed rows (B, C, rows, W), in the
    order and with the random numbers of a full run). On CUDA the device is synchronised around it.
    """
    b, c, height, width = (int(v) for v in shape)
    if not 1 <= rows <= height:
        raise ValueError(f"rows must be in 1..{height}, got {rows}")
    draws: list[Tensor] = []

    def counting(out: Tensor, gen: torch.Generator | None) -> Tensor:
        if len(draws) == rows * width:
            raise _Enough
        draws.append(step_fn(out, gen))
        return draws[-1]

    cuda = next(model.parameters()).device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    try:
        sample_naive(model, shape, counting, generator, h=h)
    except _Enough:
        pass
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) * height / rows
    return seconds, torch.cat(draws, dim=3).reshape(b, c, rows, width)
