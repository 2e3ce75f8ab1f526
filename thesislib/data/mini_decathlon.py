"""The mini-decathlon: small visual domains from bundled and procedural data (study note 003 §1.6(a)).

No download. Every domain is RGB, ``size`` x ``size`` (16 by default), normalised by its own
training set's per-channel mean and std (the decathlon's per-domain statistics):

==========  ===================================================================================
glyphs      the default source domain ("ImageNet"): 100 procedural glyph classes, each a fixed
            set of three pen strokes, drawn with a random scale, rotation, shear, position,
            stroke width and ink colour over a random crop of a bundled colour photo
photos      the narrow alternative source: which of the 11 bundled colour photos a random crop
            comes from, crops at three scales (shorter side resized to 2, 3 or 4 x ``size``)
digits      scikit-learn's 8x8 digits upsampled (10 classes; plays SVHN / Omniglot)
faces       scikit-image's ``lfw_subset``: 25x25 faces vs non-faces (2 classes, 200 images; a
            tiny binary domain like Daimler pedestrians)
shapes      procedural disk / square / triangle / cross, random position, size, contrast and
            background, plus noise (4 classes; plays GTSRB)
textures    crops of the bundled grass, gravel and brick photos at random scales (3 classes; DTD)
==========  ===================================================================================

Why glyphs on photos as the source (issue 11). ImageNet helps the decathlon's targets because its
1000 classes force the filters to encode generic local structure (edges, corners, strokes, blobs,
textures, colour contrast) that every target also consists of, not because it shares the targets'
classes. The photo-identity task has 11 classes that colour and texture statistics alone separate,
so it never needs stroke or shape detectors and transferred nothing measurable (scratch 78.1 % vs
fine-tuning 77.9 %). The glyph source has many classes that differ only in the arrangement of
strokes, under nuisance variation (geometry, ink colour, cluttered natural-image backgrounds), so
it needs the generic edge / stroke / junction features; it shares no class with any target (no
digit, no face, none of the four target shapes by construction, backgrounds from photos that no
target uses).

Target domains are **few-shot** (``shots`` training images per class, drawn with the seed): the note's
prototype found that with 70 % training splits every method reaches 0.98-1.0, and pre-training
only matters when targets are small (§8.1). Test sets are disjoint from the training images
(digits and faces: the images not drawn; photos, shapes and textures: fresh draws).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from thesislib.data.digits import load_digits_arrays
from thesislib.data.photos import COLOR_PHOTOS, TEXTURES, load_photo, random_crops
from thesislib.data.transforms import resize_image

# order fixes each domain's random stream (``mini_domain``): new domains are appended
MINI_DOMAINS: tuple[str, ...] = ("photos", "digits", "faces", "shapes", "textures", "glyphs")
SOURCE_DOMAINS: tuple[str, ...] = ("glyphs", "photos")
TARGET_DOMAINS: tuple[str, ...] = ("digits", "faces", "shapes", "textures")
SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "cross")
GLYPH_CLASSES = 100
GLYPH_STROKES = 3
_GLYPH_ALPHABET_SEED = 20170703  # the alphabet is fixed; only the drawings change with the seed


@dataclass(frozen=True)
class MiniDomain:
    """One domain: ``x_*`` float32 (N, 3, S, S) normalised, ``y_*`` int64 (N,), the class names and
    the training mean/std (3,) used to normalise."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    class_names: tuple[str, ...]
    mean: Tensor
    std: Tensor

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def datasets(self) -> tuple[torch.utils.data.TensorDataset, torch.utils.data.TensorDataset]:
        """(training, test) datasets of (image (3, S, S), label)."""
        return (torch.utils.data.TensorDataset(self.x_train, self.y_train),
                torch.utils.data.TensorDataset(self.x_test, self.y_test))


