"""Procedural segmentation scenes with image-level labels and co-occurring distractors.

The real VOC data cannot be downloaded here, so the SEC and micro-annotation smoke runs (study
note 001, sections 1.6(a) and 2.6(a)) train on generated scenes: 1-2 objects per image on a
randomly tinted crop of a real texture (scikit-image grass / gravel / brick) or colour photo.
A class is a shape *and* a colour family (hue jittered per object, random saturation and
value, shaded by the background texture under it), so image-level labels are learnable and
pixel masks are exact.

Co-occurring distractors (thesis chapter 3: boats on water, trains on rails) are declared per
class: an image that contains such a class always gets the distractor band across its bottom
(``"water"``: a blue-tinted rippled texture over 30-45% of the height; ``"rails"``: ballast with
sleepers and two rails over 22-32%), the object sits on the band (a boat's waterline halfway up
its hull, a train on the rails). With ``p_distractor_without_object`` (default 0) an image with
no such class gets a band of one anyway, its object absent, so that the band is correlated with
the class rather than a part of its definition; at 0 the band never appears without its class.
The band is *not*
part of any object mask; :attr:`Scenes.distractor` returns its visible pixels so that a
simulated annotator can score clusters.

Everything is drawn for all images at once with numpy broadcasting; 1,000 scenes of 32x32 take
a fraction of a second after the background photos are loaded (cached per process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from thesislib.config import from_mapping
from thesislib.data.photos import load_photo, random_crops, textures

SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "diamond", "cross", "ring", "boat", "train", "car")
DISTRACTORS: tuple[str, ...] = ("", "water", "rails")
BACKGROUND_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower")


@dataclass(frozen=True)
class SceneClass:
    """One object class: ``shape`` (one of :data:`SHAPES`), ``hue`` (colour family, in turns,
    0 = red, 1/3 = green, 2/3 = blue) and ``distractor`` (``""``, ``"water"`` or ``"rails"``)."""

    name: str
    shape: str
    hue: float
    distractor: str = ""


@dataclass(frozen=True)
class SceneConfig:
    """Settings of :func:`generate_scenes` (build from a mapping with :func:`scene_config`).

    ``object_size`` is the object's extent (its bounding square, 2r) as a fraction of the image
    side; ``p_second_class`` the probability that a second object has another class than the
    first; ``water_band`` / ``rails_band`` the range of the band's height fraction;
    ``p_distractor_without_object`` the probability that an image with no object of a distractor
    class still gets the band of one (a distractor class drawn uniformly, its object absent), so
    that the band is correlated with its class rather than a perfect predictor of it (0: the band
    appears only with its class, and the random stream is the same as without the option).
    """

    classes: tuple[SceneClass, ...]
    size: int = 32
    min_objects: int = 1
    max_objects: int = 2
    p_second_class: float = 0.6
    object_size: tuple[float, float] = (0.32, 0.5)
    hue_jitter: float = 0.025
    saturation: tuple[float, float] = (0.7, 1.0)
    value: tuple[float, float] = (0.65, 1.0)
    shading: float = 0.3
    p_photo_background: float = 0.25
    background_saturation: float = 0.45
    background_value: tuple[float, float] = (0.3, 0.85)
    water_band: tuple[float, float] = (0.30, 0.45)
    rails_band: tuple[float, float] = (0.22, 0.32)
    p_distractor_without_object: float = 0.0
    noise: float = 0.02
    texture_scale: int = 128

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("a scene needs at least one class")
        for c in self.classes:
            if c.shape not in SHAPES:
                raise ValueError(f"class {c.name!r}: unknown shape {c.shape!r}; choose from {SHAPES}")
            if c.distractor not in DISTRACTORS:
                raise ValueError(f"class {c.name!r}: unknown distractor {c.distractor!r}; choose from "
                                 f"{DISTRACTORS}")
        if len({c.name for c in self.classes}) != len(self.classes):
            raise ValueError("class names must be distinct")
        if not 1 <= self.min_objects <= self.max_objects <= 3:
            raise ValueError("need 1 <= min_objects <= max_objects <= 3")
        if self.size < 16:
            raise ValueError("size must be at least 16")
        lo, hi = self.object_size
        if not 0.0 < lo <= hi <= 0.6:
            raise ValueError("object_size must satisfy 0 < low <= high <= 0.6")
        if not 0.0 <= self.p_distractor_without_object <= 1.0:
            raise ValueError(f"p_distractor_without_object must lie in [0, 1], got "
                             f"{self.p_distractor_without_object}")
        if self.p_distractor_without_object > 0 and not any(c.distractor for c in self.classes):
            raise ValueError("p_distractor_without_object > 0 needs a class with a distractor")
        for name in ("water_band", "rails_band"):
            b_lo, b_hi = getattr(self, name)
            if not 0.1 <= b_lo <= b_hi <= 0.5:
                raise ValueError(f"{name} must satisfy 0.1 <= low <= high <= 0.5")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)


def scene_config(mapping: dict[str, Any] | None = None, **overrides: Any) -> SceneConfig:
    """:class:`SceneConfig` from a mapping (``classes`` as a list of dicts); unknown keys are errors."""
    return from_mapping(SceneConfig, mapping, **overrides)


def sec_scenes(**overrides: Any) -> SceneConfig:
    """SEC smoke preset: 4 classes (red disk, green square, blue triangle, yellow cross), 1-2
    objects per image, no distractors."""
    classes = (SceneClass("disk", "disk", 0.0), SceneClass("square", "square", 0.34),
               SceneClass("triangle", "triangle", 0.62), SceneClass("cross", "cross", 0.15))
    return scene_config({"classes": classes, **overrides})


def distractor_scenes(**overrides: Any) -> SceneConfig:
    """Micro-annotation preset (study note 2.6(a)): one object per image; an orange boat always
    on blue water, a green train always on rails, a yellow car and a magenta ball anywhere.
    Objects are 11-16 px wide at 32x32 (the note: keep them >= ~8 px).

    ``p_distractor_without_object = 0.3``: 30% of the car and ball images also get a water or a
    rails band (15% of all images). The thesis's premise is a distractor *correlated* with its
    class, not a part of it: VOC and ILSVRC show water without boats and rails without trains.
    With the band only under its class (the generic default, 0), the band alone predicts the
    label perfectly, so the classifier learned the water edge and fired weakly on the boat: even
    deleting every region off the boat (the deletion bound) gave a CorLoc of 5-11% over seeds
    0-2, against 64-82% with this setting (``results/micro_annotation/preset/``). The water still
    comes with every boat and P(boat | water) is about 0.77, so the co-occurrence that
    micro-annotation removes stays."""
    classes = (SceneClass("boat", "boat", 0.07, "water"), SceneClass("train", "train", 0.35, "rails"),
               SceneClass("car", "car", 0.15), SceneClass("ball", "disk", 0.85))
    defaults = {"classes": classes, "min_objects": 1, "max_objects": 1, "object_size": (0.36, 0.5),
                "p_distractor_without_object": 0.3}
    return scene_config({**defaults, **overrides})


@dataclass(frozen=True, eq=False)
class Scenes:
    """A batch of generated scenes.

    images (N, 3, H, W) float32 in [0, 1]; masks (N, H, W) int64 (0 = background, c + 1 = class
    c); labels (N, C) float32 multi-hot (1 iff the class has pixels in the mask); distractor
    (N, H, W) bool, the visible distractor band (never overlapping an object); distractor_class
    (N,) int64, the class whose distractor is drawn (its object absent when the image is not
    labelled with it: ``p_distractor_without_object``), -1 for none.
    """

    images: Tensor
    masks: Tensor
    labels: Tensor
    distractor: Tensor
    distractor_class: Tensor
    class_names: tuple[str, ...]
    config: SceneConfig = field(repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: Any) -> Scenes:
        """The scenes at ``index`` (slice, index tensor or bool mask)."""
        return Scenes(self.images[index], self.masks[index], self.labels[index], self.distractor[index],
                      self.distractor_class[index], self.class_names, self.config)


# --------------------------------------------------------------------------------------------
# Drawing helpers (all vectorised over the image axis)
# --------------------------------------------------------------------------------------------

def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; h in turns (wraps), s and v in [0, 1]; returns (..., 3)."""
    h = np.mod(h, 1.0)[..., None]
    k = np.mod(np.array([5.0, 3.0, 1.0]) + 6.0 * h, 6.0)
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


