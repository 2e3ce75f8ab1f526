"""Integrity checks for dataset files: checksums and the error for a corrupt file.

A missing dataset raises :class:`~thesislib.data.errors.DatasetNotFoundError`; a file that is
there but cannot be read (bad checksum, truncated pickle, invalid JSON) raises
:class:`DatasetCorruptError`, which names that one file. Neither is ever "fixed" by regenerating
or re-downloading data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


class DatasetCorruptError(RuntimeError):
    """A dataset file exists but is unreadable or does not match its published checksum.

    ``path`` is the one bad file (a list is refused: the error must say which file to replace);
    ``reason`` says what is wrong with it. Attributes: ``dataset``, ``path``, ``reason``.
    """

    def __init__(self, dataset: str, path: str | os.PathLike[str], reason: str) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"DatasetCorruptError names one file, got {type(path).__name__} {path!r}")
        self.dataset = dataset
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{dataset}: corrupt or unreadable file ({reason}):\n    {self.path}\n"
                         "Replace it with a fresh copy from the official release.")


def md5sum(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(dataset: str, expected: Mapping[Path, str]) -> None:
    """Check files in the mapping's order; raise :class:`DatasetCorruptError` naming the first
    file whose MD5 differs from ``expected`` (the files after it are not read)."""
    for path, md5 in expected.items():
        actual = md5sum(path)
        if actual != md5:
            raise DatasetCorruptError(dataset, path, f"MD5 {actual} differs from the official release's {md5}")
