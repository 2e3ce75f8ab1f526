"""The parameter base (ranges, generated cells) and the paired verdicts, on hand-computed cases."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pytest

from thesislib.config import ConfigError, from_mapping
from thesislib.params import RunParams, check_ranges, param, parameter_cell, parameter_names
from thesislib.replication.seeds import format_seed_table, held_counts, seed_rows, summarize
from thesislib.replication.verdicts import paired_verdict, verdict_rows, verdicts_dict


@dataclass(frozen=True)
class ToyParams(RunParams):
    n_seeds: int = param(5, help="replicates", min=1)
    lr: float = param(0.1, help="learning rate", min=0.0, max=1.0)
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = param((2, 3), help="sizes", choices=(1, 2, 3))


def test_ranges_are_checked_with_the_field_named():
    assert ToyParams().seeds == [0, 1, 2, 3, 4]
    assert ToyParams(seed=7, n_seeds=2).seeds == [7, 8]
    with pytest.raises(ConfigError, match=r"lr = 2.0 is above its maximum 1.0"):
        ToyParams(lr=2.0)
    with pytest.raises(ConfigError, match=r"n_seeds = 0 is below its minimum 1"):
        from_mapping(ToyParams, {"n_seeds": "0"})
    with pytest.raises(ConfigError, match=r"sizes: 4 not among"):
        ToyParams(sizes=(1, 4))
    with pytest.raises(ConfigError, match=r"'c' is not one of"):
        from_mapping(ToyParams, {"mode": "c"})
    check_ranges(ToyParams(lr=1.0, sizes=(1,)))  # bounds are inclusive


def test_the_parameter_cell_lists_every_field_in_order_with_its_default():
    cell = parameter_cell(ToyParams).splitlines()
    assert cell[0].startswith("# Parameters: generated from") and "ToyParams" in cell[0]
    names = [line.split(" = ")[0] for line in cell[1:]]
    assert names == parameter_names(ToyParams)
    assert names[:7] == ["seed", "n_seeds", "scale", "output_dir", "device", "threads", "progress"]
    assert "lr = 0.1  # float; learning rate (min 0.0, max 1.0)" in cell
    assert "sizes = [2, 3]  # list of int; sizes" in cell
    assert "mode = 'a'  # 'a' | 'b'" in cell
    namespace: dict = {}
    exec("\n".join(cell), namespace)  # the cell is valid Python and reproduces the defaults
    assert from_mapping(ToyParams, {n: namespace[n] for n in names}) == ToyParams()
    assert "output_dir" not in parameter_names(ToyParams, settable_only=True)


def test_paired_verdict_interval_matches_a_hand_computation():
    # differences 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.302653, half-width 4.302653 / sqrt(3)
    v = paired_verdict("x", "a beats b", [2.0, 4.0, 6.0], [1.0, 2.0, 3.0], expected="higher")
    half = 4.302652729911275 / math.sqrt(3)
    assert v.n == 3 and v.mean == pytest.approx(2.0)
    assert v.low == pytest.approx(2.0 - half) and v.high == pytest.approx(2.0 + half)
    assert v.label == "no clear difference" and not v.holds  # the interval reaches below 0
    tight = paired_verdict("y", "a beats b", [1.1, 1.2, 1.0, 1.1, 1.3], 0.0)
    assert tight.label == "higher" and tight.holds and tight.low > 0
    lower = paired_verdict("z", "a is worse", [0.0, 0.1, 0.0], [1.0, 1.0, 1.1], expected="lower")
    assert lower.label == "lower" and lower.holds
    same = paired_verdict("s", "no change", [1.0, 2.0], [2.0, 1.0], expected="no clear difference")
    assert same.label == "no clear difference" and same.holds
    one = paired_verdict("o", "one replicate", [3.0], [1.0])
    assert one.label == "too few replicates" and not one.holds and one.mean == 2.0 and one.low is None
    with pytest.raises(ValueError, match="pair up"):
        paired_verdict("bad", "bad", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="two verdicts share the id"):
        verdicts_dict([tight, tight])
    rows = verdict_rows([tight])
    assert rows[0][0] == "a beats b" and rows[0][3] == "higher" and rows[0][-1] == "yes"


def test_not_lower_holds_when_higher_or_undecided_and_fails_when_lower():
    """A "preserved or improved" claim: higher and no clear difference hold, lower does not."""
    up = paired_verdict("u", "kept", [1.1, 1.2, 1.0, 1.1, 1.3], 0.0, expected="not lower")
    assert up.label == "higher" and up.holds
    flat = paired_verdict("f", "kept", [1.0, 2.0], [2.0, 1.0], expected="not lower")
    assert flat.label == "no clear difference" and flat.holds
    down = paired_verdict("d", "kept", [0.0, 0.1, 0.0], [1.0, 1.0, 1.1], expected="not lower")
    assert down.label == "lower" and not down.holds
    assert not paired_verdict("o", "kept", [3.0], [1.0], expected="not lower").holds
    with pytest.raises(ValueError, match="expected"):
        paired_verdict("b", "bad", [1.0, 2.0], [1.0, 2.0], expected="similar")


def test_a_seed_record_counts_where_each_claim_held():
    def run(seed, holds):
        v = paired_verdict("c1", "claim one", [1.0, 1.1, 1.2] if holds else [1.0, -1.0, 0.5], 0.0)
        return {"seed": seed, "run": f"runs/{seed}", "verdicts": verdicts_dict([v])}

    record = summarize("toy", "smoke", [run(0, True), run(101, False), run(202, True)])
    assert record["seeds"] == [0, 101, 202]
    assert held_counts(record) == {"c1": (2, 3)}
    rows, headers = seed_rows(record)
    assert headers == ["claim", "expected", "base seed 0", "base seed 101", "base seed 202", "held"]
    assert rows == [["claim one", "higher", "higher", "no clear difference", "higher", "2 of 3"]]
    assert "2 of 3" in format_seed_table(record)
    assert held_counts(None) == {}


def test_papermill_reads_every_line_of_a_generated_cell():
    import nbformat
    from papermill.translators import PythonTranslator

    found = PythonTranslator.inspect(nbformat.v4.new_code_cell(parameter_cell(ToyParams)))
    assert [p.name for p in found] == parameter_names(ToyParams)
    assert {p.name: p.default for p in found}["lr"] == "0.1"


def test_seed_summary_names_the_claims_held_everywhere():
    from thesislib.replication.seeds import seed_summary

    def run(seed, holds):
        v = paired_verdict("c1", "claim one", [1.0, 1.1, 1.2] if holds else [1.0, -1.0, 0.5], 0.0)
        w = paired_verdict("c2", "claim two", [1.0, -1.0, 0.5], 0.0)
        return {"seed": seed, "run": "r", "verdicts": verdicts_dict([v, w])}

    record = summarize("toy", "smoke", [run(0, True), run(101, True)])
    assert seed_summary(record) == ("Held at every one of the 2 base seeds: 1 of 2 claims (claim one). "
                                    "Held at none: 1.")


def test_seed_record_stores_run_directories_relative_to_the_runs_root(tmp_path, monkeypatch):
    from thesislib.replication import seeds
    from thesislib.repro import write_json

    runs = tmp_path / "somewhere" / "runs"
    monkeypatch.setenv("THESISLIB_RUNS", str(runs))

    def fake_run_chapter(chapter_id, scale, overrides):
        seed = int(dict(o.split("=", 1) for o in overrides)["seed"])
        run_dir = runs / chapter_id / f"2026010{seed % 7}-000000-{scale}"
        v = paired_verdict("c1", "claim one", [1.0, 1.1, 1.2], 0.0)
        write_json(run_dir / "metrics.json", {"verdicts": verdicts_dict([v])})
        return run_dir

    monkeypatch.setattr(seeds, "run_chapter", fake_run_chapter)
    record, path = seeds.run_seeds("gsoftmax", [101], root=tmp_path / "results")
    assert path == tmp_path / "results" / "gsoftmax" / "seeds" / "smoke.json"
    assert [r["run"] for r in record["runs"]] == ["runs/gsoftmax/20260100-000000-smoke",
                                                  "runs/gsoftmax/20260103-000000-smoke"]
    assert str(tmp_path) not in path.read_text()
    # a directory outside the runs root keeps only <chapter>/<stamp>
    assert seeds.portable_run_path("/work/wt/gone/runs/sec/20261204-201016-smoke", runs) == \
        "runs/sec/20261204-201016-smoke"
