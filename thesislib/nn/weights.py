"""Reading pretrained or trained weight files: the one place that calls ``torch.load`` for weights.

Every network of the library that starts from a file (torchvision ResNets and VGG16, a trained
CAM classifier) reads it through :func:`read_state_dict`:

* the file is a torch file read with ``weights_only=True`` onto the CPU (no code runs on load);
* an engine checkpoint (:mod:`thesislib.engine.checkpoint`) is verified against its checksum
  first, and a damaged one is refused naming the file;
* the usual wrappers are removed (:func:`unwrap_state_dict`): a checkpoint holding the tensors
  under ``"state_dict"`` or ``"model"``, the engine's ``{"models": {"model": ...}}`` of a
  one-network run, and the key prefixes added by
  DataParallel / DDP (``module.``) and ``torch.compile`` (``_orig_mod.``), in any nesting;
* a path that is not a file is a :class:`WeightsNotFoundError` naming the path and the file that
  was expected there (e.g. torchvision's ``vgg16-397923af.pth``); nothing is ever downloaded;
* a file that cannot be read (truncated, corrupt, not a torch file) or does not hold a state dict
  is a :class:`WeightsFileError` naming the file; so is a state dict whose keys or shapes do not
  match what the network needs (:func:`require_tensors`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from thesislib.engine.checkpoint import MAGIC, CheckpointError, read_verified

WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "models", "model")
KEY_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")


class WeightsNotFoundError(FileNotFoundError):
    """A weights file was asked for and is not there (the message names the path and what was expected)."""


class WeightsFileError(ValueError):
    """A weights file exists but cannot be used: unreadable, not a state dict, or not the expected network."""


def check_weights_file(path: str | Path, expected: str, hint: str | None = None) -> Path:
    """``path`` expanded, or :class:`WeightsNotFoundError` when it is not a file.

    ``expected`` says what should be there (``"a torchvision vgg16 state dict (torchvision names
    the file vgg16-397923af.pth)"``); ``hint`` replaces the default advice (start from random
    initialisation with ``weights_path=None``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        advice = hint or "Pass weights_path=None to start from random initialisation."
        raise WeightsNotFoundError(
            f"weights were asked for at {path}, but there is no such file. Expected {expected} there; "
            f"this library never downloads weights. {advice}")
    return path


def _strip_prefixes(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


def unwrap_state_dict(obj: Any, source: str | Path = "the loaded object") -> dict[str, Tensor]:
    """A plain ``{name: tensor}`` state dict from what a weights file held.

    Descends into ``obj["state_dict"]`` / ``obj["models"]`` / ``obj["model"]`` while such a dict is
    there, then strips
    the ``module.`` and ``_orig_mod.`` prefixes from every key (repeatedly, so ``module._orig_mod.``
    and ``_orig_mod.module.`` both go). :class:`WeightsFileError` naming ``source`` when the result
    is not a mapping of strings to tensors or two keys collapse to one name.
    """
    while isinstance(obj, Mapping):
        inner = next((obj[key] for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise WeightsFileError(f"{source} does not hold a state dict (found {type(obj).__name__})")
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise WeightsFileError(f"{source} does not hold a state dict: entry {key!r} is a "
                                   f"{type(value).__name__}, not a tensor")
        name = _strip_prefixes(key)
        if name in out:
            raise WeightsFileError(f"{source}: keys {key!r} and another both name {name!r} once the "
                                   f"{'/'.join(KEY_PREFIXES)} prefixes are removed")
        out[name] = value
    return out


def read_state_dict(path: str | Path, expected: str, hint: str | None = None) -> dict[str, Tensor]:
    """Read a weights file: :func:`check_weights_file`, ``torch.load(weights_only=True)`` on the
    CPU, :func:`unwrap_state_dict`. A file torch cannot read is a :class:`WeightsFileError`
    naming it (a truncated download, a corrupt copy, a pickle of something else)."""
    path = check_weights_file(path, expected, hint)
    with path.open("rb") as fh:
        engine_checkpoint = fh.read(len(MAGIC)) == MAGIC
    try:
        if engine_checkpoint:
            source: Any = io.BytesIO(read_verified(path))
        else:
            source = path
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except CheckpointError as err:
        raise WeightsFileError(str(err)) from err
    except Exception as err:  # noqa: BLE001 (every unreadable file is reported the same way)
        raise WeightsFileError(f"cannot read weights file {path} (truncated, corrupt or not a torch file; "
                               f"expected {expected}): {type(err).__name__}: {err}") from err
    return unwrap_state_dict(obj, source=path)


def _show(keys: list[str], limit: int = 5) -> str:
    return ", ".join(keys[:limit]) + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def require_tensors(state: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]], what: str,
                    source: str | Path = "the state dict", allowed_extra: tuple[str, ...] | None = None) -> None:
    """Check that ``state`` has every key of ``expected`` with that shape.

    With ``allowed_extra`` (key prefixes), keys of ``state`` outside ``expected`` that do not start
    with one of them are reported as unexpected too; ``None`` ignores extra keys. Raises
    :class:`WeightsFileError` naming ``source`` and ``what`` (e.g. ``"the resnet101 trunk"``) with
    the missing, unexpected and mis-shaped keys.
    """
    missing = sorted(k for k in expected if k not in state)
    mismatched = sorted(f"{k} {tuple(state[k].shape)} != {tuple(v)}" for k, v in expected.items()
                        if k in state and tuple(state[k].shape) != tuple(v))
    unexpected = [] if allowed_extra is None else sorted(
        k for k in state if k not in expected and not k.startswith(allowed_extra))
    problems = [f"{name} {_show(keys)}" for name, keys in
                (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)) if keys]
    if problems:
        raise WeightsFileError(f"{source} does not match {what}: " + "; ".join(problems))
