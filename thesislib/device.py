"""Device selection and CPU thread settings. The device is always passed in, never a global."""

from __future__ import annotations

import os
import platform

import torch


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA on a machine without
    it is an error, not a silent fallback.
    """
    if isinstance(spec, torch.device):
        device = spec
    else:
        text = str(spec).strip().lower()
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(text)
        except RuntimeError as err:
            raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} was requested but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device type {device.type!r}; use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: torch.device) -> str:
    """Human-readable hardware description for provenance records and result tables."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def set_threads(n: int | None) -> None:
    """Set torch's intra-op thread count (``None`` leaves it alone).

    Smoke runs on the 2-core CI machines use 1 or 2 threads: oversubscribed OpenMP pools
    were measured 10-100x slower than a single thread there.
    """
    if n is not None and n > 0:
        torch.set_num_threads(int(n))
