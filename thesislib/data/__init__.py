"""Datasets: bundled real data, procedural generators and loaders for datasets on disk."""

from thesislib.data.errors import DatasetNotFoundError

__all__ = ["DatasetNotFoundError"]
