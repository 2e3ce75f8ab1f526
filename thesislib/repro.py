"""Reproducibility: seeding every generator, deterministic kernels, provenance records.

A provenance record answers "where did this number come from": the commit (and whether
the tree had uncommitted changes), package versions, the device, the config and the time.
It is written next to every metrics file (``provenance.json``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import random
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thesislib import __version__
from thesislib.paths import project_root

_VERSIONED_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "scikit-image",
                       "matplotlib", "papermill", "pydensecrf2")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_generator(seed: int) -> torch.Generator:
    """A private CPU generator, for data order and augmentation that must not share global state."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def set_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (``warn_only``: ops without one warn instead of failing).

    On CUDA this also disables cuDNN autotuning and sets ``CUBLAS_WORKSPACE_CONFIG`` as
    cuBLAS requires for reproducible matrix products.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def git_commit(root: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` for the checkout at ``root``; ``dirty``: a
    tracked file outside ``results/`` differs from the commit (records written there by earlier runs
    are outputs, not code)."""
    root = root or project_root()
    if root is None:
        return {"commit": None, "dirty": None}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 ":(exclude)results"], cwd=root, capture_output=True, text=True, timeout=10,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(status.strip())}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "thesislib": __version__}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


ENV_COMMAND = "THESISLIB_COMMAND"


def typed_command(argv: Sequence[str] | None = None) -> str:
    """The command line as the user typed it: ``$THESISLIB_COMMAND`` when the CLI set it (a notebook
    run by ``thesislib run`` sees the kernel's argv otherwise), else ``argv`` (default ``sys.argv``)
    with the program shown as ``thesislib`` or ``python -m <module>`` rather than a full path."""
    if argv is None:
        env = os.environ.get(ENV_COMMAND, "").strip()
        if env:
            return env
        argv = sys.argv
    if not argv:
        return ""
    program = Path(argv[0]).name
    if program == "__main__.py":  # python -m <package>
        program = f"python -m {Path(argv[0]).parent.name}"
    elif program.endswith(".py"):
        program = f"python {argv[0]}"
    return " ".join([program, *(shlex.quote(a) for a in argv[1:])])


def provenance(config: Mapping[str, Any] | None = None, device: torch.device | None = None,
               **extra: Any) -> dict[str, Any]:
    """A JSON-serialisable record of commit, versions, device, config and time."""
    from thesislib.device import describe_device

    record: dict[str, Any] = {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **git_commit(),
        "versions": package_versions(),
        "platform": platform.platform(),
        "command": typed_command(),
        "device": str(device) if device is not None else None,
        "hardware": describe_device(device) if device is not None else None,
        "config": dict(config) if config is not None else None,
    }
    record.update(extra)
    return record


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
