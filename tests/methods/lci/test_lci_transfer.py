"""LCI's VOC transfer (Table 4.4): the VOC07 classification path on a fixture through the shared
thesislib.eval.voc_transfer, the configs and the recorded ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, replace
from thesislib.data.selfsup_fixtures import write_voc07_fixture
from thesislib.methods.lci.config import lci_config
from thesislib.methods.lci.evaluate import transfer_results
from thesislib.methods.lci.experiments import ReplicateResult, aggregate, transfer_experiment_id
from thesislib.methods.lci.model import build_classifier

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "lci"
# an RGB C at 16 px, tiny everything
TINY_RGB = dict(data="imagenet", load_size=20, image_size=16, patch_size=8, border=1, classifier_width=0.0625,
                fc_dim=8, conv1_kernel=3, conv1_stride=1, probe_dims=64, progress="none", threads=1,
                eval_batch_size=64, transfer_workers=0)


def test_voc07_classification_path_on_a_fixture(tmp_path: Path, rescale_calls: list[dict]) -> None:
    calls = rescale_calls  # the path must rescale (transfer_rescale) and must not when switched off
    write_voc07_fixture(tmp_path, n_trainval=8, n_test=6, size=(24, 28))
    params = lci_config({**TINY_RGB, "data_root": str(tmp_path), "transfer": ["voc07_cls"], "voc_resize": 20,
                         "voc_crop": 16, "voc_test_crops": 2, "voc_cls_iterations": 3, "voc_cls_batch_size": 4})
    torch.manual_seed(0)
    classifier = build_classifier(params)
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    out = transfer_results(params, classifier, torch.device("cpu"), seed=0)
    assert set(out) == {"voc07_cls_map"} and 0.0 <= out["voc07_cls_map"] <= 100.0
    # C's five BN layers are absorbed into conv1-5 before the rescaling (thesis §4.4); C itself is untouched
    assert len(calls) == 1 and calls[0]["folded"] == 5
    r = calls[0]["rates_after"]
    assert len(calls[0]["layers"]) == 5 + 3 and float(r.max() / r.min()) < 1.1  # conv1-5, fc6-8
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())
    off = replace(params, transfer_rescale=False)
    transfer_results(off, build_classifier(off), torch.device("cpu"), seed=0)
    assert len(calls) == 1
    agg = aggregate(params, [ReplicateResult(0, transfer=out)])
    assert agg[transfer_experiment_id(params)]["voc07_cls_map"] == pytest.approx(out["voc07_cls_map"])


def test_transfer_params_and_ids() -> None:
    with pytest.raises(ConfigError, match="RGB"):
        lci_config({"transfer": ["voc07_cls"]})  # the grey smoke digits
    with pytest.raises(ConfigError, match="not among"):
        lci_config({**TINY_RGB, "transfer": ["stl10_folds"]})  # ch. 3's Table 3.2 protocol is not LCI's
    params = lci_config(load_yaml(CONFIGS / "full_voc07.yaml"))  # the thesis's ImageNet setting (96-px windows)
    assert transfer_experiment_id(params) == "voc/ours"
    assert transfer_experiment_id(replace(params, transfer_rescale=False)) == "voc/ours+no-rescale"
    assert transfer_experiment_id(replace(params, transforms=("rot",))) == "voc/imagenet-rot-pretrained"
    stl = replace(params, data="stl10", patch_size=48, probe_size=0, probe_test_crops=0)
    assert transfer_experiment_id(stl) == "voc/stl10-rot+warp+lci-pretrained"
    assert "voc/ours" not in aggregate(params, [ReplicateResult(0)])  # no transfer run: nothing recorded there


@pytest.mark.parametrize("name, task", [("full_voc07", "voc07_cls"), ("full_voc07_det", "voc07_det"),
                                        ("full_voc12_seg", "voc12_seg")])
def test_voc_configs_are_the_imagenet_run_plus_one_transfer(name: str, task: str) -> None:
    imnet = lci_config(load_yaml(CONFIGS / "full_imagenet.yaml"))
    params = lci_config(load_yaml(CONFIGS / f"{name}.yaml"))
    assert params.transfer == (task,) and transfer_experiment_id(params) == "voc/ours"
    assert replace(params, transfer=(), transfer_workers=imnet.transfer_workers) == imnet
    if name != "full_voc07":
        assert "NOT" in (CONFIGS / f"{name}.yaml").read_text()  # the difference to Fast R-CNN / FCN is stated


def test_missing_voc_data_is_reported_before_pre_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from thesislib.methods.lci import experiments

    def trained(*_: object, **__: object) -> None:
        raise AssertionError("pre-training started before the transfer data were checked")

    monkeypatch.setattr(experiments, "run_training", trained)
    monkeypatch.setattr(experiments, "chapter_data", trained)
    params = lci_config({**TINY_RGB, "data_root": str(tmp_path), "transfer": ["voc07_cls"]})
    with pytest.raises(Exception, match="voc"):
        experiments.run_replicate(params, 0, torch.device("cpu"))
