"""Images and unaries for exercising the dense CRF without a dataset.

* :func:`photo` — a bundled photo (``thesislib.data.photos``: ``astronaut``, ``chelsea``,
  ``coffee``, ...) resized to any size, uint8 RGB;
* :func:`shapes_on_noise` — a procedural scene: coloured ellipses and rectangles over a noisy
  background, with its exact label map;
* :func:`segment_labels` — a label map for a photo: k-means on colour and position;
* :func:`noisy_unaries` — realistic unaries for a label map: a softmax of "network-like" logits
  (confidence on the true label plus spatially smooth noise), computed on a coarse grid and
  bilinearly upsampled, as SEC upsamples its 41x41 scores before the test-time CRF.

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["photo", "shapes_on_noise", "segment_labels", "noisy_unaries", "PHOTOS"]

PHOTOS = ("astronaut", "chelsea", "coffee")


def photo(name: str, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 bundled photo ``name`` (``thesislib.data.photos``) resized to H x W."""
    from thesislib.data.photos import load_photo

    return load_photo(name, (height, width), as_float=False, rgb=True)


def shapes_on_noise(height: int, width: int, n_shapes: int = 4, noise: float = 20.0,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy background with ``n_shapes`` flat-coloured ellipses/rectangles.

    Returns:
        image: (H, W, 3) uint8; labels: (H, W) int64, 0 = background, k = k-th shape (later
        shapes occlude earlier ones).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(40, 215, size=3)
    image = np.broadcast_to(base, (height, width, 3)).copy()
    labels = np.zeros((height, width), dtype=np.int64)
    for k in range(1, n_shapes + 1):
        cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        if k % 2:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        image[mask] = rng.uniform(0, 255, size=3)
        labels[mask] = k
    image = image + rng.normal(0.0, noise, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), labels


def segment_labels(image: np.ndarray, n_segments: int = 5, seed: int = 0) -> np.ndarray:
    """(H, W) int64 label map of a photo: k-means on (colour, 0.5 * scaled position)."""
    from sklearn.cluster import KMeans

    height, width, _ = image.shape
    yy, xx = np.mgrid[0:height, 0:width]
    scale = 255.0 / max(height, width)
    feats = np.concatenate([image.reshape(-1, 3).astype(np.float64),
                            0.5 * scale * np.stack([yy.ravel(), xx.ravel()], axis=1)], axis=1)
    rng = np.random.default_rng(seed)
    sample = feats[rng.choice(len(feats), size=min(len(feats), 4000), replace=False)]
    km = KMeans(n_clusters=n_segments, n_init=1, random_state=seed).fit(sample)
    return km.predict(feats).reshape(height, width).astype(np.int64)


def noisy_unaries(labels: np.ndarray, n_labels: int = 21, confidence: float = 4.0,
                  noise: float = 1.5, grid: int = 41, seed: int = 0) -> Tensor:
    """(L, H, W) float32 unary energies ``-log softmax(logits)`` for an (H, W) label map.

    Segment k of ``labels`` is assigned a random class (distinct classes per segment, class 0
    included). Logits: ``confidence`` on the assigned class plus Gaussian-smoothed noise of std
    ``noise`` on every class, computed on a grid of at most ``grid`` x ``grid`` cells (area
    downsampled label one-hots), then bilinearly upsampled to H x W.
    """
    gen = torch.Generator().manual_seed(seed)
    height, width = labels.shape
    segments = int(labels.max()) + 1
    if segments > n_labels:
        raise ValueError(f"{segments} segments but only {n_labels} labels")
    classes = torch.randperm(n_labels, generator=gen)[:segments]
    onehot = F.one_hot(torch.from_numpy(labels), n_labels).permute(2, 0, 1).float()  # (L, H, W)
    class_map = torch.zeros(n_labels, height, width)
    class_map[classes] = onehot[:segments]
    gh, gw = min(grid, height), min(grid, width)
    coarse = F.adaptive_avg_pool2d(class_map[None], (gh, gw))[0]
    raw = torch.randn(n_labels, gh, gw, generator=gen)
    blur = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    kernel = (blur[:, None] * blur[None, :])[None, None].repeat(n_labels, 1, 1, 1)
    smooth = F.conv2d(F.pad(raw[None], (2, 2, 2, 2), mode="replicate"), kernel, groups=n_labels)[0]
    smooth = smooth / smooth.std()
    logits = confidence * coarse + noise * smooth
    if (gh, gw) != (height, width):
        logits = F.interpolate(logits[None], size=(height, width), mode="bilinear",
                               align_corners=False)[0]
    return (-torch.log_softmax(logits, dim=0)).contiguous()
