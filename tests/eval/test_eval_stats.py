import math

import numpy as np
import pytest
import torch
from scipy import stats

from thesislib.eval.stats import paired_ttest, pearson, pearson_pvalue


def test_paired_ttest_hand_computed():
    # d = (2, 3, 1, 2): mean 2, sample variance 2/3, t = 2 / sqrt((2/3) / 4)
    t, p = paired_ttest([3, 5, 4, 6], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert t == pytest.approx(2 / math.sqrt(2 / 3 / 4))
    assert p == pytest.approx(2 * stats.t.sf(t, df=3))
    assert 0.016 < p < 0.017
    with pytest.raises(ValueError):
        paired_ttest([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        paired_ttest([1, float("nan")], [1, 2])


def test_pearson_hand_computed():
    # dx = (-1, 0, 1), dy = (-1, 1, 0): rho = 1 / 2; n = 3: t = 1/sqrt(3) on 1 d.o.f. (Cauchy),
    # p = 2 (1/2 - atan(1/sqrt(3)) / pi) = 2/3
    rho, p = pearson([1, 2, 3], [1, 3, 2])
    assert rho == pytest.approx(0.5) and p == pytest.approx(2 / 3)


# Table VI of G-softmax: (rho, p), reproduced with n = 5 (reading note 002 §2.9)
TABLE_VI = [(0.9472, 0.0144), (0.9791, 0.0036), (0.9636, 0.0083),
            (0.9635, 0.0083), (0.9045, 0.0349), (0.9702, 0.0062)]


def _data_with_correlation(rho, n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x = (x - x.mean()) / np.linalg.norm(x - x.mean())
    z = rng.normal(size=n)
    z = z - z.mean()
    z = z - (z @ x) * x
    z /= np.linalg.norm(z)
    return x, rho * x + math.sqrt(1 - rho ** 2) * z


def test_table_vi_first_entry_exactly():
    x, y = _data_with_correlation(0.9472)
    rho, p = pearson(x, y)
    assert rho == pytest.approx(0.9472, abs=1e-12)
    assert round(p, 4) == 0.0144
    assert round(pearson_pvalue(0.9472, 5), 4) == 0.0144
    assert round(pearson_pvalue(0.9472, 6), 4) == 0.0041  # n = 6 would not match the table


@pytest.mark.parametrize("rho,p", TABLE_VI)
def test_table_vi_all_entries_within_rounding(rho, p):
    # rho and p are printed to 4 decimals: some rho in [rho - 5e-5, rho + 5e-5] must give p
    lo, hi = pearson_pvalue(rho + 5e-5, 5), pearson_pvalue(rho - 5e-5, 5)
    assert lo - 5e-5 <= p <= hi + 5e-5
    assert pearson(*_data_with_correlation(rho))[1] == pytest.approx(pearson_pvalue(rho, 5))