def stratified_indices(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a ``fraction`` of each class of ``labels`` (at least one per class)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(np.sort(rng.choice(idx, size=k, replace=False)))
    return np.sort(np.concatenate(keep))


def _rgb(x: np.ndarray, size: int) -> Tensor:
    """(N, H, W) or (N, H, W, 3) floats in [0, 1] -> (N, 3, size, size) float32."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
    if t.shape[-1] != size or t.shape[-2] != size:
        t = resize_image(t, size).clamp(0, 1)
    return t.expand(-1, 3, -1, -1).contiguous()


def _few_shot(labels: np.ndarray, shots: int, rng: np.random.Generator, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """``shots`` training indices per class and up to ``n_test`` test indices from the rest."""
    train = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=shots, replace=False)
                            for c in np.unique(labels)])
    rest = np.setdiff1d(np.arange(len(labels)), train)
    test = np.sort(rng.choice(rest, size=min(n_test, len(rest)), replace=False))
    return np.sort(train), test


@lru_cache(maxsize=256)
def _resized(name: str, side: int) -> np.ndarray:
    """A bundled photo resized to a ``side`` shorter side, float32 in [0, 1], cached read-only."""
    image = load_photo(name, size=side)
    image.setflags(write=False)
    return image


def photo_domain_images(n: int, size: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Source domain: ``n`` crops of the colour photos at three scales (shorter side 2, 3 or 4 x
    ``size``), labels = index into :data:`~thesislib.data.photos.COLOR_PHOTOS`."""
    labels = rng.integers(0, len(COLOR_PHOTOS), size=n)
    scale = rng.integers(2, 5, size=n)
    out = np.empty((n, size, size, 3), dtype=np.float32)
    for k, name in enumerate(COLOR_PHOTOS):
        for s in (2, 3, 4):
            idx = np.flatnonzero((labels == k) & (scale == s))
            if idx.size:
                out[idx] = random_crops(_resized(name, s * size), size, idx.size, rng)
    return _rgb(out, size), torch.from_numpy(labels.astype(np.int64))


@lru_cache(maxsize=4)
def glyph_alphabet(n_classes: int = GLYPH_CLASSES, strokes: int = GLYPH_STROKES) -> np.ndarray:
    """The glyph classes: stroke end points (n_classes, strokes, 2, 2) as (y, x) in [-1, 1].

    Drawn once from a fixed seed (independent of the data seed). Each stroke is at least 0.6 long
    and no two classes have the same strokes, so classes differ only by stroke layout."""
    rng = np.random.default_rng(_GLYPH_ALPHABET_SEED)
    out = np.empty((n_classes, strokes, 2, 2))
    for k in range(n_classes):
        for j in range(strokes):
            while True:
                a, b = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
                if np.linalg.norm(a - b) >= 0.6:
                    break
            out[k, j] = a, b
    out.setflags(write=False)
    return out


def segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance from ``points`` (P, 2) to the segments ``a``-``b`` (..., 2): (..., P)."""
    ab = (b - a)[..., None, :]
    ap = points - a[..., None, :]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


def glyph_images(n: int, size: int, rng: np.random.Generator,
                 n_classes: int = GLYPH_CLASSES) -> tuple[Tensor, Tensor]:
    """Source domain: ``n`` glyphs of :func:`glyph_alphabet` (labels balanced: ``n // n_classes``
    per class, the remainder to random classes, shuffled), (n, 3, size, size) in [0, 1].

    Per image: the glyph's strokes mapped by a random similarity plus shear (scale 0.5-0.85 of the
    half side, rotation +-30 deg, shear +-0.2, centre within 1.5 px of the middle), drawn with an
    anti-aliased pen of half-width 0.5-1.1 px in a random ink colour over a random crop of a
    colour photo (:data:`~thesislib.data.photos.COLOR_PHOTOS`, shorter side 1-4 x ``size``), plus
    N(0, 0.03^2) noise. An ink colour whose mean channel difference to the crop's mean colour is
    below 0.35 is moved 0.35 away from it (darker on a light crop, lighter on a dark one; clipped to
    [0, 1]), so the strokes stay visible on most backgrounds."""
    alphabet = glyph_alphabet(n_classes)
    labels = np.concatenate([np.repeat(np.arange(n_classes), n // n_classes),
                             rng.choice(n_classes, size=n % n_classes, replace=False)])
    labels = rng.permutation(labels)
    scale = rng.uniform(0.5, 0.85, n) * size / 2
    theta = rng.uniform(-np.pi / 6, np.pi / 6, n)
    shear = rng.uniform(-0.2, 0.2, n)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)          # (n, 2, 2)
    sh = np.zeros((n, 2, 2))
    sh[:, 0, 0] = sh[:, 1, 1] = 1.0
    sh[:, 1, 0] = shear
    lin = scale[:, None, None] * (rot @ sh)                                    # (n, 2, 2)
    centre = size / 2 + rng.uniform(-1.5, 1.5, (n, 2))
    ends = np.einsum("nij,nsej->nsei", lin, alphabet[labels]) + centre[:, None, None, :]
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    grid = np.stack([yy.ravel(), xx.ravel()], -1)                              # (S*S, 2)
    dist = segment_distance(grid, ends[:, :, 0], ends[:, :, 1]).min(1)         # (n, S*S)
    half = rng.uniform(0.5, 1.1, n)[:, None]
    ink = np.clip(half + 0.5 - dist, 0.0, 1.0).reshape(n, size, size, 1)
    photo = rng.integers(0, len(COLOR_PHOTOS), size=n)
    side = rng.integers(1, 5, size=n)
    bg = np.empty((n, size, size, 3), dtype=np.float32)
    for k, name in enumerate(COLOR_PHOTOS):
        for m in np.unique(side[photo == k]):
            idx = np.flatnonzero((photo == k) & (side == m))
            bg[idx] = random_crops(_resized(name, int(m) * size), size, idx.size, rng)
    colour = rng.uniform(0, 1, (n, 3))
    mean = bg.mean(axis=(1, 2))
    gap = colour - mean
    far = np.abs(gap).mean(1, keepdims=True) >= 0.35
    push = np.where(mean.mean(1, keepdims=True) > 0.5, -1.0, 1.0)              # dark ink on light bg
    colour = np.where(far, colour, np.clip(mean + push * 0.35 + 0.5 * (push * gap > 0) * gap, 0, 1))
    out = bg * (1 - ink) + colour[:, None, None, :] * ink + rng.normal(0, 0.03, bg.shape)
    return _rgb(np.clip(out, 0, 1), size), torch.from_numpy(labels.astype(np.int64))


def shape_images(n: int, size: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Procedural shapes (labels index :data:`SHAPES`): a random-size shape at a random place, a
    random foreground/background intensity pair (contrast >= 0.3) and N(0, 0.05^2) noise."""
    labels = rng.integers(0, len(SHAPES), size=n)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.empty((n, size, size), dtype=np.float32)
    for i, k in enumerate(labels):
        r = rng.uniform(0.3, 0.45) * size
        cy, cx = rng.uniform(r, size - r, 2)
        dy, dx = (yy - cy) / r, (xx - cx) / r
        if k == 0:
            mask = dy ** 2 + dx ** 2 < 1
        elif k == 1:
            mask = (np.abs(dy) < 0.8) & (np.abs(dx) < 0.8)
        elif k == 2:
            mask = (dy < 0.8) & (dy > -1.0 + 2 * np.abs(dx))
        else:
            mask = ((np.abs(dy) < 0.3) | (np.abs(dx) < 0.3)) & (np.abs(dy) < 1) & (np.abs(dx) < 1)
        bg = rng.uniform(0, 1)
        fg = bg + rng.choice([-1, 1]) * rng.uniform(0.3, 0.6)
        if not 0 <= fg <= 1:
            fg = bg - (fg - bg)
        out[i] = np.where(mask, fg, bg) + rng.normal(0, 0.05, (size, size))
    return _rgb(np.clip(out, 0, 1), size), torch.from_numpy(labels.astype(np.int64))


