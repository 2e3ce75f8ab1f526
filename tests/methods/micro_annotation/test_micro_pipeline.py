"""The chapter's configs and pipelines: parameters, the smoke run on scenes, the ILSVRC and VOC runs on
fixtures in the real formats, the dataset errors of the full configs, the paper numbers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from thesislib.config import ConfigError, load_yaml
from thesislib.data import DatasetNotFoundError, write_sbd_fixture, write_voc_fixture
from thesislib.data.imagenet_fixtures import fixture_wnids, write_imagenet_fixture
from thesislib.engine import load_checkpoint
from thesislib.methods.micro_annotation import Annotation, micro_params
from thesislib.methods.micro_annotation import experiments as smoke
from thesislib.methods.micro_annotation.config import cam_train_config, human_distractors, spectral_config
from thesislib.methods.micro_annotation.experiments import run_full
from thesislib.paths import project_root
from thesislib.replication import paper_numbers

CPU = torch.device("cpu")
CONFIGS = project_root() / "configs" / "micro_annotation"


def test_config_rejects_unknown_keys_and_checks_the_human_route():
    with pytest.raises(ConfigError, match="'rhoo'.*valid names are"):
        micro_params({"rhoo": 0.5})
    with pytest.raises(ValueError, match="distractors"):
        micro_params(annotator="human")
    cfg = micro_params(annotator="human", distractors=["boat:0", "boat:2"], classes=["a", "b"], seed=3, n_seeds=2)
    assert cfg.classes == ("a", "b") and cfg.seeds == [3, 4] and spectral_config(cfg, 3).seed == 3
    assert human_distractors(cfg) == {"boat": [0, 2]}
    with pytest.raises(ConfigError, match="class:cluster id"):
        micro_params(annotator="human", distractors=["boat"])
    with pytest.raises(ValueError, match="min_clusters"):
        micro_params(min_clusters=5)


@pytest.mark.parametrize("name", ["smoke", "full", "full_ilsvrc", "full_voc"])
def test_every_config_file_builds_the_config(name):
    cfg = micro_params(load_yaml(CONFIGS / f"{name}.yaml"))
    assert cfg.rho == 0.7 and cfg.min_clusters == 2 and cfg.max_clusters == 4 and cfg.tau == 0.2
    if name != "smoke":
        assert cfg.arch == "cam_vgg16" and cfg.pattern_layer == "trunk" and cfg.n_show == 12


def test_full_is_the_ilsvrc_config():
    assert load_yaml(CONFIGS / "full.yaml") == load_yaml(CONFIGS / "full_ilsvrc.yaml")


def test_every_field_reaches_a_derived_config_or_is_run_bookkeeping():
    cfg = micro_params(seed=7, epochs=3, batch_size=5, num_workers=1, progress="log", rho=0.6, min_clusters=3,
                       max_clusters=5, solver="lanczos")
    train = cam_train_config(cfg, 9, 23, checkpoint_dir="ck")
    assert (train.epochs, train.batch_size, train.seed, train.num_workers, train.progress) == (3, 5, 9, 1, "log")
    assert train.log_every == 5 and train.checkpoint_dir == "ck" and train.resume
    spectral = spectral_config(cfg, 9)
    assert (spectral.rho, spectral.min_clusters, spectral.max_clusters, spectral.solver, spectral.seed) == (
        0.6, 3, 5, "lanczos", 9)
    with pytest.raises(ConfigError, match="min_clusters"):
        micro_params(min_clusters=5, max_clusters=4)
    with pytest.raises(ConfigError, match="nproc = 0 is below"):
        micro_params(nproc=0)


@pytest.mark.parametrize("name", ["full_ilsvrc", "full_voc"])
def test_full_configs_fail_early_with_the_dataset_layout(name, tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    cfg = micro_params(load_yaml(CONFIGS / f"{name}.yaml"), output_dir=str(tmp_path / "out"))
    with pytest.raises(DatasetNotFoundError) as err:
        run_full(cfg, CPU)
    text = str(err.value)
    assert "THESISLIB_DATA" in text
    assert ("ILSVRC/Data/CLS-LOC" in text) if name == "full_ilsvrc" else ("VOCdevkit/VOC2012" in text)
    assert not (tmp_path / "out").exists()


def test_smoke_pipeline_on_a_few_scenes():
    cfg = micro_params(n_train=120, n_test=60, epochs=2, n_seeds=1)
    prep = smoke.prepare_scenes(cfg, 0, CPU)
    assert set(prep.clusterings) == {"boat", "train", "car", "ball"}
    for name, result in prep.clusterings.items():
        assert 2 <= result.k <= 4 and len(result.labels) == len(prep.patterns[name]) == len(prep.evidence[name])
        assert result.eigenvalues[0] == pytest.approx(0.0, abs=1e-9)
    annotation = smoke.annotate_scenes(prep, "simulated")
    result = smoke.evaluate_prep(prep, annotation, CPU)
    for name, row in result.metrics.items():
        for key, value in row.items():
            assert key == "images" or 0.0 <= value <= 1.0 or np.isnan(value), (name, key, value)
        if not annotation.classes[name].has_distractor:   # unchanged maps give unchanged numbers
            assert row["corloc_after"] == row["corloc_before"] and row["pixel_iou_after"] == row["pixel_iou_before"]
    human = smoke.annotate_scenes(prep, "human", {"boat": [0]})
    assert human.distractors() == {"boat": [0]}
    record = smoke.results_record([result])   # one seed: plain values, in percent
    assert record["scenes/boat/gap+micro"]["corloc"] == 100.0 * result.metrics["boat"]["corloc_after"]
    two = smoke.results_record([result, result])
    assert two["scenes/boat/gap+micro"]["corloc"]["n"] == 2 and two["scenes/boat/gap+micro"]["corloc"]["std"] == 0.0
    images, cams, heat = smoke.annotation_examples(prep, "boat", 4)
    assert images.shape[0] == 4 and heat.shape[:2] == (4, prep.clusterings["boat"].k) and cams.shape == (4, 16, 16)


def _fixture_config(root, data, out, **extra):
    values = {"data": data, "data_root": str(root), "arch": "cam_small", "input_size": 48, "epochs": 2,
              "batch_size": 8, "n_show": 4, "output_dir": str(out)}
    return micro_params({**values, **extra})


def test_ilsvrc_pipeline_end_to_end_on_the_fixture(tmp_path):
    write_imagenet_fixture(tmp_path, n_classes=3, n_train=8, n_val=2)
    out = tmp_path / "run"
    result = run_full(_fixture_config(tmp_path, "ilsvrc", out), CPU)
    exp = result.experiments
    assert 0.0 <= exp["ilsvrc/cam_small"]["top5_loc_error"] <= 100.0
    assert 0.0 <= exp["ilsvrc/cam_small+micro"]["top5_loc_error"] <= 100.0
    assert exp["ilsvrc/cam_small+micro/affected"]["n_classes"] == len(result.annotation.affected)
    assert set(result.annotation.classes) <= set(fixture_wnids(3))
    saved = Annotation.load(out / "annotation.json")
    assert saved.distractors() == result.annotation.distractors()
    assert sorted(p.stem for p in (out / "annotation_panels").iterdir()) == sorted(result.annotation.classes)
    # the saved annotation, re-applied with the saved network, gives the same evaluation
    again = run_full(_fixture_config(tmp_path, "ilsvrc", tmp_path / "run2",
                                     annotation_file=str(out / "annotation.json"),
                                     epochs=0, weights_path=str(_save_weights(out, tmp_path))), CPU)
    assert again.annotation.distractors() == result.annotation.distractors()
    assert again.experiments == result.experiments


def _save_weights(out, tmp_path):
    """The trained fixture network, saved as a plain state dict from its engine checkpoint."""
    checkpoints = sorted((out / "cam_checkpoints").iterdir())
    state = load_checkpoint(checkpoints[-1])["models"]["model"]
    path = tmp_path / "cam.pt"
    torch.save(state, path)
    return path


def test_voc_pipeline_end_to_end_on_the_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))
    write_voc_fixture(tmp_path, n_train=8, n_val=4, seed=0)
    write_sbd_fixture(tmp_path, n_train=8, n_val=4, seed=0)
    out = tmp_path / "run"
    result = run_full(_fixture_config(tmp_path, "voc", out), CPU)
    assert "voc12/cam_small-cues" in result.experiments and "voc12/cam_small-cues+micro/boat" in result.experiments
    cues = np.load(out / "cues_after.npz")
    assert len(cues.files) > 0
    cue = cues[cues.files[0]]
    assert cue.shape == (41, 41) and cue.dtype == np.uint8 and cue.max() <= 20
    # the files are SEC's foreground_cue_file: one map for every trainaug id SEC trains on
    from thesislib.methods.sec.cue_file import read_foreground_cues
    from thesislib.methods.sec.train import load_data, sec_config
    sec_data = load_data(sec_config(data="voc", voc_root=str(tmp_path / "voc"), sbd_root=str(tmp_path / "sbd"),
                                    network="deeplab_largefov", image_size=321))
    assert read_foreground_cues(out / "cues_before.npz", sec_data.train_ids).shape == (len(sec_data.train), 41, 41)
    assert json.loads((out / "annotation.json").read_text())["format"] == 1


def test_paper_numbers_match_the_thesis_text():
    numbers = {(n.experiment, n.metric): n.value for n in paper_numbers("micro_annotation")}
    assert numbers[("ilsvrc/gap-vgg", "top5_loc_error")] == 49.9
    assert numbers[("ilsvrc/gap-vgg+micro/affected", "n_classes")] == 182
    assert numbers[("ilsvrc/gap-vgg+micro/affected", "loc_accuracy_gain")] == 4.9
    assert numbers[("ilsvrc/gap-vgg/speedboat", "loc_accuracy")] == 42
    assert numbers[("ilsvrc/gap-vgg+micro/speedboat", "loc_accuracy")] == 80
    assert numbers[("ilsvrc/gap-vgg+micro/snowmobile", "loc_accuracy")] == 60
    assert numbers[("ilsvrc/gap-vgg+micro/flatworm", "loc_accuracy_gain")] == 38
    assert numbers[("voc12/sec+micro", "miou_val")] == 52.2 and numbers[("voc12/sec+micro", "miou_test")] == 53.0
    assert numbers[("voc12/sec+micro/boat", "iou_gain_val")] == 12.8
    assert numbers[("voc12/sec+micro/train", "iou_gain_test")] == 17.7
    # the VOC gains are consistent with the quoted SEC baseline: 50.7 + 1.5 = 52.2, 51.7 + 1.3 = 53.0
    assert numbers[("voc12/sec", "miou_val")] + 1.5 == pytest.approx(numbers[("voc12/sec+micro", "miou_val")])
    assert numbers[("voc12/sec", "miou_test")] + 1.3 == pytest.approx(numbers[("voc12/sec+micro", "miou_test")])
    assert len(numbers) == len(paper_numbers("micro_annotation"))


def test_sec_chain_trains_on_both_cue_sets():
    pytest.importorskip("thesislib.methods.sec")
    from thesislib.methods.micro_annotation.sec_chain import retrain_sec, scene_cues

    cfg = micro_params(n_train=128, n_test=32, epochs=4, n_seeds=1)
    prep = smoke.prepare_scenes(cfg, 0, CPU)
    annotation = smoke.annotate_scenes(prep, "simulated")
    assert "boat" in annotation.affected
    before, after = scene_cues(prep, annotation, CPU)
    assert before.shape == after.shape == (128, 16, 16) and before.dtype == torch.uint8
    affected = {prep.class_names.index(n) + 1 for n in annotation.affected}
    # only the foreground claims of the affected classes change (step iv re-thresholds their maps, so
    # regions can leave or join); the cues of every other class are untouched
    assert bool((before != after).any())
    for label in set(range(1, prep.train.num_classes + 1)) - affected:
        assert torch.equal(before == label, after == label)
    chain = retrain_sec(prep, annotation, CPU, iterations=3, batch_size=16)
    assert set(chain.evaluation) == {"before", "after"}
    assert 0.0 <= chain.iou("train", "after") <= 100.0 or np.isnan(chain.iou("train", "after"))


def test_ilsvrc_runs_that_depart_from_the_thesis_never_get_paper_ids():
    from thesislib.methods.micro_annotation.annotation import Annotation, ClassAnnotation
    from thesislib.methods.micro_annotation.config import micro_params
    from thesislib.methods.micro_annotation.ilsvrc import ilsvrc_deviations

    protocol = micro_params(load_yaml(CONFIGS / "full_ilsvrc.yaml"))

    def annotated(source):
        entry = ClassAnnotation("n0", 0, np.zeros((2, 3), np.float32), (True, False), (0.0, 0.5), source)
        return Annotation({"n0": entry}, {})

    assert ilsvrc_deviations(protocol, annotated("human")) == []
    assert ilsvrc_deviations(protocol, annotated("simulated")) == ["oracle"]
    subset = dataclasses.replace(protocol, classes=("n0", "n1"), max_val=50, epochs=2, tau=0.3)
    assert ilsvrc_deviations(subset, annotated("human")) == ["tau=0.3", "classes=2", "max_val=50", "trained-here"]


def test_full_runs_reject_a_distractor_entry_for_a_class_not_clustered():
    from thesislib.methods.micro_annotation.full import cluster_classes

    config = micro_params(annotator="human", distractors=["boot:0"])
    with pytest.raises(KeyError, match="'boot'.*clustered classes are: boat"):
        cluster_classes(None, [("boat", 3, lambda: iter(()))], lambda truth, patterns: None, config, CPU, "voc")
