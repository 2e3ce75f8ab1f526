"""``thesislib``: list chapters, run a chapter notebook with papermill, record a run's results.

::

    thesislib list
    thesislib params gsoftmax
    thesislib run gsoftmax --scale smoke -p seed=3
    thesislib run gsoftmax --scale full -p nproc=4         # DDP through torchrun inside
    thesislib record runs/gsoftmax/20261122-101500-full    # copy metrics into results/

``run`` reads ``configs/<chapter>/<scale>.yaml``, applies ``-p key=value`` overrides,
checks every name against the notebook's ``parameters`` cell (an unknown name is an
error listing the valid ones), executes the notebook and leaves
``runs/<chapter>/<stamp>-<scale>/`` with the executed notebook, ``metrics.json`` and
``provenance.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

from thesislib.chapters import CHAPTERS, PARTS, Chapter, get_chapter
from thesislib.config import ConfigError, check_known, load_yaml, parse_override
from thesislib.paths import pin_environment, runs_root

#: Parameters every chapter notebook defines and ``thesislib run`` sets itself.
RUNNER_PARAMETERS = ("output_dir", "scale")


def notebook_parameters(chapter: Chapter) -> dict[str, dict[str, Any]]:
    """The names, defaults and types of the notebook's ``parameters`` cell (via papermill)."""
    import papermill

    notebook = chapter.notebook()
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook} does not exist (chapter {chapter.id!r} is {chapter.status})")
    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ConfigError(f"{notebook} has no cell tagged 'parameters'")
    return params


def resolve_parameters(chapter: Chapter, scale: str, overrides: list[str]) -> dict[str, Any]:
    """Merge ``configs/<chapter>/<scale>.yaml`` and overrides; reject names the notebook lacks."""
    scales = chapter.scales()
    if scale not in scales:
        raise ConfigError(f"chapter {chapter.id!r} has no scale {scale!r}; available: {', '.join(scales) or 'none'} "
                          f"(files in {chapter.config_dir()})")
    values = load_yaml(chapter.config_dir() / f"{scale}.yaml")
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    valid = [name for name in notebook_parameters(chapter) if name not in RUNNER_PARAMETERS]
    check_known(values, valid, "parameter")
    return values


def new_run_dir(chapter: Chapter, scale: str, output: str | None) -> Path:
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
    import papermill

    chapter = get_chapter(chapter_id)
    params = resolve_parameters(chapter, scale, overrides)
    run_dir = new_run_dir(chapter, scale, output)
    params.update(output_dir=str(run_dir), scale=scale)
    notebook = chapter.notebook()
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


def _cmd_list(_: argparse.Namespace) -> int:
    for part in PARTS:
        print(f"{part.id}: {part.author}, {part.title} ({part.venue})")
        for chapter in (c for c in CHAPTERS if c.part == part.id):
            scales = ", ".join(chapter.scales()) if chapter.status == "built" else ""
            print(f"  {chapter.id:<26} ch. {chapter.number}  {chapter.status:<8} {scales:<28} {chapter.title}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    chapter = get_chapter(args.chapter)
    for name, info in notebook_parameters(chapter).items():
        help_text = f"  # {info['help']}" if info.get("help") else ""
        print(f"{name} = {info['default']}{help_text}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    run_dir = run_chapter(args.chapter, args.scale, args.param or [], args.output, args.kernel)
    print(f"done: {run_dir}")
    for name in sorted(p.name for p in run_dir.iterdir()):
        print(f"  {name}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from thesislib.replication import record_run

    print(f"recorded {record_run(args.run_dir)}")
    return 0


def _cmd_book_pages(args: argparse.Namespace) -> int:
    from thesislib.bookgen import write_generated

    for path in write_generated(Path(args.book_dir)):
        print(f"wrote {path}")
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from thesislib.pairs import check_pairs, sync_pairs
    from thesislib.paths import project_root

    root = project_root()
    if root is None:
        raise RuntimeError("the notebooks live in the source checkout; run this from a clone")
    if args.sync:
        for path in sync_pairs(root):
            print(f"synced {path.relative_to(root)}")
    problems = check_pairs(root)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    if problems:
        return 1
    print("notebook pairs: all in sync, no outputs committed")
    return 0


def _cmd_book_config(args: argparse.Namespace) -> int:
    from thesislib.bookgen import write_book_config

    print(f"wrote {write_book_config(Path(args.source), Path(args.output), execute=not args.no_execute)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thesislib", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list parts and chapters").set_defaults(func=_cmd_list)
    p = sub.add_parser("params", help="show a chapter notebook's parameters and defaults")
    p.add_argument("chapter")
    p.set_defaults(func=_cmd_params)
    p = sub.add_parser("run", help="run a chapter notebook with papermill")
    p.add_argument("chapter")
    p.add_argument("--scale", default="smoke", help="a config name in configs/<chapter>/ (smoke, full, ...)")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="override a notebook parameter")
    p.add_argument("--output", help="run directory (default: runs/<chapter>/<stamp>-<scale>)")
    p.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's, python3)")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("record", help="copy a finished run's metrics and provenance into results/")
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_record)
    p = sub.add_parser("book-pages", help="write the generated book pages (dashboard, environment)")
    p.add_argument("--book-dir", default="book")
    p.set_defaults(func=_cmd_book_pages)
    p = sub.add_parser("notebooks", help="check (default) or sync the .py/.ipynb notebook pairs")
    p.add_argument("--check", action="store_true", help="check only (the default)")
    p.add_argument("--sync", action="store_true", help="sync every pair and strip outputs, then check")
    p.set_defaults(func=_cmd_notebooks)
    p = sub.add_parser("book-config", help="write a variant of book/_config.yml (e.g. without execution)")
    p.add_argument("--source", default="book/_config.yml")
    p.add_argument("--output", required=True)
    p.add_argument("--no-execute", action="store_true")
    p.set_defaults(func=_cmd_book_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, KeyError, FileNotFoundError, FileExistsError, RuntimeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"thesislib: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
