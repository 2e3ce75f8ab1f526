"""Integrity checks for dataset files: checksums and the error for a corrupt file.

A missing dataset raises :class:`~thesislib.data.errors.DatasetNotFoundError`; a file that is
there but cannot be read (bad checksum, truncated pickle, invalid JSON) raises
:class:`DatasetCorruptError`. Neither is ever "fixed" by regenerating or re-downloading data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


class DatasetCorruptError(RuntimeError):
    """A dataset file exists but is unreadable or does not match its published checksum."""

    def __init__(self, dataset: str, paths: Iterable[str | Path], reason: str) -> None:
        self.dataset = dataset
        self.paths = [Path(p) for p in paths]
        self.reason = reason
        listed = "\n".join(f"    {p}" for p in self.paths)
        super().__init__(f"{dataset}: corrupt or unreadable file(s) ({reason}):\n{listed}\n"
                         "Replace them with a fresh copy of the official release.")


def md5sum(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(dataset: str, expected: dict[Path, str]) -> None:
    """Raise :class:`DatasetCorruptError` listing every file whose MD5 differs from ``expected``."""
    bad = [path for path, md5 in expected.items() if md5sum(path) != md5]
    if bad:
        raise DatasetCorruptError(dataset, bad, "MD5 checksum differs from the official release")
