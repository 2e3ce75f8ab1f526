"""Running a chapter notebook: parameters validated against the chapter's dataclass, then papermill.

``thesislib run`` and ``thesislib seeds`` call :func:`run_chapter`. Parameters come from
``configs/<chapter>/<scale>.yaml`` plus ``-p key=value`` overrides and are checked in full
(names, types, ranges) by building the chapter's :class:`~thesislib.params.RunParams` subclass
*before* anything is written: a bad value is an error and leaves no run directory behind.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from thesislib.chapters import Chapter, get_chapter
from thesislib.config import ConfigError, check_known, from_mapping, load_yaml, parse_override
from thesislib.params import RUNNER_PARAMETERS, RunParams, parameter_names
from thesislib.paths import pin_environment, runs_root


def notebook_parameters(chapter: Chapter) -> dict[str, dict[str, Any]]:
    """The names, defaults and types papermill reads from the notebook's ``parameters`` cell."""
    import papermill

    notebook = chapter.notebook()
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook} does not exist (chapter {chapter.id!r} is {chapter.status})")
    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ConfigError(f"{notebook} has no cell tagged 'parameters'")
    return params


def resolve_parameters(chapter: Chapter, scale: str, overrides: list[str]) -> dict[str, Any]:
    """Merge ``configs/<chapter>/<scale>.yaml`` and overrides, and validate them.

    Unknown names are rejected by name (listing the valid ones), and the values must build the
    chapter's parameter dataclass (types coerced, ranges checked); the returned mapping holds the
    values as given (what papermill injects).
    """
    scales = chapter.scales()
    if scale not in scales:
        raise ConfigError(f"chapter {chapter.id!r} has no scale {scale!r}; available: {', '.join(scales) or 'none'} "
                          f"(files in {chapter.config_dir()})")
    values = load_yaml(chapter.config_dir() / f"{scale}.yaml")
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    validate_parameters(chapter, values, scale)
    return values


def validate_parameters(chapter: Chapter, values: dict[str, Any], scale: str = "smoke") -> RunParams:
    """The chapter's parameter dataclass built from ``values`` (a :class:`ConfigError` naming the
    offending parameter otherwise)."""
    cls = chapter.params_class()
    check_known(values, parameter_names(cls, settable_only=True), "parameter")
    try:
        return from_mapping(cls, {**values, "scale": scale}, what="parameter")
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:  # a chapter's own __post_init__ checks
        raise ConfigError(f"{chapter.id}: {err}") from err


def new_run_dir(chapter: Chapter, scale: str, output: str | None) -> Path:
    """A fresh run directory: ``output`` if given (it must be empty), else ``runs/<chapter>/<stamp>-<scale>``."""
    if output:
        run_dir = Path(output).expanduser().resolve()
    else:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_dir = runs_root() / chapter.id / f"{stamp}-{scale}"
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = runs_root() / chapter.id / f"{stamp}-{scale}-{suffix}"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} exists and is not empty; choose another --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run_chapter(chapter_id: str, scale: str, overrides: list[str], output: str | None = None,
                kernel: str | None = None) -> Path:
    """Execute a chapter notebook with papermill; return the run directory."""
    import papermill  # slow to import: only when a notebook really runs

    chapter = get_chapter(chapter_id)
    params = resolve_parameters(chapter, scale, overrides)
    notebook = chapter.notebook()
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook} does not exist (chapter {chapter.id!r} is {chapter.status})")
    run_dir = new_run_dir(chapter, scale, output)
    params.update(output_dir=str(run_dir), scale=scale)
    executed = run_dir / notebook.name
    os.environ.setdefault("THESISLIB_PROGRESS", "log")
    pin_environment()  # relative roots mean the caller's directory, not the notebook's
    print(f"running {notebook} at scale {scale!r} -> {run_dir}", flush=True)
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=params, cwd=str(notebook.parent),
                                   kernel_name=kernel, progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as err:
        raise RuntimeError(f"the notebook failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                           f"executed notebook (with the traceback): {executed}") from None
    missing = [name for name in ("metrics.json", "provenance.json") if not (run_dir / name).is_file()]
    if missing:
        raise RuntimeError(f"the notebook finished but did not write {', '.join(missing)} to {run_dir}")
    return run_dir


__all__ = ["RUNNER_PARAMETERS", "new_run_dir", "notebook_parameters", "resolve_parameters", "run_chapter",
           "validate_parameters"]
