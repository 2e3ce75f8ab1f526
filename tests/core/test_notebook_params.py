from dataclasses import dataclass

import pytest

from thesislib.config import ConfigError
from thesislib.notebook import markdown_table, parameters


@dataclass(frozen=True)
class Params:
    seed: int = 0
    lr: float = 0.1
    output_dir: str = ""


def test_parameters_from_globals():
    p = parameters(Params, {"seed": 3, "lr": "0.5", "output_dir": "", "other": 1}, history=[])
    assert p == Params(3, 0.5, "")


def test_unknown_injected_parameter_is_rejected():
    history = ["import x", "seed = 0\nlr = 0.1\noutput_dir = ''", "# Parameters\nseed = 3\nnosuch = 1\n"]
    with pytest.raises(ConfigError, match="'nosuch'.*valid names are: lr, output_dir, seed"):
        parameters(Params, {"seed": 3, "lr": 0.1, "output_dir": "", "nosuch": 1}, history=history)


def test_known_injected_parameters_pass():
    history = ["# Parameters\nseed = 3\n"]
    assert parameters(Params, {"seed": 3, "lr": 0.1, "output_dir": ""}, history=history).seed == 3


def test_missing_parameter_in_cell_is_reported():
    with pytest.raises(ConfigError, match="does not define lr"):
        parameters(Params, {"seed": 3, "output_dir": ""}, history=[])


def test_markdown_table():
    text = markdown_table([["a", 1.234, None]], ["x", "y", "z"])
    assert text.splitlines() == ["| x | y | z |", "|---|---|---|", "| a | 1.23 | – |"]