@lru_cache(maxsize=4)
def _grey_pool(scale: int) -> tuple[np.ndarray, ...]:
    """Grey textures (H, W), float32 in [0, 1], shorter side ``scale``; cached per process."""
    return tuple(textures(size=scale).values())


@lru_cache(maxsize=4)
def _colour_pool(scale: int) -> tuple[np.ndarray, ...]:
    """Colour photos (H, W, 3), float32 in [0, 1], shorter side ``scale``; cached per process."""
    return tuple(load_photo(name, size=scale) for name in BACKGROUND_PHOTOS)


def _crops(pool: tuple[np.ndarray, ...], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops, each from a random member of ``pool``."""
    source = rng.integers(0, len(pool), size=n)
    out = np.empty((n, size, size) + pool[0].shape[2:], dtype=np.float32)
    for k, image in enumerate(pool):
        hit = np.flatnonzero(source == k)
        if hit.size:
            out[hit] = random_crops(image, size, hit.size, rng)
    return out


def _shape_masks(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inside mask and "detail" mask (parts drawn lighter or darker) in object coordinates.

    u, v: (n, H, W) pixel offsets from the object centre divided by its half-size r; every
    shape lies inside the square [-1, 1]^2.
    """
    au, av = np.abs(u), np.abs(v)
    none = np.zeros_like(u, dtype=bool)
    if shape == "disk":
        return u * u + v * v <= 1.0, none
    if shape == "square":
        return (au <= 0.85) & (av <= 0.85), none
    if shape == "triangle":
        return (v <= 0.85) & (au <= (v + 1.0) / 1.85), none
    if shape == "diamond":
        return au + av <= 1.0, none
    if shape == "cross":
        return ((au <= 0.34) & (av <= 1.0)) | ((av <= 0.34) & (au <= 1.0)), none
    if shape == "ring":
        rr = u * u + v * v
        return (rr <= 1.0) & (rr >= 0.35), none
    if shape == "boat":  # motorboat: deep hull (waterline at v = 0.5) + cabin with a dark windscreen
        # Compact on purpose: a mast and sail made 60% of the old boat's box a 1-2 px line and a
        # thin triangle that a 16x16 CAM never covers, so no deletion could make its box right.
        hull = (v >= -0.1) & (v <= 0.6) & (au <= 1.0 - 0.5 * (v + 0.1))
        cabin = (v >= -0.6) & (v < -0.1) & (u >= -0.6) & (u <= 0.35)
        window = cabin & (v >= -0.45) & (v <= -0.25) & (u >= -0.45) & (u <= 0.2)
        return hull | cabin, window
    if shape == "train":  # body on the rails (bottom at v = 0.45), a row of windows
        body = (au <= 1.0) & (v >= -0.45) & (v <= 0.45)
        windows = body & (v >= -0.28) & (v <= -0.02) & (np.mod(u * 3.0 + 3.0, 1.0) < 0.6) & (au <= 0.85)
        return body, windows
    if shape == "car":  # body + cabin + wheels
        body = (au <= 1.0) & (v >= -0.05) & (v <= 0.5)
        cabin = (au <= 0.55) & (v >= -0.55) & (v < -0.05)
        wheels = ((u - 0.55) ** 2 + (v - 0.55) ** 2 <= 0.07) | ((u + 0.55) ** 2 + (v - 0.55) ** 2 <= 0.07)
        return body | cabin | wheels, wheels
    raise ValueError(f"unknown shape {shape!r}")


_DETAIL_GAIN = {"boat": 0.45, "train": 1.45, "car": 0.3}


def _band_pixels(kind: str, n: int, size: int, top: np.ndarray, pool: tuple[np.ndarray, ...],
                 rng: np.random.Generator) -> np.ndarray:
    """RGB (n, H, W, 3) of a water or rails band whose top edge is at row ``top`` (n,)."""
    tex = _crops(pool, n, size, rng)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if kind == "water":
        colour = hsv_to_rgb(rng.normal(0.59, 0.015, n), rng.uniform(0.55, 0.85, n), rng.uniform(0.55, 0.9, n))
        phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        ripple = 0.1 * np.sin(2 * np.pi * yy / 3.0 + phase + 0.6 * np.sin(xx / 4.0))
        return colour[:, None, None, :] * np.clip(0.6 + 0.4 * tex + ripple, 0, 1.2)[..., None]
    ballast = hsv_to_rgb(rng.normal(0.08, 0.02, n), rng.uniform(0.2, 0.4, n), rng.uniform(0.35, 0.6, n))
    out = ballast[:, None, None, :] * (0.55 + 0.45 * tex)[..., None]
    height = size - top
    rel = (yy[None] - top[:, None, None]) / height[:, None, None]
    offset = rng.uniform(0, 5, n)[:, None, None]
    sleepers = (np.mod(xx[None] + offset, 5.0) < 2.0) & (rel >= 0.15)
    row = (yy[None] - 0.5) - top[:, None, None]
    rails = (row == np.floor(0.25 * height)[:, None, None]) | (row == np.floor(0.65 * height)[:, None, None])
    out = np.where(sleepers[..., None], np.array([0.28, 0.18, 0.1]), out)
    return np.where(rails[..., None], np.array([0.78, 0.78, 0.8]), out)


def _pick_classes(cfg: SceneConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, K) class indices, -1 for an absent slot; at most one distractor kind per image."""
    num = len(cfg.classes)
    k_max = cfg.max_objects
    kind = np.array([DISTRACTORS.index(c.distractor) for c in cfg.classes])
    count = rng.integers(cfg.min_objects, cfg.max_objects + 1, size=n)
    cls = np.full((n, k_max), -1, dtype=np.int64)
    cls[:, 0] = rng.integers(0, num, size=n)
    for k in range(1, k_max):
        other = rng.integers(0, num, size=n)
        if num > 1:  # a different class with probability p_second_class
            shift = rng.integers(1, num, size=n)
            different = rng.random(n) < cfg.p_second_class
            other = np.where(different, (cls[:, 0] + shift) % num, cls[:, 0])
        for _ in range(8):  # a second distractor kind would need a second band: redraw
            prev = kind[cls[:, :k].clip(0)] * (cls[:, :k] >= 0)
            band = prev.max(axis=1)
            clash = (kind[other] > 0) & (band > 0) & (kind[other] != band)
            if not clash.any():
                break
            other = np.where(clash, rng.integers(0, num, size=n), other)
        else:
            other = np.where(clash, cls[:, 0], other)
        cls[:, k] = np.where(count > k, other, -1)
    return cls


def generate_scenes(config: SceneConfig, n: int, seed: int | np.random.Generator = 0) -> Scenes:
    """Draw ``n`` scenes; the same ``seed`` (or Generator state) gives the same scenes.

    Objects: half-size r = object_size * S / 2, centres uniform such that the shape fits; an
    object of a distractor class sits on its band (centre row fixed by the band's top edge).
    Objects of distractor classes are drawn last, so they are never hidden. Returns
    :class:`Scenes`.
    """
    cfg = config
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    size = cfg.size
    grey = _grey_pool(cfg.texture_scale)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5

    # background: tinted texture (two random colours mixed by the texture) or tinted photo
    use_photo = rng.random(n) < cfg.p_photo_background
    tex = _crops(grey, n, size, rng)
    hue = rng.random((n, 2))
    sat = rng.uniform(0.0, cfg.background_saturation, (n, 2))
    val = np.sort(rng.uniform(*cfg.background_value, (n, 2)), axis=1)
    lo, hi = hsv_to_rgb(hue[:, 0], sat[:, 0], val[:, 0]), hsv_to_rgb(hue[:, 1], sat[:, 1], val[:, 1])
    image = lo[:, None, None] + (hi - lo)[:, None, None] * tex[..., None]
    lum = tex
    photos = np.flatnonzero(use_photo)
    if photos.size:
        crops = _crops(_colour_pool(cfg.texture_scale), photos.size, size, rng)
        tint = rng.uniform(0.6, 1.2, (photos.size, 1, 1, 3))
        image[photos] = crops * tint
        lum[photos] = crops.mean(axis=-1)

    # classes, distractor bands
    cls = _pick_classes(cfg, n, rng)
    kind_of = np.array([DISTRACTORS.index(c.distractor) for c in cfg.classes])
    slot_kind = np.where(cls >= 0, kind_of[cls.clip(0)], 0)
    band_kind = slot_kind.max(axis=1)
    has_band = band_kind > 0
    dclass = np.where(has_band, cls[np.arange(n), np.argmax(slot_kind, axis=1)], -1)
    if cfg.p_distractor_without_object > 0:  # the band of a distractor class, its object absent
        with_band = np.flatnonzero(kind_of > 0)
        lone = ~has_band & (rng.random(n) < cfg.p_distractor_without_object)
        dclass = np.where(lone, with_band[rng.integers(0, with_band.size, size=n)], dclass)
        band_kind = np.where(lone, kind_of[dclass.clip(0)], band_kind)
        has_band = band_kind > 0
    lo_frac = np.where(band_kind == 2, cfg.rails_band[0], cfg.water_band[0])
    hi_frac = np.where(band_kind == 2, cfg.rails_band[1], cfg.water_band[1])
    band_top = np.round(size * (1.0 - rng.uniform(lo_frac, hi_frac)))
    band = has_band[:, None, None] & (yy[None] >= band_top[:, None, None])
    for code, name in ((1, "water"), (2, "rails")):
        idx = np.flatnonzero(band_kind == code)
        if idx.size:
            pixels = _band_pixels(name, idx.size, size, band_top[idx], grey, rng)
            image[idx] = np.where(band[idx, ..., None], pixels, image[idx])

    # objects: distractor classes last (on top)
    order = np.argsort(slot_kind > 0, axis=1, kind="stable")
    cls = np.take_along_axis(cls, order, axis=1)
    k_max = cls.shape[1]
    radius = rng.uniform(*cfg.object_size, (n, k_max)) * size / 2.0
    cx = radius + rng.random((n, k_max)) * (size - 2 * radius)
    cy = radius + rng.random((n, k_max)) * (size - 2 * radius)
    on_band = (cls >= 0) & (kind_of[cls.clip(0)] > 0)
    seat = np.where(kind_of[cls.clip(0)] == 1, 0.5, 0.4)  # waterline / rails at cy + seat * r
    cy = np.where(on_band, band_top[:, None] - seat * radius, cy)
    hues = np.array([c.hue for c in cfg.classes])[cls.clip(0)] + rng.normal(0, cfg.hue_jitter, (n, k_max))
    rgb = hsv_to_rgb(hues, rng.uniform(*cfg.saturation, (n, k_max)), rng.uniform(*cfg.value, (n, k_max)))
    shade = 1.0 - cfg.shading + cfg.shading * lum
    masks = np.zeros((n, size, size), dtype=np.int64)
    for k in range(k_max):
        for c, spec in enumerate(cfg.classes):
            idx = np.flatnonzero(cls[:, k] == c)
            if not idx.size:
                continue
            r = radius[idx, k][:, None, None]
            u = (xx[None] - cx[idx, k][:, None, None]) / r
            v = (yy[None] - cy[idx, k][:, None, None]) / r
            inside, detail = _shape_masks(spec.shape, u, v)
            gain = np.where(detail, _DETAIL_GAIN.get(spec.shape, 1.0), 1.0)
            pixels = np.clip(rgb[idx, k][:, None, None, :] * gain[..., None], 0, 1) * shade[idx, ..., None]
            image[idx] = np.where(inside[..., None], pixels, image[idx])
            masks[idx] = np.where(inside, c + 1, masks[idx])

    image = image + rng.normal(0.0, cfg.noise, image.shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    onehot = np.zeros((n, len(cfg.classes) + 1), dtype=bool)
    onehot[np.repeat(np.arange(n), size * size), masks.reshape(-1)] = True
    return Scenes(
        images=torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2))),
        masks=torch.from_numpy(masks),
        labels=torch.from_numpy(onehot[:, 1:].astype(np.float32)),
        distractor=torch.from_numpy(band & (masks == 0)),
        distractor_class=torch.from_numpy(dclass.astype(np.int64)),
        class_names=cfg.class_names,
        config=cfg,
    )
