"""SECParams, the chapter's one parameter declaration: configs, ablations and what every field reaches."""

from __future__ import annotations

import dataclasses
import itertools
import typing
import warnings

import pytest
import torch

from thesislib.chapters import get_chapter
from thesislib.config import ConfigError, from_mapping, load_yaml
from thesislib.methods.sec.config import (
    ABLATIONS,
    SECParams,
    config_for,
    cue_config,
    deviations,
    engine_config,
    experiment_id,
    localizer_config,
)
from thesislib.methods.sec.data import load_data
from thesislib.methods.sec.model import build_network
from thesislib.methods.sec.train import make_optimizer
from thesislib.params import RUNNER_PARAMETERS
from thesislib.replication import paper_numbers

CHAPTER = get_chapter("sec")
CONFIG_DIR = CHAPTER.config_dir()
FIELDS = [f.name for f in dataclasses.fields(SECParams)]


def params_of(scale: str, **overrides) -> SECParams:
    return from_mapping(SECParams, load_yaml(CONFIG_DIR / f"{scale}.yaml"), scale=scale, **overrides)


@pytest.mark.parametrize("scale", ["smoke", "full"])
def test_configs_use_the_params_names_and_have_a_header(scale):
    path = CONFIG_DIR / f"{scale}.yaml"
    assert set(load_yaml(path)) <= set(FIELDS) - set(RUNNER_PARAMETERS)
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), path.read_text().splitlines()))
    assert header.startswith("# SEC")
    if scale == "full":
        assert "2.4.1" in header and "TITAN-X" in header and "THESISLIB_DATA" in header and "nproc" in header


def test_smoke_yaml_is_the_dataclass_defaults():
    assert params_of("smoke") == SECParams()


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
    assert experiment_id(config_for(SECParams(), "sec-gap")) == "scenes/small-fcn/sec-gap"


def test_config_for_applies_the_ablation_and_the_replicate_seed():
    params = SECParams(seed=3, n_seeds=2)
    assert params.seeds == [3, 4]
    seed_only = config_for(params, "seed", 4)
    assert (seed_only.seed_loss, seed_only.expand_loss, seed_only.constrain_loss) == (True, False, False)
    assert seed_only.seed == 4 and seed_only.n_seeds == 1
    assert config_for(params, "sec-gmp").loss_config().present_decay == 0.0
    assert config_for(params, "expand+constrain").seed_loss is False
    # a configuration's switches win over the params' own
    assert config_for(SECParams(pooling="gap", expand_loss=False), "sec").loss_config().present_decay < 1.0
    with pytest.raises(ConfigError, match="nosuch"):
        SECParams(ablations=("sec", "nosuch"))
    with pytest.raises(ConfigError, match="unknown SEC configuration"):
        config_for(params, "nosuch")
    with pytest.raises(ConfigError, match="nproc = 0 is below"):
        SECParams(nproc=0)
    voc = config_for(SECParams(data="voc", network="deeplab_largefov", image_size=321, data_root="/d"), "sec")
    assert voc.roots() == ("/d/voc", "/d/sbd") and voc.train_crf_scale() == 12.0
    assert SECParams(data_root="/d", sbd_root="/s").roots() == ("/d/voc", "/s")
    assert set(ABLATIONS) >= {"sec", "sec-gmp", "sec-gap"}


# --------------------------------------------------------------------------------------------
# every field reaches something derived from it, or is run bookkeeping (config.py's docstring)

BOOKKEEPING = {"n_seeds", "scale", "output_dir", "device", "threads", "nproc", "ablations", "data_root"}
LOSS = {"seed_loss", "expand_loss", "constrain_loss", "pooling", "d_plus", "d_minus", "d_bg", "fg_mass_fraction",
        "bg_mass_fraction", "prob_floor", "q_floor", "seed_normalization", "seed_background", "crf_method",
        "crf_unary", "crf_grad", "crf_iterations", "crf_scale", "image_size"}
ENGINE = {"seed", "amp", "progress", "num_workers", "batch_size", "iterations"}
LOCALIZER = {"localizer_iterations", "localizer_batch_size", "localizer_optimizer", "localizer_lr"}
CUES = {"cam_tau", "bg_fraction", "saliency_layer", "saliency_classes", "saliency_median"}
TEST = {"test_crf_scale"}
NETWORK = {"network", "width", "dropout"}
OPTIMIZER = {"optimizer", "lr", "momentum", "weight_decay", "caffe_lr_mult"}
SCENES = {"n_train", "n_test", "normalization"}
# read where they are used (checked by the tests named): data paths and splits (test_sec_train's VOC
# tests), cue files (the cue-file tests), weights (test_weights_vgg), the lr schedule and evaluation
# switches (the training and evaluation tests)
READ_DIRECTLY = {"data", "voc_root", "sbd_root", "train_split", "eval_split", "max_eval_images", "weights_path",
                 "cue_source", "cue_path", "cue_list", "foreground_cue_file", "localizer", "lr_step", "lr_gamma",
                 "test_crf", "test_crf_method", "eval_batch_size"}


def _changed(name: str):
    f = next(f for f in dataclasses.fields(SECParams) if f.name == name)
    value = f.default
    kind = typing.get_type_hints(SECParams)[name]
    if typing.get_origin(kind) is typing.Literal:
        return next(v for v in typing.get_args(kind) if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 2 if name != "image_size" else 40
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if name == "saliency_layer":
        return "trunk.conv1"
    raise AssertionError(f"no perturbation for {name}")


def _views(p: SECParams) -> dict[str, object]:
    model = build_network(p, 5)
    opt = make_optimizer(model, p)
    return {"loss": p.loss_config(), "engine": engine_config(p), "localizer": localizer_config(p),
            "cue": cue_config(p), "test": p.test_crf_params(),
            "network": (type(model).__name__, sum(x.numel() for x in model.parameters()),
                        [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]),
            "optimizer": (type(opt).__name__, [(g["lr"], g["weight_decay"], g.get("momentum"), g.get("betas"))
                                               for g in opt.param_groups])}


def test_every_field_is_derived_or_bookkeeping():
    groups = {"loss": LOSS, "engine": ENGINE, "localizer": LOCALIZER, "cue": CUES, "test": TEST,
              "network": NETWORK, "optimizer": OPTIMIZER}
    covered = set().union(*groups.values(), BOOKKEEPING, SCENES, READ_DIRECTLY, {"ablations"})
    assert covered == set(FIELDS), set(FIELDS) ^ covered
    for view, names in groups.items():
        for name in names:
            base = SECParams(optimizer="sgd") if name == "momentum" else SECParams()   # Adam has no momentum
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")                                     # DeepLab from random init
                changed, ref = _views(dataclasses.replace(base, **{name: _changed(name)})), _views(base)
            assert changed[view] != ref[view], f"{name} does not reach the {view} config"
    data = load_data(SECParams(n_train=4, n_test=2))
    for name, value in (("n_train", 5), ("n_test", 3), ("normalization", "caffe")):
        other = load_data(dataclasses.replace(SECParams(n_train=4, n_test=2), **{name: value}))
        assert (len(other.train), len(other.test), other.normalization) != \
            (len(data.train), len(data.test), data.normalization) or \
            not torch.equal(other.train[0]["image"], data.train[0]["image"]), name
