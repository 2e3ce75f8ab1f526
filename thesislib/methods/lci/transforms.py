"""The image transformations T_0..T_5 of the chapter and the classifier's batch (Jenni §4.2).

* T_0 identity; T_1..T_3 rotations by 90°, 180°, 270° (``torch.rot90``, counter-clockwise);
* T_4 warp: :func:`thesislib.data.grid_warp`, control points on a lattice shifted by up to d = ``warp_shift``
  x side, interpolated by the polyharmonic (thin-plate) spline;
* T_5 limited-context inpainting (LCI): a window W_Δ at a uniform location Δ, its patch e, the erased patch
  ê = e ⊙ (1 − m) + z ⊙ m with z ~ N(0, noise_std²) (the input of Eq. 4.3), F's output r = F(ê) pasted back
  into the image (Eq. 4.4). m is 1 in the centre and 0 on a border of ``border`` pixels.

:func:`draw` takes every random choice of one training step (windows, noise, warps, the small rotations and
crops of the extra augmentation); :func:`assemble` builds C's batch from them and F's outputs, so the same
batch can be rebuilt inside F's phase with gradients (the engine wants networks called with gradients only
inside their phase). Shapes: images (B, C, L, L) at ``load_size`` L; patches (B, C, p, p); C's input
(K·B, C, S, S) with K the number of classes, class-major ([all T_0; all T_1; ...]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from thesislib.data.warp import grid_warp
from thesislib.methods.lci.config import LCIParams, class_names

__all__ = ["Draws", "assemble", "augment", "crop_windows", "draw", "erase", "erase_mask", "paste_windows",
           "random_windows", "rotate", "transform_group"]


def rotate(x: Tensor, k: int) -> Tensor:
    """T_k for k in 0..3: rotation of (B, C, H, H) by k x 90° counter-clockwise (exact, invertible by 4 − k)."""
    return torch.rot90(x, k % 4, dims=(2, 3))


def erase_mask(patch: int, border: int, device: torch.device | str = "cpu") -> Tensor:
    """m (1, 1, patch, patch): 1 in the centre, 0 on a frame ``border`` pixels wide (the context F keeps)."""
    if not 0 < 2 * border < patch:
        raise ValueError(f"erase_mask: border {border} must leave a centre in a {patch}-pixel patch")
    m = torch.zeros(1, 1, patch, patch, device=device)
    m[..., border:patch - border, border:patch - border] = 1.0
    return m


def erase(e: Tensor, m: Tensor, z: Tensor) -> Tensor:
    """ê = e ⊙ (1 − m) + z ⊙ m: the patch with its centre replaced by noise (F's input, Eq. 4.3)."""
    return e * (1.0 - m) + z * m


def random_windows(n: int, side: int, patch: int, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> Tensor:
    """Top-left corners (n, 2) int64 of ``patch``-pixel windows drawn uniformly inside a ``side`` image (Δ ∈ Ω)."""
    if patch > side:
        raise ValueError(f"random_windows: a {patch}-pixel window does not fit a {side}-pixel image")
    return torch.randint(0, side - patch + 1, (n, 2), generator=generator, device=device)


def _window_index(corners: Tensor, patch: int, side: int) -> Tensor:
    """Flat pixel indices (n, patch * patch) of each window in a ``side`` x ``side`` image."""
    offs = torch.arange(patch, device=corners.device)
    rows = corners[:, :1, None] + offs[None, :, None]          # (n, p, 1)
    cols = corners[:, 1:, None] + offs[None, None, :]          # (n, 1, p)
    return (rows * side + cols).reshape(corners.shape[0], patch * patch)


def crop_windows(x: Tensor, corners: Tensor, patch: int) -> Tensor:
    """The patches e (B, C, p, p) of ``x`` (B, C, H, W) at ``corners`` (B, 2)."""
    b, c, h, w = x.shape
    idx = _window_index(corners, patch, w).unsqueeze(1).expand(b, c, -1)
    return x.reshape(b, c, h * w).gather(2, idx).reshape(b, c, patch, patch)


def paste_windows(x: Tensor, patches: Tensor, corners: Tensor) -> Tensor:
    """A copy of ``x`` (B, C, H, W) with ``patches`` (B, C, p, p) written at ``corners`` (Eq. 4.4); every pixel
    outside the windows is unchanged (differentiable in ``patches``)."""
    b, c, h, w = x.shape
    p = patches.shape[-1]
    idx = _window_index(corners, p, w).unsqueeze(1).expand(b, c, -1)
    return x.reshape(b, c, h * w).scatter(2, idx, patches.reshape(b, c, p * p)).reshape(b, c, h, w)


def augment(x: Tensor, angles: Tensor, crops: Tensor, size: int) -> Tensor:
    """The extra augmentation of every classifier input ([code]): a rotation by ``angles`` (N,) radians
    (bilinear, zeros outside: 0 leaves an item unrotated), then the ``size`` crop at ``crops`` (N, 2)."""
    n = x.shape[0]
    # always resampled, then selected: no host-device sync on a data-dependent branch (review #8)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    rotated = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = torch.where((angles != 0).view(n, 1, 1, 1), rotated, x)
    return crop_windows(x, crops, size)


@dataclass(frozen=True)
class Draws:
    """The random choices of one step for a batch of B images.

    ``lci_corners`` (B, 2), ``noise`` (B, C, p, p): LCI's windows and z; ``ae_corners`` (h, 2): the windows of
    the first h images whose patch is replaced by F(e) (the shortcut prevention; h = 0 without it);
    ``warped`` (B, C, L, L) or None: T_4 of the batch; ``angles`` (K·B,), ``crops`` (K·B, 2): the augmentation."""

    lci_corners: Tensor
    noise: Tensor
    ae_corners: Tensor
    warped: Tensor | None
    angles: Tensor
    crops: Tensor


def draw(params: LCIParams, x: Tensor, generator: torch.Generator | None = None) -> Draws:
    """Every random choice of one step for the load-size images ``x`` (B, C, L, L)."""
    b, c, side, _ = x.shape
    dev, p = x.device, params.patch_size
    n_cls = len(class_names(params.transforms))
    h = int(round(params.replace_fraction * b)) if params.autoencode and params.uses_inpainter else 0
    lci = random_windows(b, side, p, dev, generator)
    noise = torch.randn(b, c, p, p, generator=generator, device=dev) * params.noise_std
    ae = random_windows(h, side, p, dev, generator)
    warped = (grid_warp(x, params.warp_grid, params.warp_shift, generator) if "warp" in params.transforms
              else None)
    n = n_cls * b
    chosen = torch.rand(n, generator=generator, device=dev) < params.augment_fraction
    angles = (torch.rand(n, generator=generator, device=dev) * 2 - 1) * params.small_rotation * math.pi
    angles = torch.where(chosen, angles, torch.zeros_like(angles))
    crops = torch.randint(0, side - params.image_size + 1, (n, 2), generator=generator, device=dev)
    return Draws(lci, noise, ae, warped, angles, crops)


def transform_group(params: LCIParams, name: str, x: Tensor, mixed: Tensor, draws: Draws,
                    inpainted: Tensor | None) -> Tensor:
    """Class ``name``'s images (B, C, L, L): identity and rotations of ``mixed`` (the batch with its first h
    images patch-autoencoded), the warp of ``x``, or ``x`` with F's patches ``inpainted`` pasted back."""
    if name == "identity":
        return mixed
    if name.startswith("rot"):
        return rotate(mixed, int(name[3:]) // 90)
    if name == "warp":
        if draws.warped is None:
            raise ValueError("transform_group: no warp was drawn (warp is not among params.transforms)")
        return draws.warped
    if name == "lci":
        if inpainted is None:
            raise ValueError("transform_group: LCI needs F's output patches")
        return paste_windows(x, inpainted, draws.lci_corners)
    raise ValueError(f"unknown class {name!r}")


def assemble(params: LCIParams, x: Tensor, draws: Draws, inpainted: Tensor | None,
             autoencoded: Tensor | None) -> tuple[Tensor, Tensor]:
    """C's batch: (inputs (K·B, C, S, S), labels (K·B,) int64), class-major.

    ``inpainted`` (B, C, p, p): F(ê) for LCI; ``autoencoded`` (h, C, p, p): F(e) of the first h images' windows,
    pasted into them (detached: F learns to autoencode from λ_AE, not from C) before identity and rotation."""
    mixed = x
    h = draws.ae_corners.shape[0]
    if h and autoencoded is not None:
        mixed = torch.cat([paste_windows(x[:h], autoencoded.detach(), draws.ae_corners), x[h:]])
    names = class_names(params.transforms)
    groups = [transform_group(params, name, x, mixed, draws, inpainted) for name in names]
    inputs = augment(torch.cat(groups), draws.angles, draws.crops, params.image_size)
    labels = torch.arange(len(names), device=x.device).repeat_interleave(x.shape[0])
    return inputs, labels
