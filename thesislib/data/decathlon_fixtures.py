"""A tiny Visual Decathlon in the release's format, for tests and for running the full-scale code
paths without the data (layout: :mod:`thesislib.data.decathlon`).

Per domain and split: JPEG files whose shorter side is 72 px (the release's resizing; the longer
side varies from image to image), a COCO-style ``<domain>_<split>.json`` with ``images``,
``annotations`` and ``categories`` whose ids carry a per-domain offset like the release's
(``10^7 x (domain index + 1) + k + 1``), and a ``<domain>_test_stripped.json`` without
annotations; optionally ``decathlon_mean_std.pickle``. Each class is a flat colour with a
class-specific stripe, so a smoke training run can learn it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from thesislib.data.decathlon import DECATHLON_DOMAINS, SHORT_SIDE


def _image(label: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    long_side = int(rng.integers(SHORT_SIDE, SHORT_SIDE + 24))
    h, w = (SHORT_SIDE, long_side) if rng.random() < 0.5 else (long_side, SHORT_SIDE)
    hue = label / max(1, n_classes)
    colour = np.array([hue, 1.0 - hue, 0.5 + 0.4 * np.sin(6.28 * hue)]) * 255
    img = np.broadcast_to(colour, (h, w, 3)).copy()
    band = (label * 7) % max(1, h - 8)
    img[band:band + 8] = 255 - colour
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_decathlon_fixture(root: str | Path, classes: Mapping[str, int] | None = None, n_train: int = 2,
                            n_val: int = 1, n_test: int = 1, seed: int = 0, mean_std: bool = True) -> Path:
    """Write ``root/decathlon`` with ``classes`` (domain -> class count; default dtd: 3,
    vgg-flowers: 2) and ``n_train`` / ``n_val`` / ``n_test`` images per class. Returns the
    ``decathlon/`` directory."""
    classes = dict(classes or {"dtd": 3, "vgg-flowers": 2})
    base = Path(root) / "decathlon"
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    table: dict[str, list[float]] = {}
    for domain, n_classes in classes.items():
        offset = 10**7 * (DECATHLON_DOMAINS.index(domain) + 1)
        categories = [{"id": offset + k + 1, "name": f"{domain}_class{k}"} for k in range(n_classes)]
        image_id = offset
        for split, per_class in (("train", n_train), ("val", n_val), ("test", n_test)):
            folder = base / "data" / domain / split
            folder.mkdir(parents=True, exist_ok=True)
            images, annotations = [], []
            for k in range(n_classes):
                for _ in range(per_class):
                    image_id += 1
                    img = _image(k, n_classes, rng)
                    name = f"data/{domain}/{split}/{image_id - offset:07d}.jpg"
                    Image.fromarray(img).save(base / name, quality=95)
                    images.append({"id": image_id, "file_name": name, "width": img.shape[1], "height": img.shape[0]})
                    annotations.append({"id": image_id, "image_id": image_id, "category_id": offset + k + 1,
                                        "segmentation": [], "area": img.shape[0] * img.shape[1],
                                        "bbox": [0, 0, img.shape[1], img.shape[0]], "iscrowd": 0})
            doc = {"info": {"description": f"fixture {domain} {split}"}, "images": images, "categories": categories}
            if split != "test":
                doc["annotations"] = annotations
            name = f"{domain}_test_stripped.json" if split == "test" else f"{domain}_{split}.json"
            (base / "annotations" / name).write_text(json.dumps(doc))
        table[f"{domain}mean"] = [0.5, 0.5, 0.5]
        table[f"{domain}std"] = [0.25, 0.25, 0.25]
    if mean_std:
        with (base / "decathlon_mean_std.pickle").open("wb") as fh:
            pickle.dump(table, fh)
    return base
