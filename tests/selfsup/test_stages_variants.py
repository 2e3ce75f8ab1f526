"""The staged-pipeline runner's checks and the per-variant claim helpers."""

import pytest

from thesislib.config import ConfigError
from thesislib.methods.lsdc.config import lsdc_config
from thesislib.methods.lsdc.train import PIPELINE
from thesislib.replication.variants import (
    apply_variant,
    percent_summary,
    replicate_params,
    variant_values,
    variant_verdicts,
    verdict_sentence,
)


def test_pipeline_rejects_unknown_stage_and_missing_init():
    params = lsdc_config({"n_images": 64})
    with pytest.raises(ValueError, match="unknown stage"):
        PIPELINE.run("nope", params, "cpu")
    with pytest.raises(ValueError, match="needs the previous stage"):
        PIPELINE.run("lsdc", params, "cpu")


def test_variant_helpers_hand_computed():
    runs = [{"a": {"acc": 0.5}, "b": {"acc": 0.25}}, {"a": {"acc": 0.75}, "b": {"acc": 0.5}}]
    assert variant_values(runs, "a") == [0.5, 0.75]
    summary = percent_summary(runs, {"a": "digits/a"})
    assert summary["digits/a"]["acc"]["mean"] == pytest.approx(62.5) and summary["digits/a"]["acc"]["n"] == 2
    (v,) = variant_verdicts(runs, [("a>b", "a beats b", "a", "b", "higher"), ("skip", "c", "a", "zz", "higher")])
    assert v.mean == pytest.approx(0.25) and v.low == pytest.approx(0.25)   # identical differences: zero-width interval
    assert v.label == "higher" and verdict_sentence(v).startswith("*a beats b*: reproduced; difference +0.250")


def test_replicate_params_and_apply_variant():
    p = lsdc_config({"seed": 3, "n_seeds": 5})
    assert (replicate_params(p).seed, replicate_params(p).n_seeds) == (3, 1)
    assert replicate_params(p, 7).seed == 7
    table = {"small-k": ("k = 3", {"k": 3})}
    assert apply_variant(p, table, "small-k").k == 3 and p.k != 3
    with pytest.raises(ConfigError, match="valid names are: small-k"):
        apply_variant(p, table, "nope")


def test_pipeline_refuses_data_for_torchrun_and_reports_a_corrupt_dataset(tmp_path, capsys):
    """Review R1 item 8: data= with nproc > 1 is an error; a corrupt dataset is exit 2 with a message."""
    import json
    from dataclasses import replace as dc_replace

    from thesislib.config import to_dict
    from thesislib.data.integrity import DatasetCorruptError

    params = lsdc_config({"n_images": 64})
    with pytest.raises(ValueError, match="data= cannot reach 2 torchrun processes"):
        PIPELINE.run("rotnet", params, "cpu", data=object(), nproc=2)

    def corrupt(p):
        raise DatasetCorruptError("cifar10", "cifar10/data_batch_1", "truncated")

    path = tmp_path / "p.json"
    path.write_text(json.dumps(to_dict(params)))
    assert dc_replace(PIPELINE, load_data=corrupt).main(["--params", str(path), "--stage", "rotnet"]) == 2
    assert "data_batch_1" in capsys.readouterr().err
