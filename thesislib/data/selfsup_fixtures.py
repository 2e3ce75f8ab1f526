"""Tiny PASCAL VOC 2007 and CelebA-attribute files in their real formats (tests of the ch. 3-4 loaders).

* :func:`write_voc07_fixture`: ``<root>/voc/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}``
  with devkit-style XML (``<annotation><object><name>..</name><difficult>0|1</difficult>...``).
  Each image's JPEG is tinted by its first class, so a classifier has something to learn.
* :func:`write_celeba_attributes`: ``list_attr_celeba.txt`` for the images of a CelebA fixture
  (see :func:`thesislib.data.pixelcnn_fixtures.write_celeba_fixture`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from thesislib.data.celeba import ATTR_FILE, N_ATTRIBUTES, PARTITION_FILE
from thesislib.data.voc07 import VOC07_CLASSES, VOC07_INNER

_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>{difficult}</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>{w}</xmax><ymax>{h}</ymax></bndbox>
  </object>
"""


def voc07_fixture_objects(index: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """(class name, difficult) of fixture image ``index``: class ``index % 20`` first, then 0-2 random ones."""
    objects = [(VOC07_CLASSES[index % len(VOC07_CLASSES)], 0)]
    for _ in range(int(rng.integers(0, 3))):
        objects.append((VOC07_CLASSES[int(rng.integers(0, len(VOC07_CLASSES)))], int(rng.random() < 0.3)))
    return objects


def write_voc07_fixture(root: str | Path, n_trainval: int = 12, n_test: int = 8, size: tuple[int, int] = (48, 64),
                        seed: int = 0) -> Path:
    """Write a VOC 2007 fixture; ``trainval`` = ``train`` + ``val`` halves, ids ``000001``... Returns ``<root>/voc``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "voc"
    devkit = base / VOC07_INNER
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (devkit / sub).mkdir(parents=True, exist_ok=True)
    h, w = size
    ids = [f"{i:06d}" for i in range(1, n_trainval + n_test + 1)]
    for k, image_id in enumerate(ids):
        objects = voc07_fixture_objects(k, rng)
        first = VOC07_CLASSES.index(objects[0][0])
        colour = np.array([(first * 37) % 256, (first * 91) % 256, (first * 53) % 256], dtype=np.float64)
        pixels = colour + rng.normal(0, 10, (h, w, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(devkit / "JPEGImages" / f"{image_id}.jpg",
                                                                       quality=95)
        body = "".join(_OBJECT.format(name=n, difficult=d, w=w, h=h) for n, d in objects)
        (devkit / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{image_id}.jpg</filename>\n"
            f"  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n{body}</annotation>\n")
    trainval, test = ids[:n_trainval], ids[n_trainval:]
    half = len(trainval) // 2
    lists = {"train": trainval[:half], "val": trainval[half:], "trainval": trainval, "test": test}
    for split, split_ids in lists.items():
        (devkit / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in split_ids))
    return base


def write_celeba_attributes(celeba_dir: str | Path, seed: int = 0) -> np.ndarray:
    """Write ``list_attr_celeba.txt`` for the images named in ``celeba_dir``'s partition file.

    Attribute names ``Attr_00`` ... ``Attr_39``; values drawn at random in {-1, 1}. Returns the
    int8 (N, 40) matrix written, in file order.
    """
    base = Path(celeba_dir)
    names = [line.split()[0] for line in (base / PARTITION_FILE).read_text().splitlines() if line.strip()]
    values = np.where(np.random.default_rng(seed).random((len(names), N_ATTRIBUTES)) < 0.5, -1, 1).astype(np.int8)
    header = " ".join(f"Attr_{j:02d}" for j in range(N_ATTRIBUTES))
    rows = [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, values)]
    (base / ATTR_FILE).write_text(f"{len(names)}\n{header}\n" + "\n".join(rows) + "\n")
    return values
