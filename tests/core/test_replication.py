import json

import pytest

from thesislib.replication import (
    NOT_RUN,
    paper_numbers,
    record_run,
    recorded_results,
    replication_rows,
    unmatched_results,
)
from thesislib.repro import write_json


def _fake_run(run_dir, experiments, scale="full"):
    write_json(run_dir / "metrics.json", {"chapter": "gsoftmax", "scale": scale, "experiments": experiments})
    write_json(run_dir / "provenance.json", {"commit": "abcdef1234567", "dirty": False, "hardware": "GPU X"})
    return run_dir


def test_every_paper_number_reads_not_run_without_results(tmp_path):
    rows = replication_rows("gsoftmax", root=tmp_path)
    assert rows, "the G-softmax paper numbers are typed in"
    assert all(row.ours is None and row.ours_text == NOT_RUN for row in rows)


def test_recorded_run_fills_its_row_only(tmp_path):
    exp = paper_numbers("gsoftmax")[0]
    run = _fake_run(tmp_path / "runs" / "20260101-000000-full",
                    {exp.experiment: {exp.metric: {"mean": 3.5, "std": 0.1, "n": 3}},
                     "digits/mlp/softmax": {"top1_error": 2.0}})
    out = record_run(run, root=tmp_path / "results")
    assert out == tmp_path / "results" / "gsoftmax" / "20260101-000000-full.json"
    assert json.loads(out.read_text())["provenance"]["hardware"] == "GPU X"
    rows = replication_rows("gsoftmax", root=tmp_path / "results")
    filled = [r for r in rows if r.ours is not None]
    assert len(filled) == 1 and filled[0].paper == exp
    assert filled[0].ours.value == 3.5 and filled[0].ours.commit == "abcdef1234"
    assert filled[0].ours_text == "3.50 ± 0.10 (3 seeds)"
    extra = unmatched_results("gsoftmax", root=tmp_path / "results")
    assert [(r.experiment, r.value) for r in extra] == [("digits/mlp/softmax", 2.0)]
    assert len(recorded_results("gsoftmax", root=tmp_path / "results")) == 2


def test_record_refuses_incomplete_run(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        record_run(tmp_path / "run", root=tmp_path)


def test_paper_numbers_are_well_formed():
    numbers = paper_numbers("gsoftmax")
    keys = [(n.experiment, n.metric) for n in numbers]
    assert len(keys) == len(set(keys))
    assert all(n.source and n.label for n in numbers)


def test_dashboard_shows_recorded_number_with_provenance(tmp_path, monkeypatch):
    from thesislib import bookgen

    monkeypatch.setenv("THESISLIB_RESULTS", str(tmp_path / "results"))
    text = bookgen.dashboard_markdown()
    assert "| CIFAR-10, WRN-40-14, 300 epochs, G-softmax | Table I | top-1 error 3.36 | not run |" in text
    run = _fake_run(tmp_path / "runs" / "20260101-000000-full",
                    {"cifar10/wrn-40-14/gsoftmax": {"top1_error": {"mean": 3.41, "std": 0.05, "n": 3}}})
    record_run(run, root=tmp_path / "results")
    text = bookgen.dashboard_markdown()
    assert ("| CIFAR-10, WRN-40-14, 300 epochs, G-softmax | Table I | top-1 error 3.36 | "
            "top-1 error 3.41 ± 0.05 (3 seeds) | full | GPU X | abcdef1234 |") in text


def test_summarize_seeds_schema():
    from thesislib.replication import summarize_seeds

    out = summarize_seeds({"a": [{"m": 1.0, "k": 2.0}, {"m": 3.0, "k": 2.0}], "b": [{"m": 5.0}]})
    assert out["a"]["m"] == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "n": 2}
    assert out["a"]["k"] == {"mean": 2.0, "std": 0.0, "n": 2}
    assert out["b"] == {"m": 5.0}
