"""Real photographs that ship with scikit-image and scikit-learn (no download needed).

Every name listed here was checked to load from the files installed with the packages
(scikit-image 0.26 keeps them in ``skimage/data/``; ``checkerboard`` and ``colorwheel`` come
from the bundled ``chessboard_GRAY.png`` and ``color.png``), so nothing touches the network.

=========  =====================================================================================
colour     astronaut, chelsea, coffee, rocket, hubble_deep_field, immunohistochemistry, retina,
           colorwheel, logo (RGBA, composited on white), china, flower (scikit-learn)
greyscale  camera, coins, horse (a binary silhouette), moon, page, text, checkerboard, clock,
           grass, gravel, brick
=========  =====================================================================================

The textures (grass, gravel, brick) are cropped as backgrounds for procedural scenes;
:func:`random_crops` takes a :class:`numpy.random.Generator` so crops are reproducible.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from thesislib.data.transforms import resize_image, to_tensor

COLOR_PHOTOS: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "colorwheel", "logo", "china", "flower",
)
GRAY_PHOTOS: tuple[str, ...] = (
    "camera", "coins", "horse", "moon", "page", "text", "checkerboard", "clock",
    "grass", "gravel", "brick",
)
TEXTURES: tuple[str, ...] = ("grass", "gravel", "brick")
_SKLEARN = {"china": "china.jpg", "flower": "flower.jpg"}


def photo_names(kind: str = "all") -> tuple[str, ...]:
    """Names accepted by :func:`load_photo`: ``kind`` is ``"all"``, ``"color"`` or ``"gray"``."""
    if kind == "all":
        return COLOR_PHOTOS + GRAY_PHOTOS
    if kind == "color":
        return COLOR_PHOTOS
    if kind == "gray":
        return GRAY_PHOTOS
    raise ValueError(f"kind must be 'all', 'color' or 'gray', got {kind!r}")


@lru_cache(maxsize=None)
def _raw(name: str) -> np.ndarray:
    """The image as shipped, uint8 (H, W) or (H, W, 3); cached read-only."""
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(_SKLEARN[name])
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    if image.dtype == bool:  # horse is a binary silhouette
        image = image.astype(np.uint8) * 255
    if image.ndim == 3 and image.shape[2] == 4:  # logo: composite RGBA over white
        rgb = image[..., :3].astype(np.float32)
        alpha = image[..., 3:].astype(np.float32) / 255.0
        image = np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    image = np.ascontiguousarray(image, dtype=np.uint8)
    image.setflags(write=False)
    return image


def _target_shape(shape: tuple[int, int], size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        h, w = shape
        scale = size / min(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))
    if len(size) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def load_photo(name: str, size: int | tuple[int, int] | None = None, as_float: bool = True,
               rgb: bool = False) -> np.ndarray:
    """Load a bundled photo by name (see :func:`photo_names`).

    Returns a new array: (H, W, 3) for colour photos; (H, W) for greyscale ones, or
    (H, W, 3) with the grey value repeated when ``rgb=True``. Values are float32 in [0, 1]
    when ``as_float`` (the default), else uint8 in 0..255.

    ``size``: ``None`` keeps the original resolution; an int resizes so that the shorter
    side has that many pixels (aspect ratio kept); ``(height, width)`` resizes exactly.
    Resizing is :func:`thesislib.data.transforms.resize_image` (bilinear, antialiased when
    shrinking), on the float image.
    """
    if name not in COLOR_PHOTOS and name not in GRAY_PHOTOS:
        raise KeyError(f"unknown photo {name!r}; available: {', '.join(photo_names())}")
    image = _raw(name).astype(np.float32) / 255.0
    if size is not None:
        target = _target_shape(image.shape[:2], size)
        if target != image.shape[:2]:
            resized = resize_image(to_tensor(image), target).permute(1, 2, 0).numpy()
            image = np.clip(resized[..., 0] if image.ndim == 2 else resized, 0.0, 1.0)
    if rgb and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if not as_float:
        return np.round(image * 255.0).astype(np.uint8)
    return image


def textures(size: int | tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The greyscale texture photos (grass, gravel, brick) as float32 (H, W) arrays in [0, 1]."""
    return {name: load_photo(name, size=size) for name in TEXTURES}


def random_crops(image: np.ndarray, size: int | tuple[int, int], n: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops of ``image`` (H, W) or (H, W, C): returns (n, h, w) or (n, h, w, C).

    Top-left corners are drawn uniformly with ``rng.integers`` (rows first, then columns),
    so a seeded Generator gives the same crops every time. Crops are gathered in one
    vectorised indexing operation.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    height, width = image.shape[:2]
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"crop {h}x{w} does not fit in an image of {height}x{width}")
    top = rng.integers(0, height - h + 1, size=n)
    left = rng.integers(0, width - w + 1, size=n)
    rows = top[:, None] + np.arange(h)[None, :]
    cols = left[:, None] + np.arange(w)[None, :]
    return image[rows[:, :, None], cols[:, None, :]]


def random_crop(image: np.ndarray, size: int | tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One random crop of ``image``: (h, w) or (h, w, C). Same draws as ``random_crops(n=1)``."""
    return random_crops(image, size, 1, rng)[0]
