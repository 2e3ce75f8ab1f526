"""The replication table every chapter notebook shows through ``tnb.show_replication``."""

import pytest

from thesislib import notebook as tnb
from thesislib.replication import NOT_RUN, metric_label, paper_numbers
from thesislib.repro import write_json


def _record(root, chapter, experiment, metric, value):
    write_json(root / chapter / "20260101-000000-full.json",
               {"chapter": chapter, "scale": "full", "experiments": {experiment: {metric: value}},
                "provenance": {"commit": "abcdef1234567", "dirty": False, "hardware": "GPU X"}})


def test_one_row_per_paper_number_with_default_columns(tmp_path):
    rows, headers = tnb.replication_table("pic", root=tmp_path)
    assert headers == ["experiment", "metric", "thesis", "this repository", "scale", "hardware"]
    numbers = paper_numbers("pic")
    assert [r[0] for r in rows] == [n.experiment for n in numbers]
    assert [r[1] for r in rows] == [metric_label("pic", n.metric) for n in numbers]
    assert [r[2] for r in rows] == [n.value for n in numbers]
    assert all(r[3:] == [NOT_RUN, "", ""] for r in rows)


def test_recorded_run_fills_value_scale_and_hardware(tmp_path):
    first = paper_numbers("lsdc")[0]
    _record(tmp_path, "lsdc", first.experiment, first.metric, {"mean": 81.5, "std": 0.5, "n": 5})
    rows, headers = tnb.replication_table("lsdc", source=True, metric=False, thesis_header="thesis ACC (%)",
                                          root=tmp_path)
    assert headers == ["experiment", "source", "thesis ACC (%)", "this repository", "scale", "hardware"]
    assert rows[0] == [first.experiment, first.source, first.value, "81.50 ± 0.50 (5 seeds)", "full", "GPU X"]
    assert all(r[3] == NOT_RUN for r in rows[1:])


def test_metric_filter_keeps_only_those_metrics(tmp_path):
    rows, _ = tnb.replication_table("sec", metrics=("miou", "fg_fraction"), root=tmp_path)
    kept = [n for n in paper_numbers("sec") if n.metric in ("miou", "fg_fraction")]
    assert 0 < len(rows) == len(kept) < len(paper_numbers("sec"))
    assert {r[1] for r in rows} == {metric_label("sec", "miou"), metric_label("sec", "fg_fraction")}


def test_bad_input_is_rejected_by_name(tmp_path):
    with pytest.raises(ValueError, match="unknown metric.*mioo.*valid: .*miou"):
        tnb.replication_table("sec", metrics=["mioo"], root=tmp_path)
    with pytest.raises(TypeError, match="not the str 'miou'"):
        tnb.replication_table("sec", metrics="miou", root=tmp_path)
    with pytest.raises(ValueError, match="'nosuch' has no printed numbers"):
        tnb.replication_table("nosuch", root=tmp_path)


def test_show_replication_displays_the_table(tmp_path, monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    tnb.show_replication("pic", floatfmt=".2f", root=tmp_path)
    rows, headers = tnb.replication_table("pic", root=tmp_path)
    assert shown[0].data == tnb.markdown_table(rows, headers, floatfmt=".2f")
