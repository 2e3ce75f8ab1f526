"""Procedural and bundled smoke data of the PixelCNN chapters (study note 001, §3.6(a), §4.6(a)).

Every generator takes a seed (one ``numpy.random.Generator``, so the same seed gives the same
images on every machine) and returns uint8 RGB tensors (N, 3, S, S), the PixelCNNs' input.

* :func:`colored_digits` (Grayscale PixelCNN): scikit-learn's 8x8 digits colourised -- stroke a
  random saturated hue, background a random dark colour, Gaussian "texture" noise (sigma 0.03 of
  the 0..1 range) -- optionally upsampled to 16 or 32 (the stroke mask is resized by the shared
  policy before colouring, so the noise stays per pixel).
* :func:`smoke_faces` (Pyramid PixelCNN): 32x32 procedural faces: a skin-toned ellipse, a hair
  band, two symmetric eyes, a mouth, pose jitter (shift, scale, tilt) and random colours.
* :func:`ambiguity_images` (PIC): a textured green background, red squares, and disks that are
  blue or yellow with probability 1/2 each, the two colours of equal CIE L* (|dL| < 1e-3,
  :data:`BLUE_RGB`, :data:`YELLOW_RGB`), so the L channel carries no hint of a disk's colour.
  Disks and squares are flat and hard-edged (no antialiasing that would leak colour into L).
* :func:`photo_crops` (PIC illustrative cell): random crops of the bundled colour photos.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from thesislib.data.digits import load_digits_arrays
from thesislib.data.photos import load_photo, random_crops
from thesislib.data.transforms import resize_image

# Equal-lightness pair for the ambiguity images, found by exhaustive search over uint8 triples:
# blue (70, 150, 255) has L* = 61.938686; among yellows (hue 89-101 deg) with |dL*| < 2e-4 the most
# chromatic is (175, 147, 62), L* = 61.938709 (|dL*| = 2.2e-5; scikit-image's rgb2lab).
BLUE_RGB: tuple[int, int, int] = (70, 150, 255)
YELLOW_RGB: tuple[int, int, int] = (175, 147, 62)
RED_RGB: tuple[int, int, int] = (200, 30, 30)
GREEN_RGB: tuple[int, int, int] = (40, 140, 40)
SMOKE_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                                 "immunohistochemistry", "colorwheel")
# ambiguity region codes
BACKGROUND, SQUARE, DISK = 0, 1, 2


@dataclass(frozen=True)
class SmokeImages:
    """``images`` uint8 (N, 3, S, S) RGB; ``labels`` int64 (N,) (digit class, or photo index)."""

    images: Tensor
    labels: Tensor


@dataclass(frozen=True)
class AmbiguityImages:
    """The PIC ambiguity benchmark.

    ``images`` uint8 (N, 3, S, S); ``region`` int64 (N, S, S): 0 background, 1 square, 2 disk;
    ``disk_id`` int64 (N, S, S): k for pixels of disk k, -1 elsewhere; ``disk_yellow`` bool
    (N, n_disks): True where disk k is yellow, False where blue.
    """

    images: Tensor
    region: Tensor
    disk_id: Tensor
    disk_yellow: Tensor


def _to_uint8(x: np.ndarray) -> Tensor:
    """float (N, S, S, 3) in 0..1 -> uint8 (N, 3, S, S), rounded and clipped."""
    q = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(q.transpose(0, 3, 1, 2)))


def colored_digits(n: int = 0, seed: int = 0, size: int = 8, noise: float = 0.03) -> SmokeImages:
    """Colourised digits (note §3.6(a)1): uint8 (N, 3, size, size) and digit labels (N,).

    ``n`` = 0: all 1,797 digits once, in scikit-learn's order; ``n`` > 0: ``n`` images, the
    digits in a seeded random order (repeated with fresh colours if n > 1797). Per image:
    stroke colour = HSV(h ~ U[0, 1), s ~ U[0.8, 1], v ~ U[0.8, 1]); background ~ U[0, 0.25]^3;
    pixel = bg (1 - m) + stroke m for the digit intensity m in [0, 1]; plus N(0, noise^2) per
    pixel and channel; rounded to 8 bits.
    """
    if size not in (8, 16, 32):
        raise ValueError(f"size must be 8, 16 or 32, got {size}")
    if n < 0 or noise < 0:
        raise ValueError(f"n and noise must be non-negative, got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    digits, labels = load_digits_arrays()
    if n:
        order = np.concatenate([rng.permutation(len(labels)) for _ in range(-(-n // len(labels)))])[:n]
    else:
        order = np.arange(len(labels))
    m = digits[order]
    if size != 8:
        m = resize_image(torch.from_numpy(m)[:, None], size)[:, 0].clamp(0, 1).numpy()
    count = len(order)
    hsv = np.stack([rng.uniform(0, 1, count), rng.uniform(0.8, 1, count), rng.uniform(0.8, 1, count)], 1)
    stroke = np.array([colorsys.hsv_to_rgb(*row) for row in hsv])
    background = rng.uniform(0, 0.25, size=(count, 3))
    mm = m[..., None]
    x = background[:, None, None] * (1 - mm) + stroke[:, None, None] * mm
    x = x + rng.normal(0, noise, size=x.shape)
    return SmokeImages(_to_uint8(x), torch.from_numpy(labels[order].astype(np.int64)))


def smoke_faces(n: int, seed: int = 0, size: int = 32) -> Tensor:
    """Procedural faces (note §3.6(a)2): uint8 (n, 3, size, size).

    Drawn at 2x resolution and 2x2-averaged (smooth edges). Per face: background colour
    U[0.1, 0.9]^3; skin tone interpolated between a light and a dark skin colour; face ellipse
    (semi-axes 0.30 x 0.38 of the side, times a scale in [0.9, 1.1]), centre jittered by
    +-0.06 of the side, tilted by U[-0.2, 0.2] rad; a hair band (random hair colour) over the top
    of the head; two eyes mirror-symmetric about the face axis (white, a dark pupil); a mouth (a
    flat red-brown ellipse); per-pixel noise N(0, 0.02^2).
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    s2 = 2 * size
    yy, xx = (np.mgrid[0:s2, 0:s2] + 0.5) / s2  # pixel centres in [0, 1]
    light, dark = np.array([0.96, 0.80, 0.69]), np.array([0.45, 0.30, 0.20])
    out = np.empty((n, size, size, 3))
    for i in range(n):
        bg = rng.uniform(0.1, 0.9, 3)
        skin = light + rng.uniform(0, 1) * (dark - light)
        hair = rng.uniform(0.0, 0.5) * rng.uniform(0.3, 1.0, 3)
        scale = rng.uniform(0.9, 1.1)
        cy, cx = 0.5 + rng.uniform(-0.06, 0.06, 2)
        tilt = rng.uniform(-0.2, 0.2)
        cos, sin = np.cos(tilt), np.sin(tilt)
        u = ((xx - cx) * cos + (yy - cy) * sin) / scale   # across the face
        v = (-(xx - cx) * sin + (yy - cy) * cos) / scale  # down the face
        img = np.broadcast_to(bg, (s2, s2, 3)).copy()
        head = (u / 0.30) ** 2 + (v / 0.38) ** 2 < 1
        hair_band = ((u / 0.33) ** 2 + ((v + 0.04) / 0.42) ** 2 < 1) & (v < -0.18)
        img[hair_band] = hair
        img[head & ~hair_band] = skin
        eye_u, eye_v, eye_r = rng.uniform(0.10, 0.14), rng.uniform(-0.08, -0.02), rng.uniform(0.045, 0.06)
        pupil = rng.uniform(0.0, 0.3, 3)
        for side in (-1.0, 1.0):
            d2 = ((u - side * eye_u) / eye_r) ** 2 + ((v - eye_v) / (0.7 * eye_r)) ** 2
            img[d2 < 1] = (0.95, 0.95, 0.95)
            img[d2 < 0.3] = pupil
        mouth_v, mouth_w = rng.uniform(0.17, 0.22), rng.uniform(0.08, 0.13)
        img[((u / mouth_w) ** 2 + ((v - mouth_v) / 0.03) ** 2) < 1] = (0.65, 0.2, 0.2)
        out[i] = img.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    out = out + rng.normal(0, 0.02, size=out.shape)
    return _to_uint8(out)


