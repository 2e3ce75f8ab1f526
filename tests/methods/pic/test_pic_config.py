"""PICParams: configs build, Table 5.1 stages, the DMOL size decision, bad input."""

import pytest

from thesislib.config import ConfigError, load_yaml
from thesislib.methods.pic.config import PICParams, engine_config, experiment_id, pic_config
from thesislib.paths import project_root

CONFIGS = project_root() / "configs" / "pic"


def params_of(scale: str, **overrides) -> PICParams:
    return pic_config(load_yaml(CONFIGS / f"{scale}.yaml"), **overrides)


@pytest.mark.parametrize("scale", ["smoke", "full", "full_imagenet"])
def test_every_config_builds(scale):
    p = params_of(scale)
    assert p.nproc == 1 and p.chroma_size * p.chroma_factor == p.image_size


def test_smoke_yaml_is_the_dataclass_defaults():
    assert params_of("smoke") == PICParams(scale="smoke")


def test_full_configs_follow_the_thesis():
    cifar, imnet = params_of("full"), params_of("full_imagenet")
    assert (cifar.chroma_size, imnet.chroma_size) == (16, 32)
    assert [(s.width, s.blocks, s.stride, s.dilation) for s in cifar.embedding_stages()] == [
        (32, 2, 1, 1), (64, 2, 2, 1), (128, 2, 1, 1), (256, 3, 1, 2)]
    assert [(s.width, s.blocks, s.stride, s.dilation) for s in imnet.embedding_stages()] == [
        (64, 2, 1, 1), (128, 2, 2, 1), (256, 2, 2, 1), (512, 3, 1, 2), (512, 3, 1, 4)]
    for p in (cifar, imnet):
        assert (p.nr_resnet, p.nr_filters, p.n_mix, p.lr, p.beta1, p.beta2, p.batch_size) == (4, 160, 10, 1e-3, 0.95,
                                                                                              0.9995, 64)
        assert p.dmol_outputs == 60           # 10 x (1 + 2*2 + 1); the released code uses 80
    assert (cifar.lr_decay, imnet.lr_decay) == (0.99995, 0.999999)
    assert cifar.iterations == 150 * 782 and imnet.iterations == 20 * 20019
    assert experiment_id(cifar) == "cifar10/pic" and experiment_id(imnet, "gw-only") == "imagenet128/gw-only"


def test_engine_config_carries_the_fields():
    cfg = engine_config(params_of("full"))
    assert cfg.batch_size == 64 and cfg.max_steps == 117300 and cfg.ema_decay == 0.999


def test_bad_input_is_refused_by_name():
    with pytest.raises(ConfigError, match="gw_strides"):
        PICParams(gw_strides=(1, 1))                      # product 1, chroma_factor 2
    with pytest.raises(ConfigError, match="same, non-zero length"):
        PICParams(gw_widths=(16,))
    with pytest.raises(ConfigError, match="gw_aux_weight"):
        PICParams(baseline="aux", gw_aux_weight=0.0)
    with pytest.raises(ConfigError, match="gw_out"):
        PICParams(gw_aux_weight=1.0, gw_out=8)            # g^w head needs 24 channels for 4 components


def test_full_scale_without_data_fails_naming_the_layout(tmp_path, monkeypatch):
    """What `thesislib run pic --scale full` hits first (the notebook's setup cell)."""
    from thesislib.data import DatasetNotFoundError
    from thesislib.methods.pic.data import load_data

    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_data(params_of("full"))
    assert "THESISLIB_DATA" in str(err.value) and "cifar-10-batches-py" in str(err.value)
    with pytest.raises(DatasetNotFoundError) as err:
        load_data(params_of("full_imagenet"))
    assert "THESISLIB_DATA" in str(err.value) and "imagenet" in str(err.value)