def texture_images(n: int, size: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Crops of grass / gravel / brick (labels index :data:`~thesislib.data.photos.TEXTURES`), each
    photo first resized to a random shorter side of 2-6 x ``size``."""
    labels = rng.integers(0, len(TEXTURES), size=n)
    sides = rng.integers(2, 7, size=n)
    out = np.empty((n, size, size), dtype=np.float32)
    for k, name in enumerate(TEXTURES):
        for s in np.unique(sides[labels == k]):
            idx = np.flatnonzero((labels == k) & (sides == s))
            out[idx] = random_crops(_resized(name, int(s) * size), size, idx.size, rng)
    return _rgb(out, size), torch.from_numpy(labels.astype(np.int64))


def _normalised(name: str, x_tr: Tensor, y_tr: Tensor, x_te: Tensor, y_te: Tensor,
                classes: Sequence[str]) -> MiniDomain:
    mean = x_tr.mean(dim=(0, 2, 3))
    std = x_tr.std(dim=(0, 2, 3)).clamp_min(1e-3)
    norm = (lambda x: ((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).contiguous())
    return MiniDomain(name, norm(x_tr), y_tr, norm(x_te), y_te, tuple(classes), mean, std)


def mini_domain(name: str, seed: int = 0, size: int = 16, shots: int = 10, n_source: int = 3000,
                n_test: int = 300) -> MiniDomain:
    """One domain of the mini-decathlon (module docstring), drawn with ``seed``.

    ``shots``: training images per class of a target domain; ``n_source``: training crops of the
    source domain; ``n_test``: test images (at most; digits and faces have fewer left)."""
    if name not in MINI_DOMAINS:
        raise ValueError(f"unknown mini-decathlon domain {name!r}; domains are {', '.join(MINI_DOMAINS)}")
    rng = np.random.default_rng([seed, MINI_DOMAINS.index(name)])
    if name == "glyphs":
        x_tr, y_tr = glyph_images(n_source, size, rng)
        x_te, y_te = glyph_images(n_test, size, rng)
        return _normalised(name, x_tr, y_tr, x_te, y_te, tuple(f"glyph{k:03d}" for k in range(GLYPH_CLASSES)))
    if name == "photos":
        x_tr, y_tr = photo_domain_images(n_source, size, rng)
        x_te, y_te = photo_domain_images(n_test, size, rng)
        return _normalised(name, x_tr, y_tr, x_te, y_te, COLOR_PHOTOS)
    if name in ("digits", "faces"):
        if name == "digits":
            images, labels = load_digits_arrays()
            classes: Sequence[str] = [str(d) for d in range(10)]
        else:
            import skimage.data

            images = skimage.data.lfw_subset().astype(np.float32)
            labels = np.repeat(np.array([1, 0]), 100)  # the first 100 are faces
            classes = ["non-face", "face"]
        tr, te = _few_shot(labels, shots, rng, n_test)
        x = _rgb(images, size)
        y = torch.from_numpy(labels.astype(np.int64))
        return _normalised(name, x[tr], y[tr], x[te], y[te], classes)
    make = shape_images if name == "shapes" else texture_images
    classes = SHAPES if name == "shapes" else TEXTURES
    x_pool, y_pool = make(shots * len(classes) * 4, size, rng)
    tr, _ = _few_shot(y_pool.numpy(), shots, rng, 0)
    x_te, y_te = make(n_test, size, rng)
    return _normalised(name, x_pool[tr], y_pool[tr], x_te, y_te, classes)


def mini_decathlon(seed: int = 0, size: int = 16, shots: int = 10, n_source: int = 3000, n_test: int = 300,
                   domains: Sequence[str] = ("glyphs", *TARGET_DOMAINS)) -> dict[str, MiniDomain]:
    """Every domain of ``domains`` (:func:`mini_domain`), source first."""
    return {d: mini_domain(d, seed, size, shots, n_source, n_test) for d in domains}
