"""PIC at test time: bits/dim, colourisation by sampling, Lab -> RGB, saturation, and the ambiguity
benchmark's measurements (thesis §5.4; note §4.6(a)).

* :func:`chroma_bpd`: test NLL of the chroma in bits/dim (Eq. 5.3', normalised by 2 (H/s)(W/s)),
  through :func:`thesislib.engine.evaluate` (sharded over DDP ranks) and
  :func:`thesislib.eval.likelihood.bits_per_dim`.
* :func:`sample_pic`: ab ~ p(ab | L) sequentially over the low-resolution chroma pixels with the
  library's exact cached sampler (:func:`thesislib.nn.pixelcnn.sample_cached`, Ramachandran et al.:
  each layer's activations are kept and only the positions a new pixel makes final are computed; the
  canvas holds the given low-resolution L in channel 0, channels 1, 2 are written), h = g^w(L) computed
  once.
* :func:`sample_gw`: the g^w-only model's per-pixel independent samples, its "MAP" (the library's
  ``map=True``: the component drawn by its weight, then the mode of that discretised logistic, as the
  code's ``scale_var = 0``), and :func:`dmol_mean`, the mixture mean (the greyish average of Fig. 5.1).
* :func:`to_full_lab`: the released code's reconstruction: the low-resolution ab upsampled bilinearly
  (corners aligned, as ``scipy.ndimage.zoom(order=1)``) beside the full-resolution L, then Lab -> RGB.
* :func:`image_saturation`: average perceptual saturation of the output images, Lübbe's
  S = C*_ab / sqrt(C*_ab² + L²) per pixel (:func:`thesislib.data.color.perceptual_saturation`, Eq. 6
  there) of the RGB image, i.e. after clipping to the sRGB gamut.
* :func:`ambiguity_scores`: per sampled image, whether each disk got one colour, which, and whether
  squares and background got theirs (module :mod:`thesislib.data.pixelcnn_smoke` colours).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.data.color import lab_to_rgb, perceptual_saturation, rgb_to_lab, unit_to_ab
from thesislib.data.pixelcnn_smoke import BLUE_RGB, GREEN_RGB, RED_RGB, YELLOW_RGB
from thesislib.engine import evaluate as engine_evaluate
from thesislib.eval.likelihood import bits_per_dim
from thesislib.methods.pic.data import AmbiguityLabels
from thesislib.methods.pic.losses import chroma_nll_nats
from thesislib.methods.pic.model import PIC, GwOnly
from thesislib.nn.pixelcnn import dmol_sample, dmol_step, sample_cached, sample_naive, split_dmol

__all__ = ["REFERENCE_COLOURS", "AmbiguityScores", "ambiguity_scores", "chroma_bpd", "disk_colour_shares", "dmol_mean",
           "image_saturation", "nearest_reference", "palette_ab", "sample_gw", "sample_pic", "sampling_speed",
           "to_full_lab"]


@torch.no_grad()
def chroma_bpd(model: PIC | GwOnly, dataset: Dataset, device: torch.device, n_mix: int,
               batch_size: int = 256) -> float:
    """Test NLL of the chroma in bits/dim over ``dataset`` of (L, canvas) items (Eq. 5.3')."""
    def fn(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        big_l, canvas = batch
        out = net(canvas, big_l=big_l) if isinstance(net, PIC) else net(big_l)
        return chroma_nll_nats(canvas[:, 1:], out.float(), n_mix)

    nats = engine_evaluate(model, dataset, fn, device, batch_size=batch_size, amp=False)
    _, canvas = dataset[0]
    return bits_per_dim(nats.double().sum(), len(dataset) * 2 * canvas.shape[-2] * canvas.shape[-1])


@torch.no_grad()
def sample_pic(model: PIC, big_l: Tensor, canvas_l: Tensor, n_mix: int, generator: torch.Generator | None = None,
               variance_reduction: float = 0.0, map: bool = False, fast: bool = True) -> Tensor:
    """Sample ab (B, 2, h, w) in [-1, 1] given L: ``big_l`` (B, 1, H, W) full resolution, ``canvas_l``
    (B, 1, h, w) the low-resolution L (canvas channel 0). ``fast=False``: the naive sampler (same
    samples for the same generator)."""
    model.eval()
    device = next(model.parameters()).device
    h = model.embed(big_l.to(device))
    canvas = torch.zeros(canvas_l.shape[0], 3, *canvas_l.shape[-2:], device=device)
    canvas[:, :1] = canvas_l.to(device)
    sampler = sample_cached if fast else sample_naive
    out = sampler(model.pixelcnn, tuple(canvas.shape), dmol_step(2, n_mix, variance_reduction=variance_reduction,
                                                                 map=map),
                  generator, h=h, canvas=canvas, target_channels=[1, 2])
    return out[:, 1:]


def dmol_mean(out: Tensor, n_mix: int) -> Tensor:
    """The mean of the two-channel mixture (continuous logistics; the discretisation's edge bins
    ignored): E[a] = Σ_k π_k μ_a,k, E[b] = Σ_k π_k (μ_b,k + α_k μ_a,k). (B, 6 K, h, w) -> (B, 2, h, w)."""
    logits, means, _, coeffs = split_dmol(out, 2, n_mix)
    pi = torch.softmax(logits, dim=1)
    mean_a = means[:, 0]
    mean_b = means[:, 1] + coeffs[:, 0] * mean_a
    return torch.stack([(pi * mean_a).sum(1), (pi * mean_b).sum(1)], dim=1).clamp(-1, 1)


@torch.no_grad()
def sample_gw(model: GwOnly, big_l: Tensor, n_mix: int, mode: str = "sample",
              generator: torch.Generator | None = None) -> Tensor:
    """The g^w-only model's ab (B, 2, h, w) given L (B, 1, H, W): ``mode`` "sample" (independent per
    pixel), "map" (library MAP) or "mean" (:func:`dmol_mean`)."""
    model.eval()
    out = model(big_l.to(next(model.parameters()).device)).float()
    if mode == "mean":
        return dmol_mean(out, n_mix)
    if mode not in ("sample", "map"):
        raise ValueError(f"mode must be 'sample', 'map' or 'mean', got {mode!r}")
    return dmol_sample(out, 2, n_mix, generator, map=mode == "map")


def to_full_lab(big_l: Tensor, ab: Tensor) -> Tensor:
    """Full-resolution Lab (B, 3, H, W) from L (B, 1, H, W) in [-1, 1] and low-resolution ab (B, 2, h, w)
    in DMOL coordinates, upsampled bilinearly with corners aligned."""
    size = tuple(big_l.shape[-2:])
    ab = unit_to_ab(ab.float())
    if tuple(ab.shape[-2:]) != size:
        ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=True)
    return torch.cat([(big_l.to(ab.device).float() + 1.0) * 50.0, ab], dim=1)


def image_saturation(big_l: Tensor, ab: Tensor) -> Tensor:
    """Average perceptual saturation (fraction) of each output image (B,) (module docstring)."""
    return perceptual_saturation(rgb_to_lab(lab_to_rgb(to_full_lab(big_l, ab))))


def palette_ab() -> Tensor:
    """ab of the benchmark's colours, rows green, red, blue, yellow: (4, 2)."""
    rgb = torch.tensor([GREEN_RGB, RED_RGB, BLUE_RGB, YELLOW_RGB], dtype=torch.uint8).T[:, :, None]
    return rgb_to_lab(rgb)[1:, :, 0].T


#: The reference colours of the benchmark's measurements, in :func:`nearest_reference`'s order.
REFERENCE_COLOURS: tuple[str, ...] = ("green", "red", "blue", "yellow", "grey")


def nearest_reference(ab: Tensor) -> Tensor:
    """Index into :data:`REFERENCE_COLOURS` of the colour nearest (in ab) to each chroma pixel: the
    palette's four and grey (a = b = 0). ab (..., 2, h, w) in DMOL coordinates -> (..., h, w) int64."""
    values = unit_to_ab(ab.float())
    reference = torch.cat([palette_ab(), torch.zeros(1, 2)]).to(ab.device)
    dist = ((values.unsqueeze(-4) - reference.view(-1, 2, 1, 1)) ** 2).sum(-3)    # (..., 5, h, w)
    return dist.argmin(-3)


def disk_colour_shares(ab: Tensor, labels: AmbiguityLabels) -> Tensor:
    """Share of the disk-interior chroma pixels of samples ``ab`` (R, N, 2, h, w) nearest each of
    :data:`REFERENCE_COLOURS` -> (5,), summing to 1 (the diagnosis of a model that leaves disks green)."""
    nearest = nearest_reference(ab)
    inside = (labels.disk[: ab.shape[1]] >= 0).to(ab.device).expand_as(nearest)
    counts = torch.bincount(nearest[inside], minlength=len(REFERENCE_COLOURS)).float()
    return counts / counts.sum().clamp(min=1)


@dataclass(frozen=True)
class AmbiguityScores:
    """Measurements of R sampled colourings of N ambiguity images (means over what is named). Every
    chroma pixel is classified by its nearest reference colour among the palette's four (green, red,
    blue, yellow) and grey (a = b = 0):

    ``purity``: per (sample, image, disk), the share of the disk's interior chroma pixels in its more
    frequent disk colour, max(share blue, share yellow) (1: one colour; 0.5: speckled half and half;
    0: painted green, red or anything else);
    ``coloured``: the share of (sample, image, disk) that are mostly blue or mostly yellow (more than
    half of the pixels);
    ``blue_rate``: among those, the share that are mostly blue (0 when none is);
    ``diversity``: per (image, disk), 2 min(n_blue, n_yellow) / R over its R samples (1: half the samples
    blue and half yellow; 0: always the same colour, or never blue or yellow), averaged;
    ``consistency``: the share of square and background interior pixels whose nearest palette colour
    is their own (red, green);
    ``disk_chroma``: mean C*_ab of the disk pixels (greyish disks score low).

    The classification among all five is a decision: with blue-vs-yellow only (the first version), a
    disk left green or grey counted as a pure yellow one, because yellow's ab lies nearer to green's
    and to grey's than blue's does; an under-trained model that painted its disks green then scored
    purity 0.9. Grey is a class of its own for the same reason (without it, grey is nearest yellow)."""

    purity: float
    coloured: float
    blue_rate: float
    diversity: float
    consistency: float
    disk_chroma: float


def ambiguity_scores(ab: Tensor, labels: AmbiguityLabels) -> AmbiguityScores:
    """:class:`AmbiguityScores` of samples ``ab`` (R, N, 2, h, w) in DMOL coordinates for the N images
    whose chroma-resolution labels are ``labels`` (their first N)."""
    if ab.dim() != 5 or ab.shape[2] != 2:
        raise ValueError(f"ab must be (R, N, 2, h, w), got {tuple(ab.shape)}")
    r, n = ab.shape[:2]
    region, disk = labels.region[:n].to(ab.device), labels.disk[:n].to(ab.device)
    values = unit_to_ab(ab.float())                                               # (R, N, 2, h, w)
    nearest = nearest_reference(ab)
    own = torch.where(region == 0, 0, 1)
    fixed = (region == 0) | (region == 1)
    consistency = float(((nearest == own) & fixed).sum() / (fixed.sum() * r).clamp(min=1))
    n_disks = labels.yellow.shape[1]
    masks = torch.stack([disk == d for d in range(n_disks)], dim=1).float()      # (N, D, h, w)
    count = masks.flatten(2).sum(-1)                                              # (N, D)
    present = count > 0

    def share(colour: int) -> Tensor:                                             # (R, M) over present disks
        hits = (nearest == colour).float().unsqueeze(2) * masks                   # (R, N, D, h, w)
        return (hits.flatten(3).sum(-1) / count.clamp(min=1))[:, present]

    blue, yellow = share(2), share(3)
    is_blue, is_yellow = (blue > 0.5).float(), (yellow > 0.5).float()
    n_coloured = is_blue.sum() + is_yellow.sum()
    diversity = 2.0 * torch.minimum(is_blue.sum(0), is_yellow.sum(0)) / r
    chroma = values.pow(2).sum(2).sqrt()                                          # (R, N, h, w)
    in_disk = (disk >= 0).expand_as(chroma)
    return AmbiguityScores(float(torch.maximum(blue, yellow).mean()), float(n_coloured / blue.numel()),
                           float(is_blue.sum() / n_coloured.clamp(min=1)), float(diversity.mean()),
                           consistency, float(chroma[in_disk].mean()))


def sampling_speed(model: PIC, big_l: Tensor, canvas_l: Tensor, n_mix: int, seed: int = 0) -> dict[str, float]:
    """Naive vs exact cached sampling of the same batch with the same random stream: seconds, chroma
    pixels per second, the speed-up and whether the samples are equal."""
    times, outs = {}, {}
    for name, fast in (("naive", False), ("fast", True)):
        gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        start = time.perf_counter()
        outs[name] = sample_pic(model, big_l, canvas_l, n_mix, gen, fast=fast)
        times[name] = time.perf_counter() - start
    pixels = canvas_l.shape[0] * canvas_l.shape[-2] * canvas_l.shape[-1]
    return {"naive_s": times["naive"], "fast_s": times["fast"], "naive_px_per_s": pixels / times["naive"],
            "fast_px_per_s": pixels / times["fast"], "speedup": times["naive"] / times["fast"],
            "equal": bool(torch.equal(outs["naive"], outs["fast"])),
            "max_abs_diff": float((outs["naive"] - outs["fast"]).abs().max())}
