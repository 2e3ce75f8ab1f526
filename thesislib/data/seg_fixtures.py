"""Tiny PASCAL VOC 2012 and SBD datasets in their real on-disk formats, for tests and smoke runs.

:func:`write_voc_fixture` writes ``<root>/voc/VOCdevkit/VOC2012/`` with RGB JPEGs, palette PNG
masks (mode ``P`` with the VOC colour map; values 0..20 and a 255 "void" band drawn along every
object outline, as in the official annotations) and ``ImageSets/Segmentation/{train,val,
trainval}.txt``. :func:`write_sbd_fixture` writes ``<root>/sbd/benchmark_RELEASE/dataset/`` with
JPEGs, ``cls/<id>.mat`` files and ``{train,val}.txt``. Each ``.mat`` holds the MATLAB struct
``GTcls`` with the real files' fields in their order::

    GTcls.Boundaries         20x1 cell of sparse logical HxW maps (the outline of each class)
    GTcls.Segmentation       uint8 HxW, 0 = background, 1..20 = classes (no void label)
    GTcls.CategoriesPresent  column vector of the classes present (1..20)

so ``scipy.io.loadmat(path)["GTcls"][0, 0]`` gives ``(Boundaries, Segmentation,
CategoriesPresent)`` and ``mat["GTcls"][0]["Segmentation"][0]`` the mask, as for the release.

Content is learnable: every image shows 1-3 objects on a smooth background; the class sets the
object's colour (a fixed, well separated colour per class) and its shape (one of four). The
picture of an image id is a pure function of the id (:func:`render_fixture_image`), so an id
listed by both VOC and SBD shows the same picture in both; its SBD mask is the complete mask and
its VOC mask the same with the void band, as in the real data where the two annotations of an
image agree up to the boundary band.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from thesislib.data.voc import VOC_IGNORE, VOC_PALETTE

_CLASS_COLORS = np.random.default_rng(2012).uniform(30, 225, size=(21, 3))
_CLASS_COLORS[0] = 0.0
_SHAPES = ("ellipse", "rectangle", "triangle", "diamond")


def fixture_class_shape(cls: int) -> str:
    """The shape drawn for VOC class ``cls`` (1..20) in the fixtures."""
    return _SHAPES[(cls - 1) % len(_SHAPES)]


def _shape(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if kind == "ellipse":
        return u * u + v * v <= 1.0
    if kind == "rectangle":
        return (np.abs(u) <= 0.9) & (np.abs(v) <= 0.9)
    if kind == "triangle":
        return (v <= 0.9) & (np.abs(u) <= (v + 1.0) / 1.9)
    return np.abs(u) + np.abs(v) <= 1.0


def render_fixture_image(image_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The picture of ``image_id``: uint8 RGB (H, W, 3) and its complete mask uint8 (H, W) (0..20).

    Deterministic in the id (seeded by its CRC-32). Size 48..96 px a side; 1-3 objects of random
    classes, each 30-60% of the shorter side, later objects occluding earlier ones (a class whose
    object ends up fully hidden is absent from the mask, hence from the labels).
    """
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    height, width = (int(v) for v in rng.integers(48, 97, size=2))
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    top, bottom = rng.uniform(60, 200, size=(2, 3))
    pixels = top + (bottom - top) * (yy / height)[..., None]
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, 21))
        side = min(height, width)
        ry, rx = rng.uniform(0.15, 0.30, size=2) * side
        cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
        inside = _shape(fixture_class_shape(cls), (xx - cx) / rx, (yy - cy) / ry)
        if inside.sum() < 16:
            continue
        shade = 0.85 + 0.15 * (yy - cy) / ry
        pixels = np.where(inside[..., None], _CLASS_COLORS[cls] * shade[..., None], pixels)
        mask[inside] = cls
    if not mask.any():  # always at least one object
        cls = int(rng.integers(1, 21))
        mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = cls
        pixels[mask == cls] = _CLASS_COLORS[cls]
    pixels = pixels + rng.normal(0.0, 4.0, size=pixels.shape)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8), mask


