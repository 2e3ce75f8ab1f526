"""``thesislib``: list chapters, run a chapter notebook with papermill, record a run's results.

::

    thesislib list
    thesislib params gsoftmax
    thesislib run gsoftmax --scale smoke -p seed=3
    thesislib run gsoftmax --scale full -p nproc=4         # DDP through torchrun inside
    thesislib record runs/gsoftmax/20261122-101500-full    # copy metrics into results/
    thesislib seeds sec --base 101 202                     # verdicts at other base seeds

``run`` reads ``configs/<chapter>/<scale>.yaml``, applies ``-p key=value`` overrides,
validates them against the chapter's parameter dataclass (an unknown name, a wrong type or a
value out of range is an error before anything runs), executes the notebook and leaves
``runs/<chapter>/<stamp>-<scale>/`` with the executed notebook, ``metrics.json`` and
``provenance.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from thesislib.chapters import CHAPTERS, PARTS, get_chapter
from thesislib.config import ConfigError
from thesislib.params import describe
from thesislib.repro import ENV_COMMAND, typed_command
from thesislib.runner import run_chapter


def _cmd_list(_: argparse.Namespace) -> int:
    for part in PARTS:
        print(f"{part.id}: {part.author}, {part.title} ({part.venue})")
        for chapter in (c for c in CHAPTERS if c.part == part.id):
            scales = ", ".join(chapter.scales()) if chapter.status == "built" else ""
            print(f"  {chapter.id:<26} ch. {chapter.number}  {chapter.status:<8} {scales:<28} {chapter.title}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    chapter = get_chapter(args.chapter)
    cls = chapter.params_class()
    print(f"# {chapter.id}: {cls.__module__}.{cls.__qualname__} (set any with -p name=value)")
    for name, type_text, default, help_text in describe(cls):
        print(f"{name} = {default!r}  # {type_text}{'; ' + help_text if help_text else ''}")
    return 0


def _cmd_seeds(args: argparse.Namespace) -> int:
    from thesislib.replication.seeds import format_seed_table, run_seeds

    record, path = run_seeds(args.chapter, args.base, scale=args.scale, overrides=args.param or [],
                             include_default=not args.no_default, record=not args.no_record)
    print(format_seed_table(record))
    if path is not None:
        print(f"recorded {path}")
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
    from thesislib.pairs import check_pairs, parameter_cell_problems, sync_pairs
    from thesislib.paths import project_root

    root = project_root()
    if root is None:
        raise RuntimeError("the notebooks live in the source checkout; run this from a clone")
    if args.sync:
        for path in sync_pairs(root):
            print(f"synced {path.relative_to(root)}")
    problems = check_pairs(root) + parameter_cell_problems(root)
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
    p = sub.add_parser("seeds", help="rerun a chapter at other base seeds and show its verdicts side by side")
    p.add_argument("chapter")
    p.add_argument("--base", type=int, nargs="+", default=[101, 202], metavar="SEED",
                   help="base seeds to run besides the config's own (default: 101 202)")
    p.add_argument("--scale", default="smoke")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="override a notebook parameter")
    p.add_argument("--no-default", action="store_true", help="do not also run at the config's own seed")
    p.add_argument("--no-record", action="store_true",
                   help="print only; do not write results/<chapter>/seeds/<scale>.json")
    p.set_defaults(func=_cmd_seeds)
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
    # What the user typed, for the provenance of every run this command starts (their kernels
    # inherit it), for the duration of this command only; an outer thesislib command's wins.
    outer = os.environ.get(ENV_COMMAND)
    if outer is None:
        os.environ[ENV_COMMAND] = typed_command(None if argv is None else ["thesislib", *argv])
    try:
        return args.func(args)
    except (ConfigError, KeyError, FileNotFoundError, FileExistsError, RuntimeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"thesislib: error: {message}", file=sys.stderr)
        return 2
    finally:
        if outer is None:
            os.environ.pop(ENV_COMMAND, None)


if __name__ == "__main__":
    sys.exit(main())
