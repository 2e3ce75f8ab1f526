"""A chapter's parameters, declared once.

Each chapter declares one frozen dataclass, a subclass of :class:`RunParams`, in
``thesislib/methods/<chapter>/config.py``. Everything else derives from it:

* the notebook's papermill ``parameters`` cell is generated from it
  (:func:`parameter_cell`; ``thesislib notebooks --sync`` writes it, ``--check`` and the tests
  fail when the cell and the dataclass disagree);
* the notebook rebuilds the dataclass from its globals (:func:`thesislib.notebook.parameters`),
  rejecting unknown papermill parameters by name;
* ``thesislib run`` builds it from ``configs/<chapter>/<scale>.yaml`` plus ``-p`` overrides
  *before* papermill starts, so a wrong type or an out-of-range value is an immediate error
  and no run directory is created;
* the chapter's training configs are built from it (``engine.train_config`` and the chapter's
  own ``*_config`` functions), so every field can be set with ``-p``.

Ranges are declared with :func:`param` (``min`` / ``max`` / ``choices``) and checked by
:func:`check_ranges`, which :meth:`RunParams.__post_init__` calls; a subclass with its own
``__post_init__`` calls ``super().__post_init__()``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from thesislib.config import ConfigError

#: Parameters ``thesislib run`` sets itself (from ``--scale`` and the run directory).
RUNNER_PARAMETERS: tuple[str, ...] = ("output_dir", "scale")

#: First line of every generated parameters cell.
CELL_HEADER = "# Parameters: generated from {qualname} (thesislib notebooks --sync); edit the dataclass, not this cell."


def param(default: Any, *, help: str = "", min: float | None = None, max: float | None = None,
          choices: tuple[Any, ...] | None = None) -> Any:
    """A dataclass field with a default, a help line for the parameters cell and an optional range.

    ``min`` / ``max`` bound a number (inclusive); ``choices`` lists the values a field without a
    ``Literal`` type may take. All are checked by :func:`check_ranges`.
    """
    metadata = {"help": help, "min": min, "max": max, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def check_ranges(obj: Any) -> None:
    """Raise :class:`ConfigError` naming every field of ``obj`` outside its declared range."""
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        low, high, choices = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices")
        if low is not None and value < low:
            problems.append(f"{f.name} = {value!r} is below its minimum {low}")
        if high is not None and value > high:
            problems.append(f"{f.name} = {value!r} is above its maximum {high}")
        if choices is not None:
            values = value if isinstance(value, (tuple, list)) else (value,)
            bad = [v for v in values if v not in choices]
            if bad:
                problems.append(f"{f.name}: {', '.join(map(repr, bad))} not among {list(choices)}")
    if problems:
        raise ConfigError(f"{type(obj).__name__}: " + "; ".join(problems))


@dataclass(frozen=True)
class RunParams:
    """The run bookkeeping every chapter shares: replicate seeds, scale, output and device.

    Replicate ``i`` (``0 <= i < n_seeds``) uses seed ``seed + i`` (:attr:`seeds`); the seed is
    set once per replicate for numpy, ``random`` and torch together
    (:func:`thesislib.repro.seed_everything`).
    """

    seed: int = param(0, help="first replicate seed; replicates use seed, seed+1, ...", min=0)
    n_seeds: int = param(1, help="number of replicates", min=1)
    scale: str = param("smoke", help="name of the configs/<chapter>/<scale>.yaml in use (set by thesislib run)")
    output_dir: str = param("", help="run directory for metrics.json and provenance.json (empty: none)")
    device: str = param("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    threads: int = param(1, help="CPU threads (0: torch's default); $THESISLIB_THREADS overrides", min=0)
    progress: Literal["auto", "bar", "log", "none"] = param("none", help="training progress display")

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def seeds(self) -> list[int]:
        """The replicate seeds ``seed .. seed + n_seeds - 1``."""
        return list(range(self.seed, self.seed + self.n_seeds))


def _literal(value: Any) -> str:
    """Python source for a default value (tuples as lists: papermill and YAML speak lists)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (tuple, list):
        raw = typing.get_args(annotation)
        if origin is tuple and raw and raw[-1] is not Ellipsis:  # fixed length: (int, float, float)
            return "[" + ", ".join(_type_text(a) for a in raw) + "]"
        args = [a for a in raw if a is not Ellipsis]
        return f"list of {_type_text(args[0])}" if args else "list"
    return getattr(annotation, "__name__", str(annotation))


def parameter_cell(cls: type[RunParams]) -> str:
    """The source of the notebook's ``parameters`` cell for ``cls``: one ``name = default`` line
    per field in declaration order, each with its type and help as a comment."""
    if not (isinstance(cls, type) and issubclass(cls, RunParams)):
        raise TypeError(f"{cls!r} is not a RunParams subclass")
    lines = [CELL_HEADER.format(qualname=f"{cls.__module__}.{cls.__qualname__}")]
    for name, type_text, default, help_text in describe(cls):
        comment = f"{type_text}; {help_text}" if help_text else type_text
        if "=" in comment:
            raise ValueError(f"{cls.__name__}.{name}: its help or type {comment!r} contains '=', which "
                             "papermill cannot parse in a parameters cell; reword it")
        lines.append(f"{name} = {_literal(default)}  # {comment}")
    return "\n".join(lines)


def parameter_names(cls: type[RunParams], settable_only: bool = False) -> list[str]:
    """Field names of ``cls`` (without :data:`RUNNER_PARAMETERS` when ``settable_only``)."""
    names = [f.name for f in dataclasses.fields(cls)]
    return [n for n in names if n not in RUNNER_PARAMETERS] if settable_only else names


def describe(cls: type[RunParams]) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for every field, for ``thesislib params``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has no default; every parameter needs one")
        rng = []
        if f.metadata.get("min") is not None:  # words, not ">=": papermill cannot parse '=' in a comment
            rng.append(f"min {f.metadata['min']}")
        if f.metadata.get("max") is not None:
            rng.append(f"max {f.metadata['max']}")
        help_text = f.metadata.get("help", "") + (f" ({', '.join(rng)})" if rng else "")
        rows.append((f.name, _type_text(hints[f.name]), f.default, help_text.strip()))
    return rows
