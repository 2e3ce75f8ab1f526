"""Table 3.5 (Places205 probes of the ImageNet-trained C, ``probe_data: places205``) and Table 3.1's STL-10 transfer
protocol (``transfer: [stl10_frozen]``: conv1-5 kept fixed, new fc layers trained on the labelled train split), on
the ImageNet / Places205 / STL-10 fixtures; the configs and the recorded ids of every row."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from thesislib.chapters import get_chapter
from thesislib.config import ConfigError, load_yaml
from thesislib.data.fixtures import write_stl10_fixture
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.data.scene_datasets import PLACES205_CLASSES, write_places205_fixture
from thesislib.methods.spotting_artifacts import experiments as E
from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config
from thesislib.methods.spotting_artifacts.data import chapter_data
from thesislib.methods.spotting_artifacts.evaluate import stl10_frozen
from thesislib.methods.spotting_artifacts.train import build_discriminator
from thesislib.replication import paper_numbers
from thesislib.runner import resolve_parameters, validate_parameters

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "spotting_artifacts"
CHAPTER = get_chapter("spotting_artifacts")
TINY = dict(image_size=16, encoder_channels=(4, 8, 8), disc_width=0.0625, disc_hidden=8, conv1_kernel=3,
            conv1_stride=1, ae_iterations=2, iterations=2, batch_size=4, n_unlabelled=8, probe_epochs=2, probe_dims=64,
            history_size=4, eval_batch_size=8, progress="none", n_seeds=1, probe_layers=["conv1", "conv5"],
            transfer_workers=0)


def _rows(metric: str) -> set[str]:
    return {n.experiment for n in paper_numbers("spotting_artifacts") if n.metric == metric}


# ------------------------------------------------------------------ Table 3.5: Places205 probes

def test_places_probe_data_is_validated() -> None:
    with pytest.raises(ConfigError, match="probe_data places205"):
        spotting_artifacts_config({**TINY, "data": "stl10", "probe_data": "places205"})
    with pytest.raises(ConfigError, match="streaming"):
        spotting_artifacts_config({**TINY, "data": "imagenet", "probe_data": "places205"})  # the cached probe
    with pytest.raises(ConfigError, match="probe_data"):
        spotting_artifacts_config({**TINY, "data": "imagenet", "probe_data": "places365"})


def test_full_places_config_is_full_yaml_with_places_probes_and_records_table_3_5s_rows() -> None:
    places = spotting_artifacts_config(load_yaml(CONFIGS / "full_places.yaml"))
    full = spotting_artifacts_config(load_yaml(CONFIGS / "full.yaml"))
    assert places == replace(full, probe_data="places205")  # the same training: its checkpoint_dir resumes it
    rows = _rows("probe_conv5")
    assert E.experiment_id(places) == "places/damage-repair" in rows
    assert E.random_experiment_id(places) == "places/random" in rows
    assert E.experiment_id(replace(places, probe_size=0)) == "places/damage-repair+probe128" not in rows
    results = [E.ReplicateResult(s, probe_ssl={"conv1": 0.3}, probe_random={"conv1": 0.1 + 0.01 * s}) for s in range(2)]
    out = E.aggregate(places, results)
    assert set(out) == {"places/damage-repair", "places/random"}
    assert out["places/random"]["probe_conv1"]["mean"] == pytest.approx(10.5)


def test_places205_probes_of_the_imagenet_c_end_to_end(tmp_path: Path) -> None:
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=3, n_val=2)
    write_places205_fixture(tmp_path, n_train=3, n_val=2)
    params = spotting_artifacts_config({**TINY, "data": "imagenet", "data_root": str(tmp_path),
                                        "probe_mode": "streaming", "probe_size": 20, "probe_data": "places205",
                                        "checkpoint_dir": str(tmp_path / "run")})
    data = chapter_data(params, 0)
    assert (len(data.probe_train), len(data.probe_test), data.probe_classes) == (9, 6, PLACES205_CLASSES)
    assert len(data.unlabelled) == 8 and data.unlabelled[0].shape == (3, 16, 16)  # C still trains on ImageNet
    result = E.run_replicate(params, 0, torch.device("cpu"))
    agg = E.aggregate(params, [result])
    assert set(agg) == {"places/damage-repair+probe20", "places/random+probe20"}
    assert {"probe_conv1", "probe_conv5", "random_probe_conv5", "spot_acc"} <= set(agg["places/damage-repair+probe20"])
    # the Places heads checkpoint apart from the ImageNet ones (a run resumed from the ImageNet run's directory)
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"ae", "dr", "probe-places205-ssl-s0",
                                                               "probe-places205-random-s0"}
    (tmp_path / "places205" / "trainvalsplit_places205" / "val_places205.csv").unlink()
    with pytest.raises(Exception, match="places205"):
        chapter_data(params, 0)


def test_places_run_resumes_the_finished_imagenet_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """full_places.yaml's promise: given the ImageNet run's checkpoint_dir, the two training stages resume finished
    (no training step runs again); only the Places205 probes train."""
    import thesislib.methods.spotting_artifacts.train as train_mod

    write_imagenet_fixture(tmp_path, n_classes=3, n_train=3, n_val=2)
    write_places205_fixture(tmp_path, n_train=3, n_val=2)
    base = {**TINY, "data": "imagenet", "data_root": str(tmp_path), "probe_mode": "streaming", "probe_size": 20,
            "probe_epochs": 1, "probe_layers": ["conv1"], "checkpoint_dir": str(tmp_path / "run")}
    imagenet = E.run_replicate(spotting_artifacts_config(base), 0, torch.device("cpu"))

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("a training step ran again")

    monkeypatch.setattr(train_mod, "autoencoder_loss", no_training)
    monkeypatch.setattr(train_mod, "discriminator_loss", no_training)
    places = E.run_replicate(spotting_artifacts_config({**base, "probe_data": "places205"}), 0, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(imagenet.disc.state_dict().values(),
                                                 places.disc.state_dict().values()))  # the same trained C


# ------------------------------------------------------------------ Table 3.1: frozen-conv STL-10 transfer

def _header_switches() -> dict[str, dict[str, object]]:
    """``{row: {param: value}}`` from full_stl10_ablations.yaml's ``(x) ...: -p k=v`` header lines, through the
    runner's own override path."""
    out = {}
    for line in (CONFIGS / "full_stl10_ablations.yaml").read_text().splitlines():
        m = re.match(r"#\s+\(([a-j])\).*-p (\S+)$", line)
        if m:
            values = resolve_parameters(CHAPTER, "full_stl10_ablations", [m.group(2)])
            params = validate_parameters(CHAPTER, values, "full_stl10_ablations")
            out[m.group(1)] = params
    return out


