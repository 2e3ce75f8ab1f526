"""Checkpoint files: atomic writes, checksummed strict reads, and the RNG states that make resume exact.

Files are ``<dir>/step_<step>.pt`` (the step zero-padded to 10 digits). A write goes to a
temporary file that is fsynced and then renamed over the target, so a reader never sees
half a checkpoint. The file is a one-line header, ``THESISLIB-CHECKPOINT sha256=<hex>``,
followed by the ``torch.save`` payload; :func:`load_checkpoint` recomputes the SHA-256 of the
payload and refuses a file whose bytes changed (a flipped bit, a truncated copy) before
unpickling anything. A file that cannot be read, fails its checksum, or lacks a required entry
raises :class:`CheckpointError` naming it; nothing here ever falls back to a fresh start.

State layout (format 2): ``models`` / ``optimizers`` / ``schedulers`` / ``ema`` are dicts keyed
by the names the :class:`~thesislib.engine.Trainer` gives its networks and optimisers (a
single-model run uses ``"model"``), next to ``step``, ``epoch``, ``step_in_epoch``, ``rng``
(one entry per rank), ``history``, ``config`` (the optimisation fingerprint), ``clips`` (each
optimiser's gradient-clipping norm) and ``elapsed``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 2
REQUIRED_KEYS = ("format", "models", "optimizers", "schedulers", "ema", "clips", "step", "epoch",
                 "step_in_epoch", "rng", "history", "config", "elapsed")
MAGIC = b"THESISLIB-CHECKPOINT sha256="
_HEADER_LENGTH = len(MAGIC) + 64 + 1  # magic, 64 hex digits, newline
_NAME = re.compile(r"^step_(\d{10})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, incomplete, or from an incompatible run."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}")


class ConfigMismatchError(CheckpointError):
    """The checkpoint was written by a run whose optimisation settings differ from the current ones."""

    def __init__(self, path: str | Path, fields: list[str]) -> None:
        self.fields = fields
        super().__init__(path, "written with a different training config; differing fields: "
                         + "; ".join(fields))


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """``<directory>/step_<step, 10 digits>.pt``."""
    return Path(directory) / f"step_{step:010d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest step first (temporary files are not listed)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint in ``directory``, or ``None`` when there is none."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file, fsync, ``os.replace``): the checksum header, then
    the ``torch.save`` payload."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(MAGIC + hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n")
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_verified(path: str | Path) -> bytes:
    """The payload of a checkpoint file after checking its SHA-256 against the header."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(path, f"cannot be read ({err})") from err
    header = data[:_HEADER_LENGTH]
    if not header.startswith(MAGIC) or not header.endswith(b"\n"):
        raise CheckpointError(path, "has no thesislib checksum header: not a checkpoint of this engine, "
                                    "or its first bytes are damaged")
    expected = header[len(MAGIC):-1].decode("ascii", errors="replace")
    payload = data[_HEADER_LENGTH:]
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise CheckpointError(path, f"fails its checksum (stored sha256 {expected[:16]}..., contents "
                                    f"{actual[:16]}...): the file is damaged or truncated; it is not used")
    return payload


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU (``weights_only``) after verifying its checksum; any failure is a
    :class:`CheckpointError` naming the file."""
    path = Path(path)
    payload = read_verified(path)
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise CheckpointError(path, f"cannot be read ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, not a checkpoint dictionary")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(path, f"is missing the entries {missing}")
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(path, f"has format {state['format']!r}; this engine reads {FORMAT_VERSION}")
    return state


def prune_checkpoints(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for path in list_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Python, NumPy, torch CPU and (on a CUDA device) that device's generator states."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore the generators saved by :func:`rng_state` (the CUDA one only on a CUDA device)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
