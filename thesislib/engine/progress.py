"""Progress reporting: a tqdm bar when someone is watching, plain log lines otherwise.

``"auto"`` resolves to plain lines when ``$CI`` is set or ``THESISLIB_PROGRESS=log``, to a bar
when ``THESISLIB_PROGRESS=bar``, stderr is a terminal or the code runs in an IPython kernel,
and to lines otherwise. ``THESISLIB_PROGRESS=none`` silences every mode. Lines go to stdout::

    epoch 2 step 300/1000 loss 0.4312 acc 0.871 lr 1.0e-02 12.3 it/s

Where progress goes, by context:

- ``thesislib run`` (papermill) defaults to ``log``: the lines are in the executed notebook of the
  run directory, the run's log.
- The book never shows progress: its Sphinx extension (:func:`thesislib.bookgen.setup`) sets
  ``THESISLIB_PROGRESS=none`` in the build process, which the executing kernels inherit, whatever
  the caller exported; ``make nbval`` sets ``none`` for its kernels too (nbval checks that cells run,
  and a bar or line in a cell output is noise there).
- Interactive sessions (JupyterLab, a terminal) get a bar, tests and CI plain lines.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ENV_PROGRESS = "THESISLIB_PROGRESS"
_NOT_METRICS = ("step", "epoch", "lr", "loss", "time", "it_s", "steps")


def _in_ipython_kernel() -> bool:
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def resolve_progress(mode: str) -> str:
    """``"auto" | "bar" | "log" | "none"`` → the concrete mode for this process."""
    env = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if env == "none":
        return "none"
    if mode != "auto":
        return mode
    if env in ("log", "bar"):
        return env
    if os.environ.get("CI"):
        return "log"
    if _in_ipython_kernel() or sys.stderr.isatty():
        return "bar"
    return "log"


def _is_lr(key: str) -> bool:
    return key == "lr" or key.startswith("lr_")


def format_record(record: dict[str, Any], total_steps: int) -> str:
    """``epoch E step S/T loss L <metric v>... lr X R it/s`` for a training record (several
    networks: ``loss_<name>`` among the metrics and one ``lr_<name>`` each)."""
    parts = [f"epoch {record['epoch']}", f"step {record['step']}/{total_steps}"]
    if "loss" in record:
        parts.append(f"loss {record['loss']:.4g}")
    parts += [f"{k} {v:.4g}" for k, v in record.items()
              if k not in _NOT_METRICS and not _is_lr(k) and isinstance(v, float)]
    parts += [f"{k} {v:.1e}" for k, v in record.items() if _is_lr(k) and isinstance(v, float)]
    if record.get("it_s") is not None:
        parts.append(f"{record['it_s']:.1f} it/s")
    return " ".join(parts)


class ProgressReporter:
    """Advance once per optimiser step (no host-device sync); report at each materialised record."""

    def __init__(self, mode: str, total_steps: int, initial_step: int = 0, enabled: bool = True) -> None:
        self.mode = resolve_progress(mode) if enabled else "none"
        self.total_steps = total_steps
        self.bar = None
        if self.mode == "bar":
            self.bar = _make_bar(total_steps, initial_step)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def report(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            shown = {k: f"{v:.4g}" for k, v in record.items()
                     if isinstance(v, float) and k not in ("step", "epoch", "time", "it_s", "steps")}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.set_description(f"epoch {record['epoch']}", refresh=True)
        elif self.mode == "log":
            print(format_record(record, self.total_steps), flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif self.mode == "log":
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _make_bar(total: int, initial: int) -> Any:
    if _in_ipython_kernel():
        try:
            import ipywidgets  # noqa: F401  (the notebook bar needs it)
            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, initial=initial, dynamic_ncols=True, unit="step")