def test_every_table_3_1_ablation_reaches_its_row() -> None:
    base = validate_parameters(CHAPTER, resolve_parameters(CHAPTER, "full_stl10_ablations", []),
                               "full_stl10_ablations")
    rows = _rows("stl10_acc")
    assert base.transfer == ("stl10_frozen",) and base.drop_rate == 0.5 and base.fold_epochs == 200
    assert E.transfer_experiment_ids(base)["stl10_frozen"] == E.experiment_id(base) == "stl10/ablation-baseline"
    header = _header_switches()
    assert sorted(header) == list("abcdefghij") and len(E.TABLE31_SWITCHES) == 10
    reached = {"stl10/ablation-baseline"}
    for row, switch in E.TABLE31_SWITCHES.items():
        params = replace(base, **switch)
        run_id = E.transfer_experiment_ids(params)["stl10_frozen"]
        assert run_id == f"stl10/ablation-{row}" in rows, row
        assert header[row[0]] == params, row  # the header's -p line is exactly this switch
        reached.add(run_id)
    assert reached == {r for r in rows if r.startswith("stl10/ablation-")}  # every Table 3.1 row, one run each
    off = [replace(base, gated=False, history=False), replace(base, repair="none"), replace(base, drop_rate=0.2),
           replace(base, fold_epochs=50), replace(base, transfer_rescale=False), replace(base, fold_lr=1e-4),
           replace(base, fold_batch_size=64)]
    for params in off:
        assert E.transfer_experiment_ids(params)["stl10_frozen"] not in rows
    assert [E.transfer_experiment_ids(p)["stl10_frozen"] for p in off[-4:]] == [
        "stl10/ablation-baseline+ep50", "stl10/ablation-baseline+no-rescale", "stl10/ablation-baseline+lr0.0001",
        "stl10/ablation-baseline+bs64"]  # every off-protocol transfer setting is named in the id
    assert E.transfer_experiment_ids(replace(base, drop_rate=0.1, transfer_rescale=False))["stl10_frozen"] == \
        "stl10/ablation-g-drop-0.1+no-rescale"
    assert "stl10_frozen" not in E.transfer_experiment_ids(spotting_artifacts_config(load_yaml(CONFIGS / "full.yaml")))


