"""The record of a training run: windowed training metrics and evaluation results."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch


def plain_value(key: str, value: Any) -> Any:
    """A JSON- and checkpoint-safe value: scalars become floats, tensors and arrays nested lists."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain_value(key, v) for v in value]
    raise TypeError(f"metric {key!r}: cannot record a value of type {type(value).__name__}")


class History:
    """Training records (one per log window) and evaluation records (one per evaluated epoch).

    A training record holds ``step`` (1-based optimiser step that closed the window), ``epoch``
    (1-based), ``lr`` (of the first parameter group, at that step), ``loss`` and every metric of
    the step function averaged over the window's steps, ``steps`` (window length), ``time``
    (seconds of training so far, across resumes) and ``it_s``. Evaluation records hold
    ``step``, ``epoch``, ``time`` and what ``eval_fn`` returned.
    """

    def __init__(self) -> None:
        self.train: list[dict[str, Any]] = []
        self.eval: list[dict[str, Any]] = []

    def _records(self, kind: str) -> list[dict[str, Any]]:
        if kind not in ("train", "eval"):
            raise ValueError(f"kind must be 'train' or 'eval', got {kind!r}")
        return self.train if kind == "train" else self.eval

    def get(self, key: str, kind: str = "train") -> np.ndarray:
        """Values of ``key`` over the records of ``kind`` (NaN where a record lacks it)."""
        records = self._records(kind)
        if records and not any(key in r for r in records):
            names = sorted({k for r in records for k in r})
            raise KeyError(f"no {kind} metric {key!r}; recorded names: {', '.join(names)}")
        return np.asarray([r.get(key, math.nan) for r in records], dtype=float)

    def steps(self, kind: str = "train") -> np.ndarray:
        """The ``step`` of every record of ``kind`` (``"train"`` or ``"eval"``)."""
        return np.asarray([r["step"] for r in self._records(kind)], dtype=np.int64)

    def last(self, kind: str = "train") -> dict[str, Any]:
        """A copy of the newest record of ``kind`` (empty dict when there is none)."""
        records = self._records(kind)
        return dict(records[-1]) if records else {}

    def state_dict(self) -> dict[str, Any]:
        """Both record lists, for checkpoints."""
        return {"train": [dict(r) for r in self.train], "eval": [dict(r) for r in self.eval]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.train = [dict(r) for r in state["train"]]
        self.eval = [dict(r) for r in state["eval"]]

    def __repr__(self) -> str:
        return f"History({len(self.train)} train records, {len(self.eval)} eval records)"