def _place(rng: np.random.Generator, occupied: np.ndarray, half: float, size: int,
           tries: int = 30) -> tuple[float, float] | None:
    """A centre whose (2 half + 2)-wide box misses ``occupied`` (bool (S, S)), or None."""
    for _ in range(tries):
        cy, cx = rng.uniform(half, size - half, 2)
        r0, r1 = int(max(0, np.floor(cy - half - 1))), int(min(size, np.ceil(cy + half + 1)))
        c0, c1 = int(max(0, np.floor(cx - half - 1))), int(min(size, np.ceil(cx + half + 1)))
        if not occupied[r0:r1, c0:c1].any():
            occupied[r0:r1, c0:c1] = True
            return cy, cx
    return None


def _layout(rng: np.random.Generator, size: int, n_squares: int, n_disks: int, k: float,
            attempts: int = 100) -> list[tuple[int, tuple[float, float], float, int]]:
    """Non-overlapping shapes: [(SQUARE or DISK, centre, half side or radius, disk index)]; a
    layout that does not fit is redrawn whole (up to ``attempts`` times)."""
    for _ in range(attempts):
        occupied = np.zeros((size, size), dtype=bool)
        shapes = []
        for j in range(n_squares + n_disks):
            is_square = j < n_squares
            extent = rng.integers(2, 4) * k / 2 if is_square else rng.uniform(2.0, 3.0) * k
            centre = _place(rng, occupied, extent, size)
            if centre is None:
                break
            shapes.append((SQUARE if is_square else DISK, centre, extent, j - n_squares))
        else:
            return shapes
    raise ValueError(f"cannot place {n_squares} squares and {n_disks} disks in {size}x{size}")


