"""Annotation (step iii): the oracle's majority rule, a person's ids, JSON round trip, re-application."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from thesislib.methods.micro_annotation.annotation import (
    Annotation,
    ClassAnnotation,
    annotation_widget,
    human_annotation,
    majority_flags,
    simulated_annotation,
)
from thesislib.methods.micro_annotation.spectral import SpectralResult


def _result(labels: list[int], k: int, dim: int = 2) -> SpectralResult:
    labels_np = np.array(labels)
    means = np.eye(k, dim) if k <= dim else np.random.default_rng(0).uniform(size=(k, dim))
    return SpectralResult(np.array([0.0, 0.4, 0.8, 0.9]), k, labels_np, np.zeros((len(labels), k)), means,
                          np.bincount(labels_np, minlength=k))


def test_majority_rule_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    on = np.array([1, 1, 0, 0, 1, 0, 0, np.nan])
    flags, fraction = majority_flags(labels, on, 3)
    assert flags == (True, False, False)                   # 2/3 > 1/2; 1/2 is not a majority; 0/2
    assert np.allclose(fraction, [2 / 3, 0.5, 0.0])


def test_oracle_keeps_one_object_cluster_and_ignores_clusters_without_evidence():
    flags, _ = majority_flags(np.array([0, 0, 1, 1]), np.array([0.0, 1.0, 0.0, 0.0]), 2)
    assert flags == (True, False)                          # no majority anywhere: the best cluster stays
    flags, fraction = majority_flags(np.array([0, 1, 1]), np.array([np.nan, 0.0, 0.0]), 2)
    assert flags == (True, False) and np.isnan(fraction[0])


def test_simulated_and_human_annotations():
    clusterings = {"boat": _result([0, 0, 1, 1, 1], 2), "ball": _result([0, 1, 1], 2)}
    sim = simulated_annotation(clusterings, {"boat": np.array([0, 0, 1, 1, 0]), "ball": np.array([1, 1, 1])})
    assert sim.classes["boat"].is_object == (False, True) and sim.affected == ["boat"]
    assert sim.distractors() == {"boat": [0]} and sim.classes["boat"].source == "simulated"
    human = human_annotation(clusterings, {"boat": [0]})
    assert human.classes["boat"].is_object == (False, True) and human.classes["ball"].is_object == (True, True)
    with pytest.raises(KeyError, match="unknown class"):
        human_annotation(clusterings, {"bat": [0]})
    with pytest.raises(ValueError, match="clusters 0..1"):
        human_annotation(clusterings, {"boat": [2]})
    with pytest.raises(ValueError, match="at least one cluster"):
        human_annotation(clusterings, {"boat": [0, 1]})
    with pytest.raises(ValueError, match="evidence values"):
        simulated_annotation(clusterings, {"boat": np.zeros(3), "ball": np.zeros(3)})


def test_save_load_and_reapply(tmp_path):
    water = ClassAnnotation("boat", 0, np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), (False, True),
                            (0.0, 0.3), "human")
    annotation = Annotation({"boat": water, "ball": ClassAnnotation("ball", 1, np.eye(2, dtype=np.float32),
                                                                    (True, True), (0.0, 0.9), "human")},
                            {"pattern_layer": "trunk"})
    path = annotation.save(tmp_path / "a.json")
    again = Annotation.load(path)
    assert again.meta == {"pattern_layer": "trunk"} and again.affected == ["boat"]
    assert np.array_equal(again.classes["boat"].means, water.means)
    phi = torch.zeros(1, 2, 1, 2)
    phi[0, 0, 0, 0] = 1.0
    phi[0, 1, 0, 1] = 1.0
    cams = torch.tensor([[[[3.0, 1.0]], [[2.0, 2.0]]]])          # (1, 2 classes, 1, 2)
    out = again.apply(cams, phi, ["boat", "ball"])
    assert out[0, 0].tolist() == [[-float("inf"), 1.0]] and torch.equal(out[0, 1], cams[0, 1])
    (tmp_path / "bad.json").write_text('{"format": 99}')
    with pytest.raises(ValueError, match="not a readable micro-annotation file"):
        Annotation.load(tmp_path / "bad.json")


def test_widget_needs_ipywidgets_and_returns_the_same_mapping(monkeypatch):
    clusterings = {"boat": _result([0, 1], 2)}
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="distractors"):
        annotation_widget(clusterings)

    class Box:
        def __init__(self, *args, **kwargs):
            self.value = kwargs.get("value")
            self.children = args[0] if args else None

    fake = types.SimpleNamespace(Checkbox=Box, HBox=Box, VBox=Box, Label=Box)
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    panel, read = annotation_widget(clusterings)
    assert read() == {}
    checkboxes = [c for c in panel.children[0].children if hasattr(c, "value") and c.value is not None]
    checkboxes[1].value = True
    assert read() == {"boat": [1]}


def test_widget_with_real_ipywidgets_reads_the_ticked_boxes():
    widgets = pytest.importorskip("ipywidgets")   # in the test extra; skipped only outside `make test`
    clusterings = {"boat": _result([0, 1, 2], 3), "train": _result([0, 1], 2)}
    panel, read = annotation_widget(clusterings)
    assert isinstance(panel, widgets.VBox) and len(panel.children) == 2
    boxes = {row.children[0].value.split(":")[0]: [c for c in row.children[1:] if isinstance(c, widgets.Checkbox)]
             for row in panel.children}
    assert [len(b) for b in boxes.values()] == [3, 2] and read() == {}
    boxes["boat"][2].value = True
    boxes["train"][0].value = True
    assert read() == {"boat": [2], "train": [0]}
    boxes["train"][0].value = False
    assert read() == {"boat": [2]}