def void_band(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Bool (H, W): pixels within ``radius`` of a change of label (VOC's void outline band)."""
    from scipy import ndimage

    size = 2 * radius + 1
    return ndimage.maximum_filter(mask, size=size) != ndimage.minimum_filter(mask, size=size)


def _ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        image_id = f"{int(rng.integers(2007, 2012))}_{int(rng.integers(0, 10000)):06d}"
        if image_id not in taken:
            taken.add(image_id)
            out.append(image_id)
    return out


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, quality=95)


def _write_list(path: Path, ids: list[str]) -> None:
    path.write_text("".join(f"{i}\n" for i in sorted(ids)))


def write_voc_fixture(data_root: str | Path, n_train: int = 8, n_val: int = 6, seed: int = 0) -> Path:
    """Write a tiny VOC 2012 segmentation set under ``<data_root>/voc`` and return that directory.

    ``n_train`` + ``n_val`` distinct ids of the real form (``2009_001234``), each with a JPEG and a
    palette PNG whose object outlines carry the 255 void band; lists are sorted, as the real ones.
    Point ``THESISLIB_DATA`` at ``data_root`` (or pass ``voc_root=`` the returned path).
    """
    from PIL import Image

    if n_train < 1 or n_val < 1:
        raise ValueError("n_train and n_val must be positive")
    rng = np.random.default_rng(seed)
    base = Path(data_root) / "voc"
    voc = base / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    train = _ids(rng, n_train, set())
    val = _ids(rng, n_val, set(train))
    palette = VOC_PALETTE.reshape(-1).tolist()
    for image_id in train + val:
        image, mask = render_fixture_image(image_id)
        _write_jpeg(voc / "JPEGImages" / f"{image_id}.jpg", image)
        png = np.where(void_band(mask), VOC_IGNORE, mask)
        out = Image.fromarray(png.astype(np.uint8), mode="P")
        out.putpalette(palette)
        out.save(voc / "SegmentationClass" / f"{image_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    _write_list(lists / "train.txt", train)
    _write_list(lists / "val.txt", val)
    _write_list(lists / "trainval.txt", train + val)
    return base


def _sbd_struct(mask: np.ndarray) -> dict[str, np.ndarray]:
    from scipy import ndimage, sparse

    boundaries = np.empty((20, 1), dtype=object)
    for cls in range(1, 21):
        region = mask == cls
        edge = region & ~ndimage.binary_erosion(region, border_value=1)
        boundaries[cls - 1, 0] = sparse.csc_matrix(edge)
    present = np.unique(mask[mask > 0]).astype(np.uint8).reshape(-1, 1)
    return {"Boundaries": boundaries, "Segmentation": mask.astype(np.uint8), "CategoriesPresent": present}


def write_sbd_fixture(data_root: str | Path, n_train: int = 10, n_val: int = 6, seed: int = 0,
                      overlap_with_voc: float = 0.5) -> Path:
    """Write a tiny SBD under ``<data_root>/sbd`` and return that directory.

    ``train.txt`` lists ``n_train`` ids and ``val.txt`` ``n_val`` (disjoint), each with
    ``img/<id>.jpg`` and ``cls/<id>.mat`` (struct ``GTcls``, see the module docstring).
    ``overlap_with_voc`` is the fraction of the VOC fixture's train ids *and* of its val ids
    (read from ``<data_root>/voc``, written first by :func:`write_voc_fixture`) that SBD lists
    too, as the real SBD does: VOC val images in SBD are what *trainaug* must drop. The shared
    ids go to SBD train and val alternately; new ids fill the rest.
    """
    import scipy.io

    if n_train < 1 or n_val < 1:
        raise ValueError("n_train and n_val must be positive")
    if not 0.0 <= overlap_with_voc <= 1.0:
        raise ValueError("overlap_with_voc must lie in [0, 1]")
    rng = np.random.default_rng(seed + 7919)
    shared: list[str] = []
    taken: set[str] = set()
    if overlap_with_voc > 0:
        lists = Path(data_root) / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
        if not (lists / "train.txt").is_file():
            raise ValueError(f"overlap_with_voc > 0 needs the VOC fixture under {data_root}/voc; "
                             "call write_voc_fixture(data_root, ...) first or pass overlap_with_voc=0")
        for name in ("train", "val"):
            voc_ids = (lists / f"{name}.txt").read_text().split()
            taken.update(voc_ids)
            k = int(round(overlap_with_voc * len(voc_ids)))
            shared += sorted(rng.choice(voc_ids, size=k, replace=False).tolist())
    if len(shared) > n_train + n_val:
        raise ValueError(f"{len(shared)} ids shared with VOC do not fit in n_train + n_val = "
                         f"{n_train + n_val}")
    train, val = shared[0::2], shared[1::2]
    while len(val) > n_val:
        train.append(val.pop())
    while len(train) > n_train:
        val.append(train.pop())
    train += _ids(rng, n_train - len(train), taken)
    val += _ids(rng, n_val - len(val), taken)
    base = Path(data_root) / "sbd"
    folder = base / "benchmark_RELEASE" / "dataset"
    for sub in ("img", "cls"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for image_id in train + val:
        image, mask = render_fixture_image(image_id)
        _write_jpeg(folder / "img" / f"{image_id}.jpg", image)
        scipy.io.savemat(str(folder / "cls" / f"{image_id}.mat"), {"GTcls": _sbd_struct(mask)},
                         do_compression=True)
    _write_list(folder / "train.txt", train)
    _write_list(folder / "val.txt", val)
    return base
