"""Where data, caches, runs and committed results live.

Every root comes from an environment variable or a default under the user's home
(or, for runs and results, the source checkout this package was installed from).
Nothing here is relative to the current working directory, so a notebook executed
from ``notebooks/part/`` and a CLI call from the repository root agree.

=====================  ===========================  ======================================
variable               meaning                      default
=====================  ===========================  ======================================
``THESISLIB_DATA``     datasets in their own layout ``~/thesislib-data``
``THESISLIB_CACHE``    derived, re-creatable files  ``$XDG_CACHE_HOME/thesislib`` or
                                                    ``~/.cache/thesislib``
``THESISLIB_RUNS``     outputs of ``thesislib run`` ``<checkout>/runs`` or
                                                    ``~/thesislib-runs``
``THESISLIB_RESULTS``  committed metrics of runs    ``<checkout>/results``
=====================  ===========================  ======================================
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA = "THESISLIB_DATA"
ENV_CACHE = "THESISLIB_CACHE"
ENV_RUNS = "THESISLIB_RUNS"
ENV_RESULTS = "THESISLIB_RESULTS"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def pin_environment() -> dict[str, str]:
    """Rewrite relative ``$THESISLIB_DATA/CACHE/RUNS/RESULTS`` as absolute paths, resolved against
    the current directory, so that a subprocess started elsewhere (papermill runs a chapter
    notebook in its own folder) sees the same roots. Returns the rewritten variables."""
    pinned = {}
    for name in (ENV_DATA, ENV_CACHE, ENV_RUNS, ENV_RESULTS):
        path = _from_env(name)
        if path is not None and os.environ[name] != str(path):
            os.environ[name] = pinned[name] = str(path)
    return pinned


def project_root() -> Path | None:
    """The source checkout this package lives in, or ``None`` for a plain install."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "thesislib").is_dir():
        return candidate
    return None


def data_root() -> Path:
    """Root under which every dataset has its own directory (``$THESISLIB_DATA``)."""
    return _from_env(ENV_DATA) or (Path.home() / "thesislib-data")


def cache_root() -> Path:
    """Root for re-creatable files: extracted features, precomputed cues, checkpoints of demos."""
    env = _from_env(ENV_CACHE)
    if env is not None:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "thesislib").resolve()


def runs_root() -> Path:
    """Root of ``runs/<chapter>/<stamp>/`` directories written by ``thesislib run``."""
    env = _from_env(ENV_RUNS)
    if env is not None:
        return env
    root = project_root()
    return root / "runs" if root is not None else Path.home() / "thesislib-runs"


def results_root() -> Path:
    """Root of the committed ``results/`` tree the replication tables read."""
    env = _from_env(ENV_RESULTS)
    if env is not None:
        return env
    root = project_root()
    return root / "results" if root is not None else Path.home() / "thesislib-results"


def describe_roots() -> dict[str, str]:
    """The resolved roots, for provenance records and the book's environment page."""
    return {
        ENV_DATA: str(data_root()),
        ENV_CACHE: str(cache_root()),
        ENV_RUNS: str(runs_root()),
        ENV_RESULTS: str(results_root()),
    }
