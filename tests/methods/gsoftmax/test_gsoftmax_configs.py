"""configs/gsoftmax/*.yaml build GSoftmaxParams and map onto the paper's experiment ids; runs derive from the params."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from thesislib.chapters import get_chapter
from thesislib.config import ConfigError, from_mapping, load_yaml
from thesislib.methods.gsoftmax.config import GSoftmaxParams, multilabel_runs, single_label_runs
from thesislib.methods.gsoftmax.protocol import PAPER_DATA_SIZES, experiment_id, protocol_deviations
from thesislib.methods.gsoftmax.train import checkpoint_dir
from thesislib.params import RUNNER_PARAMETERS
from thesislib.replication import paper_numbers

CHAPTER = get_chapter("gsoftmax")
CONFIG_DIR = CHAPTER.config_dir()
FIELDS = [f.name for f in dataclasses.fields(GSoftmaxParams)]
PAPER_IDS = {p.experiment for p in paper_numbers("gsoftmax")}
FULL = ["full", "full_cifar100", "full_malleable", "full_coco"]


def params_of(scale: str, **overrides) -> GSoftmaxParams:
    return from_mapping(GSoftmaxParams, load_yaml(CONFIG_DIR / f"{scale}.yaml"), scale=scale, **overrides)


def ids_of(params: GSoftmaxParams) -> set[str]:
    configs = single_label_runs(params) + multilabel_runs(params)
    return {experiment_id(c, *PAPER_DATA_SIZES.get(c.dataset, (None, None))) for c in configs}


def test_smoke_yaml_writes_out_every_default() -> None:
    smoke = load_yaml(CONFIG_DIR / "smoke.yaml")
    assert set(smoke) == set(FIELDS) - set(RUNNER_PARAMETERS)       # smoke.yaml: every default, explicit
    assert from_mapping(GSoftmaxParams, smoke, scale="smoke") == GSoftmaxParams()


@pytest.mark.parametrize("scale", ["smoke", *FULL])
def test_every_config_uses_only_notebook_parameters_and_has_a_header(scale: str) -> None:
    path = CONFIG_DIR / f"{scale}.yaml"
    text = path.read_text()
    assert set(load_yaml(path)) <= set(FIELDS) - set(RUNNER_PARAMETERS)
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))
    assert header.startswith("# G-softmax"), "a comment header names the setting"
    if scale != "smoke":
        assert "Paper" in header and "Cost" in header and "Data:" in header


def test_the_configured_scales_are_these() -> None:
    assert set(CHAPTER.scales()) == {"smoke", *FULL}


@pytest.mark.parametrize("scale", FULL)
def test_full_configs_are_the_papers_experiments(scale: str) -> None:
    params = params_of(scale, weights_path="/weights/resnet101-63fe2227.pth")
    configs = single_label_runs(params) + multilabel_runs(params)
    assert configs
    for config in configs:
        assert protocol_deviations(config, *PAPER_DATA_SIZES[config.dataset]) == []
    ids = ids_of(params)
    assert ids <= PAPER_IDS, ids - PAPER_IDS
    expected = {"full": 2, "full_cifar100": 2, "full_malleable": 2, "full_coco": 6}[scale]
    assert len(ids) == expected


def test_smoke_ids_never_collide_with_the_paper() -> None:
    ids = ids_of(params_of("smoke"))
    assert len(ids) == 9 and not ids & PAPER_IDS
    params = params_of("smoke")
    assert len(single_label_runs(params)) == 3 * 5 and len(multilabel_runs(params)) == 6 * 5   # 5 replicates
    assert "digits/mlp/gsoftmax(lam=1)" in ids and "mosaics/mlp/gsoftmax(lam=1,mu=0,sigma=0.5)" in ids


def test_full_coco_requires_the_imagenet_weights() -> None:
    with pytest.raises(ConfigError, match="weights_path"):
        params_of("full_coco")


def test_notebook_params_reject_bad_values() -> None:
    with pytest.raises(ConfigError, match="single_dataset: 'mnist' not among"):
        GSoftmaxParams(single_dataset="mnist")
    with pytest.raises(ConfigError, match="must include 'softmax'"):
        GSoftmaxParams(single_methods=("gsoftmax",))
    with pytest.raises(ConfigError, match="'nosuch'"):
        from_mapping(GSoftmaxParams, {"nosuch": 1})
    assert single_label_runs(GSoftmaxParams(single_dataset="none")) == []
    configs = single_label_runs(GSoftmaxParams(n_seeds=2, seed=4, checkpoint_root="/ck"))
    assert [c.seed for c in configs] == [4, 4, 4, 5, 5, 5]
    assert checkpoint_dir(configs[1]) == "/ck/digits_mlp_gsoftmax_lam=1/seed4"
    multi = multilabel_runs(GSoftmaxParams(n_seeds=2, seed=4))
    assert [(c.seed, c.method, c.mu_init, c.sigma_init) for c in multi[:3]] == \
        [(4, "softmax", 0.0, 1.0), (4, "gsoftmax", 0.0, 1.0), (4, "gsoftmax", 0.0, 0.5)]
    assert {c.seed for c in multi[6:]} == {5}
