"""The notebook's parameters and configs, experiment ids, aggregation and the computed statements."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from thesislib.chapters import get_chapter
from thesislib.cli import RUNNER_PARAMETERS, notebook_parameters
from thesislib.config import from_mapping, load_yaml
from thesislib.engine import History
from thesislib.methods.sec.experiments import (
    ABLATIONS,
    RunResult,
    SECNotebookParams,
    aggregate,
    claims,
    config_for,
    deviations,
    experiment_id,
    flat_metrics,
    summary_rows,
    verdict,
)
from thesislib.replication import paper_numbers, replication_rows

CHAPTER = get_chapter("sec")
CONFIG_DIR = CHAPTER.config_dir()
FIELDS = [f.name for f in dataclasses.fields(SECNotebookParams)]


def params_of(scale: str, **overrides) -> SECNotebookParams:
    return from_mapping(SECNotebookParams, load_yaml(CONFIG_DIR / f"{scale}.yaml"), scale=scale, **overrides)


def test_notebook_parameters_cell_matches_the_dataclass_and_smoke_yaml():
    cell = notebook_parameters(CHAPTER)
    assert set(cell) == set(FIELDS)
    smoke = load_yaml(CONFIG_DIR / "smoke.yaml")
    assert set(smoke) == set(FIELDS) - set(RUNNER_PARAMETERS)
    defaults = SECNotebookParams()
    assert from_mapping(SECNotebookParams, smoke, scale="smoke") == defaults
    for name, info in cell.items():  # the cell's literals are the dataclass defaults
        value = from_mapping(SECNotebookParams, {name: eval(info["default"])})  # noqa: S307 (own file)
        assert getattr(value, name) == getattr(defaults, name), name


@pytest.mark.parametrize("scale", ["smoke", "full"])
def test_configs_use_notebook_parameters_and_have_a_header(scale):
    path = CONFIG_DIR / f"{scale}.yaml"
    assert set(load_yaml(path)) <= set(FIELDS) - set(RUNNER_PARAMETERS)
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), path.read_text().splitlines()))
    assert header.startswith("# SEC")
    if scale == "full":
        assert "2.4.1" in header and "TITAN-X" in header and "THESISLIB_DATA" in header


def test_full_config_follows_the_thesis_protocol_and_maps_onto_the_paper_ids():
    params = params_of("full", weights_path="/weights/vgg16-397923af.pth")
    config = config_for(params, "sec", params.seed)
    assert (config.data, config.network, config.image_size, config.mask_side) == ("voc", "deeplab_largefov", 321, 41)
    protocol = (config.iterations, config.batch_size, config.lr, config.lr_step, config.lr_gamma)
    assert protocol == (8000, 15, 1e-3, 2000, 0.1)
    assert (config.optimizer, config.momentum, config.weight_decay, config.caffe_lr_mult) == ("sgd", 0.9, 5e-4, True)
    assert config.dropout == 0.5 and config.train_crf_scale() == 12.0 and config.test_crf_scale == 1.0
    assert config.test_crf and config.max_eval_images == 0
    assert deviations(config) == []
    ids = {p.experiment for p in paper_numbers("sec")}
    for name in ("sec", "sec-gmp", "sec-gap"):
        assert experiment_id(config_for(params, name), name) in ids
    short = config_for(params_of("full", iterations=2, batch_size=2), "sec")
    assert experiment_id(short, "sec") == \
        "voc12-val/deeplab-largefov/sec[iterations=2,batch_size=2,random-init]"
    assert experiment_id(config_for(SECNotebookParams(), "sec-gap"), "sec-gap") == "scenes/small-fcn/sec-gap"


def test_config_for_applies_the_ablation_and_the_replicate_seed():
    params = SECNotebookParams(seed=3, n_seeds=2)
    assert params.seeds == [3, 4]
    seed_only = config_for(params, "seed", 4)
    assert (seed_only.seed_loss, seed_only.expand_loss, seed_only.constrain_loss) == (True, False, False)
    assert seed_only.seed == seed_only.data_seed == 4
    assert config_for(params, "sec-gmp").loss_config().present_decay == 0.0
    assert config_for(params, "expand+constrain").seed_loss is False
    with pytest.raises(ValueError, match="unknown ablation"):
        SECNotebookParams(ablations=("sec", "nosuch"))
    voc = config_for(SECNotebookParams(data="voc", network="deeplab_largefov", image_size=321, data_root="/d"), "sec")
    assert voc.voc_root == "/d/voc" and voc.sbd_root == "/d/sbd" and voc.train_crf_scale() == 12.0


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


def test_claims_are_computed_from_paired_replicates():
    results = []
    for seed, (sec, gmp, gap, seed_only, se) in enumerate([(60, 55, 40, 50, 45), (62, 63, 41, 49, 50)]):
        results += [_result("sec", seed, sec, 25), _result("sec-gmp", seed, gmp, 20), _result("sec-gap", seed, gap, 35),
                    _result("seed", seed, seed_only, 40), _result("seed+expand", seed, se, 30)]
    rows = {(r[0], r[1]): r for r in claims(results)}
    assert rows[("all three terms beat every subset", "sec − seed")][3] == "yes"
    assert rows[("GWRP beats GMP", "sec − sec-gmp")][3] == "mixed (1/2)"
    assert rows[("GWRP beats GAP", "sec − sec-gap")][3] == "yes"
    assert rows[("seed+expand is worse than seed alone", "seed − seed+expand")][3] == "mixed (1/2)"
    assert rows[("all three terms beat every subset", "sec − seed+constrain")][3] == "not run"
    assert rows[("GMP under-, GAP over-estimates sizes", "fg%: GWRP − GMP")][3] == "yes"
    assert verdict([-1.0, -2.0]) == "no" and verdict([]) == "not run"


def test_flat_metrics_use_the_crf_numbers_as_primary():
    ev = {"miou": 40.0, "fg_fraction": 30.0, "pixel_acc": 80.0, "iou": [90.0, math.nan, 10.0],
          "miou_crf": 45.0, "fg_fraction_crf": 25.0, "pixel_acc_crf": 85.0, "iou_crf": [91.0, math.nan, 12.0]}
    flat = flat_metrics(ev, ("background", "a", "b"))
    assert flat["miou"] == 45.0 and flat["miou_nocrf"] == 40.0 and flat["fg_fraction"] == 25.0
    assert flat["iou_background"] == 91.0 and "iou_a" not in flat


def test_replication_rows_read_not_run_without_results(tmp_path):
    rows = replication_rows("sec", root=tmp_path)
    assert len(rows) == len(paper_numbers("sec")) and all(r.ours is None for r in rows)
    assert set(ABLATIONS) >= {"sec", "sec-gmp", "sec-gap"}


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
