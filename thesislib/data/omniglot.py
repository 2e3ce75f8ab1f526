"""OmniGlot from its official image folders (Rebuffi ch. 6: 30 background alphabets labelled, each of
the 20 evaluation alphabets in turn unlabelled).

On-disk layout under ``$THESISLIB_DATA`` (the official ``images_background.zip`` and
``images_evaluation.zip`` unpacked; torchvision's ``Omniglot`` keeps them in ``omniglot-py/``, which
is accepted too)::

    omniglot/images_background/<Alphabet>/character<NN>/<id>_<drawer>.png     (964 characters, 30 alphabets)
    omniglot/images_evaluation/<Alphabet>/character<NN>/<id>_<drawer>.png     (659 characters, 20 alphabets)

Images are 105x105 binary PNGs (strokes black on white); :func:`load_omniglot` returns them as
float (N, 1, size, size) in [0, 1] with strokes = 1 (inverted, as is usual), resized with PIL's
bilinear filter when ``size`` is not 105, and per image the character label (0.. over the selected
alphabets, in sorted order) and the alphabet index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.roots import dataset_dir

SPLITS = {"background": "images_background", "evaluation": "images_evaluation"}
LAYOUT = ("omniglot/images_background/<Alphabet>/character<NN>/<id>_<drawer>.png\n"
          "omniglot/images_evaluation/<Alphabet>/character<NN>/<id>_<drawer>.png")
DOWNLOAD = ("https://github.com/brendenlake/omniglot (python/images_background.zip, images_evaluation.zip), "
            "unpacked into omniglot/")


@dataclass(frozen=True)
class Omniglot:
    """``images`` (N, 1, S, S) float in [0, 1] (strokes 1), ``labels`` (N,) character index,
    ``alphabet`` (N,) alphabet index, ``alphabets`` and ``characters`` (``Alphabet/characterNN``) names."""

    images: torch.Tensor
    labels: torch.Tensor
    alphabet: torch.Tensor
    alphabets: tuple[str, ...]
    characters: tuple[str, ...]


def omniglot_split_dir(split: str, root: str | Path | None = None) -> Path:
    """The folder of ``split`` (``background`` or ``evaluation``), official or torchvision layout."""
    if split not in SPLITS:
        raise ValueError(f"unknown OmniGlot split {split!r}; choose one of {', '.join(SPLITS)}")
    base = dataset_dir("omniglot", root)
    for candidate in (base / SPLITS[split], base / "omniglot-py" / SPLITS[split]):
        if candidate.is_dir():
            return candidate
    raise DatasetNotFoundError("OmniGlot", base, LAYOUT, missing=SPLITS[split] + "/", download=DOWNLOAD)


def load_omniglot(split: str = "background", root: str | Path | None = None, alphabets: list[str] | None = None,
                  size: int = 105) -> Omniglot:
    """Every image of ``split`` (or of the named ``alphabets`` only), see the module docstring."""
    folder = omniglot_split_dir(split, root)
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if alphabets is not None:
        unknown = [a for a in alphabets if a not in names]
        if unknown:
            raise ValueError(f"unknown OmniGlot alphabets {unknown} in {folder}; found: {', '.join(names)}")
        names = [a for a in names if a in alphabets]
    images, labels, alpha, characters = [], [], [], []
    for ai, name in enumerate(names):
        for char_dir in sorted(p for p in (folder / name).iterdir() if p.is_dir()):
            characters.append(f"{name}/{char_dir.name}")
            for png in sorted(char_dir.glob("*.png")):
                images.append(_read(png, size))
                labels.append(len(characters) - 1)
                alpha.append(ai)
    if not images:
        raise DatasetNotFoundError("OmniGlot", folder, LAYOUT, missing="any <Alphabet>/character<NN>/*.png",
                                   download=DOWNLOAD)
    return Omniglot(torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels), torch.tensor(alpha),
                    tuple(names), tuple(characters))


def _read(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert("L")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            a = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DatasetCorruptError("OmniGlot", path, f"not a readable image ({type(err).__name__}: {err})") from err
    return 1.0 - a


def write_omniglot_fixture(root: str | Path, alphabets: dict[str, int] | None = None, drawers: int = 2,
                           split: str = "background", seed: int = 0) -> Path:
    """Tiny OmniGlot folders in the real layout (105x105 1-bit PNGs, one stroke pattern per character)
    under ``<root>/omniglot/``; ``alphabets`` maps a name to its number of characters."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "omniglot" / SPLITS[split]
    for name, n_chars in (alphabets or {"Alpha": 2, "Beta": 3}).items():
        for c in range(1, n_chars + 1):
            d = folder / name / f"character{c:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for k in range(drawers):
                img = np.ones((105, 105), dtype=bool)
                row = 10 + 15 * (c % 6)
                img[row:row + 6, 10:95] = False                        # the character's stroke
                img[rng.integers(0, 100), rng.integers(0, 100)] = False
                Image.fromarray(img).save(d / f"{c:04d}_{k + 1:02d}.png")
    return folder.parent
