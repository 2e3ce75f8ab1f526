"""DenseCRFParams: SEC presets, spatial scaling, validation, construction from mappings."""

from __future__ import annotations

import pytest

from thesislib.config import ConfigError, from_mapping
from thesislib.crf import SEC_TEST, SEC_TRAIN, DenseCRFParams


def test_sec_presets():
    assert (SEC_TEST.bilateral_weight, SEC_TEST.theta_alpha_px, SEC_TEST.theta_beta) == (10.0, 80.0, 13.0)
    assert (SEC_TEST.gaussian_weight, SEC_TEST.theta_gamma_px, SEC_TEST.iterations) == (3.0, 3.0, 10)
    assert SEC_TRAIN.spatial_scale == 12.0
    assert SEC_TRAIN.theta_alpha_px == pytest.approx(80 / 12)
    assert SEC_TRAIN.theta_gamma_px == pytest.approx(3 / 12)
    assert SEC_TRAIN.theta_beta == 13.0  # colour std is not scaled
    assert SEC_TRAIN == DenseCRFParams.sec_train() and SEC_TEST == DenseCRFParams.sec_test()
    assert SEC_TEST.normalization == "symmetric" and SEC_TEST.include_self


def test_scaled_divides_only_spatial_thetas():
    p = SEC_TEST.scaled(4.0)
    assert p.theta_alpha_px == 20.0 and p.theta_gamma_px == 0.75 and p.theta_beta == 13.0
    assert p.scaled(12.0) == SEC_TRAIN


@pytest.mark.parametrize("bad", [dict(theta_alpha=0.0), dict(spatial_scale=-1.0), dict(iterations=-1),
                                 dict(iterations=2.5), dict(gaussian_weight=-3.0),
                                 dict(normalization="l2")])
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        DenseCRFParams(**bad)


def test_from_mapping_coerces_and_rejects_unknown_keys():
    p = from_mapping(DenseCRFParams, {"iterations": "5", "spatial_scale": 12, "normalization": "after"})
    assert p.iterations == 5 and p.spatial_scale == 12.0 and p.normalization == "after"
    with pytest.raises(ConfigError, match="theta_alpha"):
        from_mapping(DenseCRFParams, {"theta_alfa": 3.0})
