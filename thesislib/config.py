"""Frozen configuration dataclasses: construction from mappings, with unknown keys rejected by name.

Every training entry point of the library takes a frozen dataclass. Configs arrive as
YAML files, papermill parameters or ``-p key=value`` overrides; all of them pass through
:func:`from_mapping`, which refuses a key the dataclass does not define and lists the
valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


class ConfigError(ValueError):
    """A configuration key or value that cannot be accepted."""


def unknown_keys_message(unknown: Iterable[str], valid: Iterable[str], what: str) -> str:
    unknown = sorted(unknown)
    valid = sorted(valid)
    names = ", ".join(repr(k) for k in unknown)
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown {what}{plural} {names}; valid names are: {', '.join(valid)}"


def check_known(keys: Iterable[str], valid: Iterable[str], what: str = "parameter") -> None:
    """Raise :class:`ConfigError` naming every key not in ``valid`` and listing the valid ones."""
    valid = list(valid)
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(unknown_keys_message(unknown, valid, what))


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert YAML/CLI scalars to the annotated type where that is unambiguous."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is None:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: cannot interpret {value!r} as {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            value = [value]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], name) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{name}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, name) for v, a in zip(value, args))
        return origin(_coerce(v, args[0], name) for v in value) if args else origin(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{name}: expected a boolean, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        try:
            as_float = float(value)
        except ValueError as err:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from err
        if as_float != int(as_float):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return int(as_float)
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from err
    if annotation is str:
        if not isinstance(value, (str, int, float, Path)) or isinstance(value, bool):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return str(value)
    if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
        return from_mapping(annotation, value, what=f"{name} key")
    return value


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None = None, *, what: str = "config key",
                 **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from ``mapping`` plus keyword ``overrides``.

    Unknown keys raise :class:`ConfigError` naming them and listing the valid ones;
    values are coerced to the annotated field types (``"3"`` → 3 for an ``int`` field).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    merged = dict(mapping or {})
    merged.update(overrides)
    names = field_names(cls)
    check_known(merged, names, what)
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(v, hints.get(k, Any), f"{cls.__name__}.{k}") for k, v in merged.items()}
    return cls(**values)


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` with the same unknown-key check and coercion as :func:`from_mapping`."""
    return from_mapping(type(obj), {**to_dict(obj, recurse=False), **changes})


def to_dict(obj: Any, recurse: bool = True) -> dict[str, Any]:
    """Plain-dict view of a dataclass (tuples become lists when ``recurse``), for JSON and YAML."""
    if not recurse:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(obj)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value read as YAML: ``3``, ``0.5``, ``true``, ``[1, 2]``, ``cifar10``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise ConfigError(f"override {text!r}: {key!r} is not a valid parameter name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: cannot parse value: {err}") from err
    if isinstance(value, str) and _NUMBER.match(value):  # YAML 1.1 reads 1e-3 as a string
        value = float(value)
    return key, value


def load_params_file(path: str | Path) -> dict[str, Any]:
    """The parameter mapping a torchrun entry point receives (``--params``): JSON when the name ends in
    ``.json`` (what :mod:`thesislib.engine.launch` writes), else YAML (a ``configs/<chapter>/*.yaml``)."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of parameter names to values")
        return data
    return load_yaml(path)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping, anything else is an error."""
    path = Path(path)
    with path.open() as fh:
        data = yaml.safe_load(fh)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter names to values")
    return data
