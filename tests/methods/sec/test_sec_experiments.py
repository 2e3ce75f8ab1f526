"""Aggregation, the computed verdicts, the results files and the notebook's data step."""

from __future__ import annotations

import math

import pytest

from thesislib.chapters import get_chapter
from thesislib.config import from_mapping, load_yaml
from thesislib.engine import History
from thesislib.methods.sec.config import SECParams
from thesislib.methods.sec.evaluate import flat_metrics
from thesislib.methods.sec.experiments import (
    RunResult,
    aggregate,
    all_verdicts,
    claim_verdicts,
    crf_benchmarks,
    crf_gain_verdict,
    subsets_beaten,
    summary_rows,
    verdict_sentence,
)
from thesislib.replication import paper_numbers, replication_rows

CONFIG_DIR = get_chapter("sec").config_dir()


def params_of(scale: str, **overrides) -> SECParams:
    return from_mapping(SECParams, load_yaml(CONFIG_DIR / f"{scale}.yaml"), scale=scale, **overrides)


def _result(name, seed, miou, fg, nocrf=None):
    metrics = {"miou": miou, "miou_nocrf": miou - 5 if nocrf is None else nocrf, "fg_fraction": fg,
               "fg_fraction_nocrf": fg + 3}
    return RunResult(name, seed, f"scenes/small-fcn/{name}", metrics, 1.0, History())


def test_aggregate_and_rows():
    results = [_result("sec", 0, 60.0, 20.0), _result("sec", 1, 70.0, 22.0), _result("seed", 0, 50.0, 30.0)]
    agg = aggregate(results)
    assert agg["scenes/small-fcn/sec"]["miou"] == {"mean": 65.0, "std": pytest.approx(math.sqrt(50)), "n": 2}
    assert agg["scenes/small-fcn/seed"]["miou"] == 50.0
    rows = summary_rows(results, ["seed", "sec"])
    assert rows[0][:3] == ["seed", "1", "45.0"] and rows[1][1] == "2" and rows[1][3] == "65.0 ± 7.1"


def test_verdicts_are_paired_intervals_over_replicates():
    results = []
    rows = [(60, 55, 40, 50, 45), (62, 63, 41, 49, 50), (64, 58, 42, 51, 47)]
    for seed, (sec, gmp, gap, seed_only, se) in enumerate(rows):
        results += [_result("sec", seed, sec, 25), _result("sec-gmp", seed, gmp, 20), _result("sec-gap", seed, gap, 35),
                    _result("seed", seed, seed_only, 40), _result("seed+expand", seed, se, 30)]
    v = {x.id: x for x in claim_verdicts(results)}
    # sec - seed = 10, 13, 13: mean 12, sd sqrt(3), t_{0.975, 2} = 4.303
    assert v["sec>seed"].mean == pytest.approx(12.0) and v["sec>seed"].n == 3
    assert v["sec>seed"].low == pytest.approx(12.0 - 4.3027 * math.sqrt(3) / math.sqrt(3), abs=1e-3)
    assert v["sec>seed"].label == "higher" and v["sec>seed"].holds
    assert v["gwrp>gmp"].label == "no clear difference"      # +5, -1, +6
    assert v["gwrp>gap"].label == "higher"
    assert v["sec>seed+constrain"].label == "too few replicates" and v["sec>seed+constrain"].n == 0
    assert v["fg:gwrp>gmp"].label == "higher" and v["fg:gap>gwrp"].label == "higher"
    assert subsets_beaten(list(v.values())) == ["seed", "seed+expand"]
    plain = {x.id: x for x in claim_verdicts(results, crf=False)}
    assert plain["sec>seed:nocrf"].claim.endswith("(no CRF)") and plain["sec>seed:nocrf"].mean == pytest.approx(12.0)
    gain = crf_gain_verdict(results)
    assert gain.mean == pytest.approx(5.0) and gain.label == "higher"
    ids = [x.id for x in all_verdicts(results)]
    assert len(ids) == len(set(ids)) == 21
    assert "supported" in verdict_sentence(v["sec>seed"]) and "[+7.7, +16.3]" in verdict_sentence(v["sec>seed"])
    assert "not decided" in verdict_sentence(v["gwrp>gmp"])
    assert "too few" in verdict_sentence(v["sec>seed+constrain"])


def test_crf_benchmarks_read_every_record(tmp_path):
    records, missing = crf_benchmarks()
    names = [r["file"] for r in records]
    assert "benchmark_h200.json" in names and missing == []   # the H200 run makes the GPU kind present
    h200 = next(r for r in records if r["file"] == "benchmark_h200.json")
    assert "H200" in h200["hardware"] and any("GPU goal" in g and "MET" in g for g in h200["goals"])
    assert any(row[2] == "cuda" and row[3] == "auto -> exact" and row[5] == "29.57" for row in h200["rows"])
    assert crf_benchmarks(tmp_path) == ([], ["CPU", "GPU"])


def test_flat_metrics_use_the_crf_numbers_as_primary():
    ev = {"miou": 40.0, "fg_fraction": 30.0, "pixel_acc": 80.0, "iou": [90.0, math.nan, 10.0],
          "miou_crf": 45.0, "fg_fraction_crf": 25.0, "pixel_acc_crf": 85.0, "iou_crf": [91.0, math.nan, 12.0]}
    flat = flat_metrics(ev, ("background", "a", "b"))
    assert flat["miou"] == 45.0 and flat["miou_nocrf"] == 40.0 and flat["fg_fraction"] == 25.0
    assert flat["iou_background"] == 91.0 and "iou_a" not in flat


def test_replication_rows_read_not_run_without_results(tmp_path):
    rows = replication_rows("sec", root=tmp_path)
    assert len(rows) == len(paper_numbers("sec")) and all(r.ours is None for r in rows)


def test_full_scale_without_data_fails_at_the_notebooks_data_step(tmp_path, monkeypatch):
    """What `thesislib run sec --scale full` hits first (the notebook's setup cell): a clear error
    naming THESISLIB_DATA and the VOC / SBD layout, before any network is built."""
    from thesislib.data import DatasetNotFoundError
    from thesislib.methods.sec.experiments import load_replicate_data

    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_replicate_data(params_of("full"))
    assert "THESISLIB_DATA" in str(err.value) and "VOCdevkit" in str(err.value)
    with pytest.raises(FileNotFoundError, match="localization_cues"):
        load_replicate_data(params_of("full", cue_source="file", cue_path=str(tmp_path / "x.pickle"),
                                      cue_list=str(tmp_path / "input_list.txt")))


def test_paper_numbers_are_consistent():
    numbers = {(p.experiment, p.metric): p.value for p in paper_numbers("sec")}
    for split, mean in (("val", 50.7), ("test", 51.7)):
        eid = f"voc12-{split}/deeplab-largefov/sec"
        per_class = [v for (e, m), v in numbers.items() if e == eid and m.startswith("iou_")]
        assert len(per_class) == 21
        assert numbers[(eid, "miou")] == mean
        assert abs(sum(per_class) / 21 - mean) < 0.06   # the printed mean of the printed per-class IoUs
    assert numbers[("voc12-val/deeplab-largefov/sec-gmp", "fg_fraction")] < \
        numbers[("voc12-val/deeplab-largefov/sec", "fg_fraction")] < \
        numbers[("voc12-val/deeplab-largefov/sec-gap", "fg_fraction")]
