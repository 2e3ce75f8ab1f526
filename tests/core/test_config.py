from dataclasses import dataclass, field
from typing import Literal

import pytest

from thesislib.config import ConfigError, from_mapping, parse_override, replace, to_dict


@dataclass(frozen=True)
class Inner:
    width: int = 8


@dataclass(frozen=True)
class Example:
    lr: float = 0.1
    epochs: int = 3
    name: str = "a"
    amp: bool = True
    milestones: tuple[int, ...] = (1, 2)
    clip: float | None = None
    mode: Literal["x", "y"] = "x"
    inner: Inner = field(default_factory=Inner)


def test_unknown_key_is_rejected_by_name_with_valid_list():
    with pytest.raises(ConfigError) as err:
        from_mapping(Example, {"lr": 0.2, "nosuch": 1})
    message = str(err.value)
    assert "'nosuch'" in message
    for name in ("lr", "epochs", "milestones", "inner"):
        assert name in message


def test_values_are_coerced_to_field_types():
    cfg = from_mapping(Example, {"lr": "0.5", "epochs": 4.0, "amp": "false", "milestones": [3, 4],
                                 "clip": "1.5", "inner": {"width": "16"}})
    assert cfg.lr == 0.5 and cfg.epochs == 4 and cfg.amp is False
    assert cfg.milestones == (3, 4) and cfg.clip == 1.5 and cfg.inner == Inner(16)


@pytest.mark.parametrize("bad", [{"epochs": 2.5}, {"amp": "maybe"}, {"mode": "z"}, {"epochs": True},
                                 {"inner": {"depth": 3}}])
def test_bad_values_raise(bad):
    with pytest.raises(ConfigError):
        from_mapping(Example, bad)


def test_config_is_frozen_and_replace_checks_names():
    cfg = from_mapping(Example)
    with pytest.raises(Exception):
        cfg.lr = 1.0  # type: ignore[misc]
    assert replace(cfg, epochs="7").epochs == 7
    with pytest.raises(ConfigError, match="'epoch'"):
        replace(cfg, epoch=7)


def test_to_dict_is_plain():
    assert to_dict(from_mapping(Example))["milestones"] == [1, 2]
    assert to_dict(from_mapping(Example))["inner"] == {"width": 8}


@pytest.mark.parametrize("text,expected", [("seed=3", ("seed", 3)), ("lr=1e-3", ("lr", 1e-3)),
                                           ("name=cifar10", ("name", "cifar10")), ("flag=true", ("flag", True)),
                                           ("seeds=[1, 2]", ("seeds", [1, 2]))])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["seed", "=3", "bad key=1"])
def test_parse_override_rejects_malformed(text):
    with pytest.raises(ConfigError):
        parse_override(text)


def test_load_params_file_reads_json_and_yaml_and_rejects_a_non_mapping(tmp_path) -> None:
    from thesislib.config import load_params_file

    (tmp_path / "p.json").write_text('{"seed": 3, "lr": 0.1}')
    (tmp_path / "p.yaml").write_text("seed: 3\nlr: 0.1\n")
    assert load_params_file(tmp_path / "p.json") == load_params_file(str(tmp_path / "p.yaml")) == {"seed": 3, "lr": 0.1}
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="bad.json: expected a mapping"):
        load_params_file(tmp_path / "bad.json")
