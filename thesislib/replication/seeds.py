"""``thesislib seeds``: rerun a chapter at other base seeds and count where each claim held.

A smoke-scale verdict is worth stating only if it survives a change of seed. :func:`run_seeds`
runs a chapter at its config's own base seed and at each given base seed (``-p seed=<base>``,
the replicate count unchanged), reads each run's ``metrics.json["verdicts"]``
(:mod:`thesislib.replication.verdicts`) and writes ``results/<chapter>/seeds/<scale>.json``
with provenance: per claim, its label at every base seed and at how many it held. A chapter
page reads that record back (:func:`load_seed_record`, :func:`seed_rows`) to say, for each
headline claim, "held at k of n base seeds".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thesislib.chapters import get_chapter
from thesislib.paths import results_root, runs_root
from thesislib.repro import provenance, write_json
from thesislib.runner import resolve_parameters, run_chapter, validate_parameters


def seed_record_path(chapter: str, scale: str = "smoke", root: Path | None = None) -> Path:
    """Where :func:`run_seeds` records a chapter's seed study: ``results/<chapter>/seeds/<scale>.json``."""
    return (root or results_root()) / chapter / "seeds" / f"{scale}.json"


def portable_run_path(run_dir: str | Path, runs: Path | None = None) -> str:
    """A run directory as the seed record stores it: ``runs/<chapter>/<stamp>``, relative to the runs
    root (``$THESISLIB_RUNS``, by default ``<checkout>/runs``), never an absolute path of one machine
    or worktree. A directory outside that root keeps its last two parts (``<chapter>/<stamp>``)."""
    path = Path(run_dir).expanduser().resolve()
    try:
        rel = path.relative_to((runs or runs_root()).resolve())
    except ValueError:
        rel = Path(*path.parts[-2:])
    return (Path("runs") / rel).as_posix()


def summarize(chapter: str, scale: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The seed record from ``runs`` (each ``{"seed", "run", "verdicts"}``, ``run`` as
    :func:`portable_run_path` writes it): per claim its text,
    expected label, label and holds at every seed, and the count of seeds where it held."""
    claims: dict[str, dict[str, Any]] = {}
    for run in runs:
        for claim_id, verdict in run["verdicts"].items():
            entry = claims.setdefault(claim_id, {"claim": verdict["claim"], "expected": verdict["expected"],
                                                 "by_seed": {}})
            entry["by_seed"][str(run["seed"])] = {"label": verdict["label"], "holds": bool(verdict["holds"]),
                                                  "mean": verdict.get("mean"), "low": verdict.get("low"),
                                                  "high": verdict.get("high"), "n": verdict.get("n")}
    for entry in claims.values():
        entry["held"] = sum(v["holds"] for v in entry["by_seed"].values())
        entry["of"] = len(runs)
    return {"chapter": chapter, "scale": scale, "seeds": [run["seed"] for run in runs],
            "runs": list(runs), "claims": claims}


def run_seeds(chapter_id: str, bases: Sequence[int], scale: str = "smoke", overrides: Sequence[str] = (),
              include_default: bool = True, record: bool = True,
              root: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """Run ``chapter_id`` at its own base seed (``include_default``) and at each of ``bases``; return
    the seed record and the file it was written to (``None`` when ``record`` is false)."""
    chapter = get_chapter(chapter_id)
    if any(text.split("=", 1)[0].strip() == "seed" for text in overrides):
        raise ValueError("thesislib seeds sets the seed itself; pass base seeds with --base, not -p seed=...")
    values = resolve_parameters(chapter, scale, list(overrides))
    own = validate_parameters(chapter, values, scale).seed
    seeds = ([own] if include_default else []) + [b for b in bases if not (include_default and b == own)]
    if not seeds:
        raise ValueError("no base seed to run")
    runs = []
    for seed in seeds:
        run_dir = run_chapter(chapter_id, scale, [*overrides, f"seed={seed}"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        verdicts = metrics.get("verdicts")
        if not verdicts:
            raise RuntimeError(f"{run_dir / 'metrics.json'} holds no 'verdicts': chapter {chapter_id!r} "
                               "does not report its claims yet")
        runs.append({"seed": seed, "run": portable_run_path(run_dir), "verdicts": verdicts})
    result = summarize(chapter_id, scale, runs)
    result["overrides"] = list(overrides)
    result["provenance"] = provenance(config={"chapter": chapter_id, "scale": scale, "seeds": seeds,
                                              "overrides": list(overrides)})
    path = write_json(seed_record_path(chapter_id, scale, root), result) if record else None
    return result, path


def load_seed_record(chapter: str, scale: str = "smoke", root: Path | None = None) -> dict[str, Any] | None:
    """The recorded seed study of ``chapter`` at ``scale``, or ``None`` if none was recorded."""
    path = seed_record_path(chapter, scale, root)
    return json.loads(path.read_text()) if path.is_file() else None


def seed_rows(record: dict[str, Any], claim_ids: Sequence[str] | None = None) -> tuple[list[list[Any]], list[str]]:
    """``(rows, headers)``: per claim, its label at each base seed and ``held k of n``."""
    seeds = [str(s) for s in record["seeds"]]
    headers = ["claim", "expected", *[f"base seed {s}" for s in seeds], "held"]
    rows = []
    for claim_id in claim_ids or list(record["claims"]):
        entry = record["claims"].get(claim_id)
        if entry is None:
            continue
        cells = [entry["by_seed"].get(s, {}).get("label", "–") for s in seeds]
        rows.append([entry["claim"], entry["expected"], *cells, f"{entry['held']} of {entry['of']}"])
    return rows, headers


def held_counts(record: dict[str, Any] | None) -> dict[str, tuple[int, int]]:
    """``{claim id: (held, of)}`` from a seed record (empty without one)."""
    if not record:
        return {}
    return {cid: (entry["held"], entry["of"]) for cid, entry in record["claims"].items()}


def format_seed_table(record: dict[str, Any]) -> str:
    """The seed record as aligned plain-text columns, for the terminal."""
    rows, headers = seed_rows(record)
    table = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def seed_summary(record: dict[str, Any]) -> str:
    """One sentence on a seed record: how many claims held at every base seed (named) and at none."""
    held = held_counts(record)
    n_of = max((of for _, of in held.values()), default=0)
    always = [record["claims"][c]["claim"] for c, (k, of) in held.items() if k == of]
    never = sum(1 for k, _ in held.values() if k == 0)
    named = f" ({'; '.join(always)})" if always else ""
    return (f"Held at every one of the {n_of} base seeds: {len(always)} of {len(held)} claims{named}. "
            f"Held at none: {never}.")