def ambiguity_images(n: int, seed: int = 0, size: int = 16, n_disks: int = 2, n_squares: int = 2,
                     texture: float = 12.0) -> AmbiguityImages:
    """The PIC ambiguity benchmark (note §4.6(a), option A); see :class:`AmbiguityImages`.

    Per image: background :data:`GREEN_RGB` plus a grey texture N(0, ``texture``^2) (8-bit
    units, the same offset on R, G, B); ``n_squares`` red squares (side 2-3 at 16, scaled with
    ``size``); ``n_disks`` disks (radius 2-3 at 16, scaled) each blue or yellow with
    probability 1/2, independently. Shapes do not overlap (1-pixel gap; a layout that does not
    fit is redrawn). Disk and square pixels are flat, so a blue and a yellow disk have identical
    L* maps to within 2.2e-5.
    """
    if size < 8 or n < 0:
        raise ValueError(f"need size >= 8 and n >= 0, got size={size}, n={n}")
    rng = np.random.default_rng(seed)
    k = size / 16.0
    images = np.empty((n, size, size, 3), dtype=np.float64)
    region = np.zeros((n, size, size), dtype=np.int64)
    disk_id = np.full((n, size, size), -1, dtype=np.int64)
    yellow = rng.random((n, n_disks)) < 0.5
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for i in range(n):
        shapes = _layout(rng, size, n_squares, n_disks, k)
        img = np.asarray(GREEN_RGB, dtype=np.float64) + rng.normal(0, texture, (size, size, 1))
        for kind, (cy, cx), extent, d in shapes:
            if kind == SQUARE:
                inside = (np.abs(yy - cy) < extent) & (np.abs(xx - cx) < extent)
                img[inside] = RED_RGB
            else:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 < extent ** 2
                img[inside] = YELLOW_RGB if yellow[i, d] else BLUE_RGB
                disk_id[i][inside] = d
            region[i][inside] = kind
        images[i] = img
    x = torch.from_numpy(np.clip(np.round(images), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2).copy())
    return AmbiguityImages(x, torch.from_numpy(region), torch.from_numpy(disk_id), torch.from_numpy(yellow))


def photo_crops(n: int, seed: int = 0, size: int = 32, names: Sequence[str] = SMOKE_PHOTOS,
                side: int = 128) -> SmokeImages:
    """``n`` random ``size`` x ``size`` crops of bundled colour photos (note §4.6(a), option B).

    Each photo is first resized so its shorter side is ``side`` (shared resize policy, via
    :func:`thesislib.data.photos.load_photo`); each crop's photo is drawn uniformly from
    ``names``, then its corner by :func:`thesislib.data.photos.random_crops`. ``labels`` are
    indices into ``names``.
    """
    if not names:
        raise ValueError("names must list at least one colour photo")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(names), size=n)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for j, name in enumerate(names):
        idx = np.flatnonzero(which == j)
        if idx.size:
            photo = load_photo(name, size=side, as_float=False)
            if photo.ndim != 3:
                raise ValueError(f"photo {name!r} is greyscale; photo_crops needs colour photos")
            out[idx] = random_crops(photo, size, idx.size, rng)
    return SmokeImages(torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2))),
                       torch.from_numpy(which.astype(np.int64)))
