"""The decathlon score (Rebuffi Ch. 3 eq. 1) on hand-computed errors, and the parameter account."""

from __future__ import annotations

import pytest
from torch import nn

from thesislib.eval.decathlon import (
    ParameterAccount,
    count_parameters,
    decathlon_score,
    decathlon_scores,
    e_max_from_baseline,
)


def test_finetune_baseline_scores_250_per_domain() -> None:
    baseline = {f"d{i}": 0.05 * (i + 1) for i in range(10)}
    e_max = e_max_from_baseline(baseline)
    assert e_max["d0"] == pytest.approx(0.1)
    assert decathlon_score(baseline, e_max) == pytest.approx(2500.0)


def test_hand_computed_terms() -> None:
    e_max = {"a": 0.4, "b": 0.2}
    # a: 1000 / 0.16 * (0.4 - 0.1)^2 = 562.5; b: error above E^max scores 0; perfect scores 1000
    terms = decathlon_scores({"a": 0.1, "b": 0.3}, e_max)
    assert terms["a"] == pytest.approx(562.5) and terms["b"] == 0.0
    assert decathlon_score({"a": 0.0, "b": 0.0}, e_max) == pytest.approx(2000.0)
    assert decathlon_score({"a": 0.1}, e_max, gamma=1.0) == pytest.approx(1000 / 0.4 * 0.3)


def test_errors() -> None:
    with pytest.raises(KeyError, match="c"):
        decathlon_score({"c": 0.1}, {"a": 0.2})
    with pytest.raises(ValueError, match="E\\^max = 0"):
        e_max_from_baseline({"a": 0.0})
    with pytest.raises(ValueError, match="fraction"):
        e_max_from_baseline({"a": 12.0})


def test_parameter_account_hand_case() -> None:
    # base network 100 parameters; 3 target domains
    finetune = ParameterAccount("finetune", source=100, trainable=(100, 100, 100), base=100)
    adapters = ParameterAccount("adapters", source=110, trainable=(12, 12, 12), base=100)
    feature = ParameterAccount("feature", source=100, trainable=(2, 2, 2), base=100)
    assert finetune.total == 400 and finetune.relative == 4.0
    assert adapters.total == 146 and adapters.relative == pytest.approx(1.46)
    assert feature.row() == ["feature", 2, 106, "1.06x"]


def test_count_parameters_counts_shared_once() -> None:
    lin = nn.Linear(3, 2)  # 8 parameters
    assert count_parameters(lin) == 8
    assert count_parameters([lin.weight, lin.weight, lin.bias]) == 8
