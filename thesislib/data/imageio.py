"""Decoding image files of datasets: a file that is there but does not decode is reported by its path.

A missing file raises ``FileNotFoundError`` (the loader turns it into a
:class:`~thesislib.data.errors.DatasetNotFoundError` with its layout); a file that PIL cannot
decode raises :class:`~thesislib.data.integrity.DatasetCorruptError` naming that one file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from thesislib.data.integrity import DatasetCorruptError


def open_rgb(path: str | os.PathLike[str], dataset: str) -> Image.Image:
    """The image at ``path`` as a decoded RGB PIL image (fully loaded, file closed)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DatasetCorruptError(dataset, Path(path), f"unreadable image: {err}") from err


def read_rgb(path: str | os.PathLike[str], dataset: str) -> np.ndarray:
    """The image at ``path`` as uint8 (H, W, 3) RGB."""
    return np.array(open_rgb(path, dataset), dtype=np.uint8)