def test_stl10_frozen_is_validated() -> None:
    with pytest.raises(ConfigError, match="stl10_frozen"):
        spotting_artifacts_config({**TINY, "data": "imagenet", "transfer": ["stl10_frozen"]})


def test_table_3_1_accuracy_merges_into_the_ablations_row() -> None:
    params = spotting_artifacts_config({**TINY, "data": "stl10", "drop_rate": 0.5, "transfer": ["stl10_frozen"]})
    results = [E.ReplicateResult(s, probe_ssl={"conv1": 0.4}, transfer={"stl10_frozen": 70.0 + s}) for s in range(2)]
    out = E.aggregate(params, results)
    assert set(out) == {"stl10/ablation-baseline"}
    assert out["stl10/ablation-baseline"]["stl10_acc"]["mean"] == pytest.approx(70.5)
    assert out["stl10/ablation-baseline"]["probe_conv1"]["mean"] == pytest.approx(40.0)


def test_stl10_frozen_end_to_end_on_a_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import thesislib.methods.spotting_artifacts.evaluate as evaluate_mod
    import thesislib.methods.spotting_artifacts.train as train_mod
    from thesislib.eval.transfer import FrozenFeatures, finetune_classifier

    seen = []

    def spy(net, train, test, device, cfg, run=None):
        out = finetune_classifier(net, train, test, device, cfg, run=run)
        seen.append((cfg, net, len(train), len(test), out["acc"]))
        return out

    monkeypatch.setattr(evaluate_mod, "finetune_classifier", spy)
    write_stl10_fixture(tmp_path, n_train=40, n_test=20, n_unlabeled=8, fold_size=8)
    params = spotting_artifacts_config({**TINY, "data": "stl10", "data_root": str(tmp_path), "drop_rate": 0.5,
                                        "transfer": ["stl10_frozen"], "fold_epochs": 1, "fold_batch_size": 8})
    torch.manual_seed(0)
    disc = build_discriminator(params)
    state = {k: v.clone() for k, v in disc.state_dict().items()}
    acc = stl10_frozen(params, disc, torch.device("cpu"), seed=0)
    assert all(torch.equal(state[k], v) for k, v in disc.state_dict().items())  # C itself untouched (a copy)
    cfg, net, n_train, n_test, fraction = seen[0]
    assert acc == pytest.approx(100.0 * fraction)  # the frozen transfer's test accuracy, in %
    assert cfg.freeze_backbone and isinstance(net.backbone, FrozenFeatures)  # conv1-5 kept fixed (the caption)
    assert (n_train, n_test) == (40, 20) and cfg.iterations == 40 // 8  # all labelled images, fold_epochs epochs
    assert net.new_layers()[0].in_features == 4 * 4 * disc.trunk.channels[4]  # no pool5: fc6 reads all of conv5
    result = E.run_replicate(params, 0, torch.device("cpu"))
    assert len(seen) == 2 and result.transfer["stl10_frozen"] == pytest.approx(100.0 * seen[1][-1])
    agg = E.aggregate(params, [result])
    assert agg["stl10/ablation-baseline+ep1+bs8"]["stl10_acc"] == pytest.approx(result.transfer["stl10_frozen"])
    assert "probe_conv1" in agg["stl10/ablation-baseline"]
    (tmp_path / "stl10" / "stl10_binary" / "test_X.bin").unlink()

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("the pre-training ran before the missing test split was reported")

    monkeypatch.setattr(train_mod, "autoencoder_loss", no_training)  # a late data error fails the test
    with pytest.raises(Exception, match="test_X.bin"):
        E.run_replicate(params, 0, torch.device("cpu"))
