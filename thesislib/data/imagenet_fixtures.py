"""A tiny ILSVRC CLS-LOC dataset in the real on-disk layout (see :mod:`thesislib.data.imagenet`).

:func:`write_imagenet_fixture` writes ``<root>/imagenet/`` with ``LOC_synset_mapping.txt``, JPEG
train and val images, PASCAL-VOC-style XML box files and/or ``LOC_val_solution.csv``. The pictures
are learnable and carry the chapter's problem: each class is an object of its own colour and
shape, and class 0 always sits on a blue "water" band across the bottom of the image, which no
other class has (a co-occurring distractor). Image sizes vary (40-64 px a side), so the
resize-and-scale-boxes path is exercised.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

_COLOURS = np.array([[230, 120, 30], [40, 200, 60], [220, 40, 200], [240, 220, 40], [60, 200, 220],
                     [200, 60, 60], [120, 80, 220], [250, 250, 250]], dtype=np.float64)


def fixture_wnids(n_classes: int) -> list[str]:
    """Synthetic wnids ``n90000000``, ``n90000001``, ... (never real ImageNet ids)."""
    return [f"n9{k:07d}" for k in range(n_classes)]


def render_loc_image(image_id: str, label: int) -> tuple[np.ndarray, np.ndarray]:
    """The picture of ``image_id`` of class ``label``: uint8 RGB (H, W, 3) and its object box
    (4,) as inclusive pixel indices (xmin, ymin, xmax, ymax), as written in the XML and CSV."""
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    height, width = (int(v) for v in rng.integers(40, 65, size=2))
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    pixels = rng.uniform(70, 170, 3) + rng.normal(0, 12, (height, width, 3))
    top = height
    if label == 0:  # the distractor band: always under class 0, never elsewhere
        top = int(height * rng.uniform(0.6, 0.7))
        pixels[top:] = np.array([40.0, 80.0, 200.0]) + rng.normal(0, 10, (height - top, width, 3))
    side = min(height, width)
    ry, rx = rng.uniform(0.18, 0.28, size=2) * side
    cx = rng.uniform(rx + 1, width - rx - 1)
    cy = top - 0.6 * ry if label == 0 else rng.uniform(ry + 1, height - ry - 1)
    u, v = (xx - cx) / rx, (yy - cy) / ry
    inside = (u * u + v * v <= 1.0) if label % 2 else (np.abs(u) <= 0.9) & (np.abs(v) <= 0.9)
    pixels[inside] = _COLOURS[label % len(_COLOURS)]
    ys, xs = np.nonzero(inside)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.clip(pixels, 0, 255).astype(np.uint8), box


def _xml(filename: str, size: tuple[int, int], wnid: str, box: np.ndarray) -> str:
    height, width = size
    x0, y0, x1, y1 = (int(v) for v in box)
    return (f"<annotation><folder>{wnid}</folder><filename>{filename}</filename>"
            f"<source><database>ILSVRC_2012</database></source>"
            f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size><segmented>0</segmented>"
            f"<object><name>{wnid}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
            f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            f"</annotation>\n")


def write_imagenet_fixture(root: str | Path, n_classes: int = 3, n_train: int = 8, n_val: int = 4,
                           val_ground_truth: str = "both", train_box_every: int = 2) -> Path:
    """Write ``<root>/imagenet/`` in the CLS-LOC layout and return that directory.

    ``n_train`` / ``n_val`` images per class; ``val_ground_truth`` ``"csv"``, ``"xml"`` or
    ``"both"``; every ``train_box_every``-th train image gets an XML box file (0: none), as only
    part of the real train set has boxes.
    """
    if val_ground_truth not in ("csv", "xml", "both"):
        raise ValueError("val_ground_truth must be 'csv', 'xml' or 'both'")
    base = Path(root) / "imagenet"
    data = base / "ILSVRC" / "Data" / "CLS-LOC"
    ann = base / "ILSVRC" / "Annotations" / "CLS-LOC"
    wnids = fixture_wnids(n_classes)
    (base).mkdir(parents=True, exist_ok=True)
    (base / "LOC_synset_mapping.txt").write_text("".join(f"{w} fixture class {k}, synthetic\n"
                                                         for k, w in enumerate(wnids)))
    for label, wnid in enumerate(wnids):
        (data / "train" / wnid).mkdir(parents=True, exist_ok=True)
        for n in range(n_train):
            image_id = f"{wnid}_{n + 1}"
            pixels, box = render_loc_image(image_id, label)
            Image.fromarray(pixels).save(data / "train" / wnid / f"{image_id}.JPEG", quality=95)
            if train_box_every and n % train_box_every == 0:
                (ann / "train" / wnid).mkdir(parents=True, exist_ok=True)
                (ann / "train" / wnid / f"{image_id}.xml").write_text(
                    _xml(image_id, pixels.shape[:2], wnid, box))
    (data / "val").mkdir(parents=True, exist_ok=True)
    rows = []
    number = 0
    for _ in range(n_val):
        for label, wnid in enumerate(wnids):
            number += 1
            image_id = f"ILSVRC2012_val_{number:08d}"
            pixels, box = render_loc_image(image_id, label)
            Image.fromarray(pixels).save(data / "val" / f"{image_id}.JPEG", quality=95)
            rows.append([image_id, f"{wnid} {' '.join(str(int(v)) for v in box)}"])
            if val_ground_truth in ("xml", "both"):
                (ann / "val").mkdir(parents=True, exist_ok=True)
                (ann / "val" / f"{image_id}.xml").write_text(_xml(image_id, pixels.shape[:2], wnid, box))
    if val_ground_truth in ("csv", "both"):
        with (base / "LOC_val_solution.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["ImageId", "PredictionString"])
            writer.writerows(rows)
    return base
