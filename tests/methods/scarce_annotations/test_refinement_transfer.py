"""Scarce annotations (thesis ch. 5), the pieces of Tables 1 and 2: the refinement mode (soft labels, no split,
restart to the Mean Teacher network), Mean Teacher's two heads and logit distance, the ImageNet pre-training
stage and the MIT Indoor-67 / Places10 data of the transfer experiments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchvision

from thesislib.config import ConfigError, load_yaml
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture
from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.pixelcnn_fixtures import write_downsampled_imagenet_fixture
from thesislib.data.scene_datasets import write_mit67_fixture, write_places205_fixture
from thesislib.methods.scarce_annotations import experiments as E
from thesislib.methods.scarce_annotations import train as T
from thesislib.methods.scarce_annotations.config import VARIANTS, experiment_id, scarce_config, variant_config
from thesislib.methods.scarce_annotations.data import augment, load_data, model_input
from thesislib.methods.scarce_annotations.losses import (
    logit_distance,
    soft_pseudo_labels,
    temporal_target,
    unlabelled_loss,
)
from thesislib.methods.scarce_annotations.model import CLASS_HEAD, CONS_HEAD, classifier_model
from thesislib.paths import project_root
from thesislib.replication import paper_numbers

TINY = dict(mlp_widths=(32, 32, 16), rotnet_epochs=1, rotnet_milestones=(), cycles=2, split_cycles=2,
            refine_epochs=2, head_epochs=1, inner_epochs=2, inner_milestones=(1,), pi_epochs=2, pi_rampup_epochs=1,
            labels_per_class=2, n_seeds=1, progress="none", batch_size=64)
CPU = torch.device("cpu")


def test_soft_label_loss_hand_computed():
    soft, prev = torch.tensor([[0.7, 0.2, 0.1]]), torch.full((1, 3), 1 / 3)
    q = temporal_target(soft, prev, 0.5)
    torch.testing.assert_close(q, torch.tensor([[0.35 + 1 / 6, 0.1 + 1 / 6, 0.05 + 1 / 6]]))
    # logits (2, 0, 0): log softmax = (2, 0, 0) - log(e^2 + 2)
    lse = math.log(math.e ** 2 + 2)
    expected = -((0.35 + 1 / 6) * (2 - lse) + (0.1 + 1 / 6) * (-lse) + (0.05 + 1 / 6) * (-lse))
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    assert float(unlabelled_loss(logits, soft, prev, 0.5)) == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(1.2062, abs=1e-4)
    # = 0.5 CE(soft pseudo-label) + 0.5 KL(prev || p) + 0.5 H(prev): L_pseudo with a soft target
    logp = torch.log_softmax(logits, 1)
    ce_soft = -(soft * logp).sum()
    kl = (prev * (prev.log() - logp)).sum()
    h = -(prev * prev.log()).sum()
    assert expected == pytest.approx(float(0.5 * ce_soft + 0.5 * kl + 0.5 * h), abs=1e-6)
    # a one-hot soft label is the hard label
    hard = torch.tensor([0])
    assert float(unlabelled_loss(logits, torch.tensor([[1.0, 0.0, 0.0]]), prev, 0.5)) == pytest.approx(
        float(unlabelled_loss(logits, hard, prev, 0.5)))
    with pytest.raises(ValueError, match="soft pseudo-labels"):
        temporal_target(torch.rand(2, 4), torch.rand(2, 3), 0.5)


def test_soft_pseudo_labels_keep_the_true_labels():
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    soft = soft_pseudo_labels(probs, torch.tensor([1]), torch.tensor([0, 0, 1]))
    torch.testing.assert_close(soft, torch.tensor([[0.6, 0.4], [1.0, 0.0], [0.5, 0.5]]))


def test_logit_distance_hand_computed_and_reaches_both_heads():
    a = torch.tensor([[1.0, 2.0], [0.0, 1.0]], requires_grad=True)
    b = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    d = logit_distance(a, b)
    assert float(d.detach()) == pytest.approx((1 + 4 + 0 + 1) / 4)              # (1/(C·B)) Σ (z - z')²
    d.backward()
    torch.testing.assert_close(a.grad, -b.grad)
    torch.testing.assert_close(a.grad, torch.tensor([[0.5, 1.0], [0.0, 0.5]]))


def test_mean_teacher_has_one_head_by_default_and_two_as_an_option():
    p = scarce_config(TINY)
    mt = variant_config(p, "mean-teacher")
    assert p.mt_logit_distance < 0 and not mt.mt_two_heads                 # the code's default: one head
    assert set(classifier_model(mt, None).heads) == {CLASS_HEAD}
    two = variant_config(p, "mt-two-heads")
    assert two.mt_two_heads and two.mt_logit_distance == 0.01 and not variant_config(p, "pi-model").mt_two_heads
    assert not variant_config(scarce_config({**TINY, "mt_logit_distance": 0.01}), "alternating").mt_two_heads
    assert set(classifier_model(two, None).heads) == {CLASS_HEAD, CONS_HEAD}
    d = load_data(p)
    model, history = T.train_pimodel(two, d, CPU, None)
    assert "logit_distance" in history.train[-1] and set(model.heads) == {CLASS_HEAD, CONS_HEAD}
    # the consistency head is trained: it moves away from its initialisation
    fresh = classifier_model(two, None)
    assert not torch.equal(fresh.heads[CONS_HEAD].weight, model.heads[CONS_HEAD].weight)


class _Clock:
    """An EpochClock stand-in: epoch 0 and a teacher (the EMA module) for :func:`train._pi_step`."""

    def __init__(self, teacher: torch.nn.Module) -> None:
        self.trainer = type("Tr", (), {"ema": type("E", (), {"module": teacher})(), "epoch": 0})()

    def __call__(self) -> int:
        return 0


def _head_grads(p, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    model, teacher = classifier_model(p, None), classifier_model(p, None, seed=p.seed + 1)
    loss, _ = T._pi_step(p, _Clock(teacher))(model, (torch.rand(len(labels), 1, 8, 8), labels))
    loss.backward()
    g_cons = model.heads[CONS_HEAD].weight.grad
    g_class = model.heads[CLASS_HEAD].weight.grad
    return (torch.zeros_like(model.heads[CLASS_HEAD].weight) if g_class is None else g_class), g_cons


def test_two_head_step_consistency_reads_the_consistency_head():
    unlabelled = torch.full((8,), -1)
    # two heads with no tie (cost 0): the consistency MSE moves the consistency head only, never the classifier
    p = variant_config(scarce_config({**TINY, "mt_logit_distance": 0.0, "pi_rampup_epochs": 0}), "mean-teacher")
    g_class, g_cons = _head_grads(p, unlabelled)
    assert g_cons is not None and float(g_cons.abs().sum()) > 0
    assert float(g_class.abs().sum()) == 0
    # only the logit distance (no consistency, no label): the two heads get opposite gradients
    p = variant_config(scarce_config({**TINY, "mt_logit_distance": 1.0, "pi_weight": 0.0}), "mean-teacher")
    g_class, g_cons = _head_grads(p, unlabelled)
    assert float(g_class.abs().sum()) > 0
    torch.testing.assert_close(g_class, -g_cons)


def test_refinement_restarts_to_the_mean_teacher_network_and_never_splits(monkeypatch: pytest.MonkeyPatch):
    p = scarce_config(TINY)
    d = load_data(p)
    rot, _ = T.run_stage("rotnet", p, CPU, data=d)
    mt, _ = T.run_stage("pimodel", variant_config(p, "mean-teacher"), CPU, data=d, init=rot.state_dict())
    state = mt.state_dict()
    ref = variant_config(p, "mt-refined")
    assert ref.mode == "refinement" and ref.split                      # the split switch is on, the mode overrides it
    start = classifier_model(ref, state, seed=123, keep_heads=True)
    assert set(start.heads) == {CLASS_HEAD}                            # the consistency head is not part of N_t
    for k, v in start.state_dict().items():                           # Mean Teacher's weights, classifier included
        torch.testing.assert_close(v, state[k])
    with pytest.raises(ValueError, match="refines a Mean Teacher network"):
        T.run_stage("alternating", ref, CPU, data=d, init=rot.state_dict())      # RotNet weights: no classifier
    entering = []                                                      # N_t as each phase two starts
    phase_two = T.unsupervised_phase

    def spy(model, *args, **kwargs):
        entering.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return phase_two(model, *args, **kwargs)

    monkeypatch.setattr(T, "unsupervised_phase", spy)
    _, h = T.run_stage("alternating", ref, CPU, data=d, init=state)
    monkeypatch.setattr(T, "unsupervised_phase", phase_two)
    assert len(entering) == ref.cycles == 2
    for weights in entering[1:]:                     # every restart is the Mean Teacher network, classifier included
        assert set(weights) <= set(state)
        for k, v in weights.items():
            torch.testing.assert_close(v, state[k], msg=k)
    n = len(d.train_labels)
    assert [e["train_size"] for e in h.eval] == [n, n]                 # no random split in any cycle
    _, h_cycles = T.run_stage("alternating", variant_config(p, "alternating"), CPU, data=d, init=rot.state_dict())
    assert [e["train_size"] for e in h_cycles.eval] == [n // 3 + (2 * n // 3 - n // 3), n - n // 3]
    # soft labels: the refinement's phase two target is N_t's softmax, not its argmax
    lab = torch.tensor([0, 5])
    soft = T.assign_labels(start, ref, d, lab, CPU, soft=True)
    assert soft.shape == (n, 10) and torch.allclose(soft.sum(1), torch.ones(n))
    assert 0 < int(((soft > 0) & (soft < 1)).any(1).sum())


def test_replicate_refines_its_own_mean_teacher(monkeypatch: pytest.MonkeyPatch):
    p = scarce_config({**TINY, "variants": ["mt-refined", "mean-teacher", "mt-scratch", "fully-supervised"]})
    calls, run_stage = [], E.run_stage

    def spy(stage, params, device, **kwargs):
        model, history = run_stage(stage, params, device, **kwargs)
        calls.append((stage, params.pi_init, params.mode, kwargs.get("init"), model.state_dict()))
        return model, history

    monkeypatch.setattr(E, "run_stage", spy)
    r = E.run_replicate(p, 0, CPU)
    # Mean Teacher (RotNet init) is trained once, before the refinement that starts from its network
    mt = [c for c in calls if c[0] == "pimodel" and c[1] == "pretrained"]
    refined = [c for c in calls if c[2] == "refinement"]
    assert len(mt) == 1 and len(refined) == 1 and calls.index(mt[0]) < calls.index(refined[0])
    for k, v in mt[0][4].items():
        torch.testing.assert_close(refined[0][3][k], v)
    assert set(r.metrics) == {"mt-refined", "mean-teacher", "mt-scratch", "fully-supervised"}
    # full supervision sees every training label: 1,297 digits in batches of 64 -> 21 steps per epoch
    assert r.histories["fully-supervised"].train[-1]["steps"] == math.ceil(1297 / 64)
    assert list(r.metrics) == ["mt-refined", "mean-teacher", "mt-scratch", "fully-supervised"]   # the listed order
    assert "mean-teacher" in r.histories and "rotnet" in r.histories
    assert experiment_id(p, "mt-refined") == "digits-2/mt-refined"
    scratch = variant_config(p, "mt-scratch")
    assert scratch.pi_init == "scratch" and scratch.frozen_stages == 0


def test_imagenet32_pretraining_stage(tmp_path: Path):
    write_cifar_fixture(tmp_path, "cifar10", n_train=30, n_test=10)
    write_downsampled_imagenet_fixture(tmp_path, 32, n_train=12, n_val=4)
    p = scarce_config({**TINY, "data": "cifar10", "backbone": "resnet18", "resnet_width": 4, "pretrain": "imagenet",
                       "imagenet_epochs": 1, "imagenet_milestones": [], "imagenet_batch_size": 6,
                       "data_root": str(tmp_path), "labels_per_class": 1})
    model, history = T.run_stage("imagenet", p, CPU)
    assert model.heads["imagenet"].out_features == 1000 and history.train[-1]["steps"] == 2
    n_t = classifier_model(p, model.state_dict())
    torch.testing.assert_close(n_t.layer3[0].conv1.weight, model.layer3[0].conv1.weight)
    assert experiment_id(p, "alternating") == "cifar10-1-imagenet/alternating"
    ids = {x.experiment for x in paper_numbers("scarce_annotations")}
    assert {experiment_id(p.__class__(**{**p.__dict__, "labels_per_class": 10}), v)
            for v in ("fully-supervised", "labelled-only", "mean-teacher", "alternating")} <= ids


def test_imagenet_weights_for_full_size_scenes(tmp_path: Path):
    write_mit67_fixture(tmp_path, n_train=1, n_test=1)
    weights = tmp_path / "resnet18-f37072fd.pth"
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), weights)
    p = scarce_config({**TINY, "data": "mit67", "backbone": "resnet18_imagenet", "pretrain": "imagenet",
                       "imagenet_weights": str(weights), "image_size": 40, "crop_size": 32,
                       "data_root": str(tmp_path), "labels_per_class": 1})
    d = load_data(p)
    assert d.num_classes == 67 == p.num_classes and d.train_images.shape == (67, 3, 40, 40)
    model, history = T.run_stage("imagenet", p, CPU, data=d)
    torch.testing.assert_close(model.layer2[0].downsample[0].weight, reference.layer2[0].downsample[0].weight)
    assert history.train == []
    assert augment(d.train_images[:4], p).shape == (4, 3, 32, 32)
    torch.testing.assert_close(model_input(d.test_images[:1], p)[..., 0, 0],
                               model_input(d.test_images[:1, :, 4:36, 4:36], p.__class__(
                                   **{**p.__dict__, "image_size": 32}))[..., 0, 0])
    few = write_mit67_fixture(tmp_path / "few", classes=("bakery", "kitchen"))
    with pytest.raises(DatasetCorruptError, match="2 class folders"):
        load_data(p.__class__(**{**p.__dict__, "data_root": str(few.parent)}))
    with pytest.raises(ConfigError, match="imagenet_weights"):
        scarce_config({"data": "places10", "backbone": "resnet18_imagenet", "pretrain": "imagenet"})
    with pytest.raises(ConfigError, match="resnet18_imagenet"):
        scarce_config({"data": "mit67", "backbone": "resnet18"})


def test_places10_from_the_places205_release(tmp_path: Path):
    write_places205_fixture(tmp_path, categories=("a/abbey", "a/alley", "b/bakery/shop"))
    p = scarce_config({"data": "places10", "backbone": "resnet18_imagenet", "data_root": str(tmp_path),
                       "places_classes": ["bakery/shop", "abbey"], "image_size": 36, "crop_size": 32})
    d = load_data(p)
    assert d.num_classes == 2 and d.train_labels.tolist() == [1, 1, 1, 0, 0, 0] and d.test_labels.shape == (4,)


def test_places205_as_its_tar_extracts(tmp_path: Path):
    # imagesPlaces205_resize.tar.gz nests images256/ under data/vision/torralba/deeplearning/
    base = write_places205_fixture(tmp_path, categories=("a/abbey", "a/alley"), nested=True)
    assert (base / "data/vision/torralba/deeplearning/images256").is_dir() and not (base / "images256").exists()
    p = scarce_config({"data": "places10", "backbone": "resnet18_imagenet", "data_root": str(tmp_path),
                       "places_classes": ["abbey", "alley"], "image_size": 36, "crop_size": 32})
    assert load_data(p).train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    empty = tmp_path / "empty" / "places205" / "trainvalsplit_places205"
    empty.mkdir(parents=True)
    (empty / "train_places205.csv").write_text("")
    with pytest.raises(DatasetNotFoundError, match="data/vision/torralba/deeplearning"):
        load_data(p.__class__(**{**p.__dict__, "data_root": str(tmp_path / "empty")}))


def test_mt_scratch_trunk_is_seeded():
    p = variant_config(scarce_config(TINY), "mt-scratch")
    first = classifier_model(p, None).state_dict()
    torch.rand(1000)                                  # global RNG used by whatever ran before (another variant)
    second = classifier_model(p, None).state_dict()
    for k, v in first.items():
        torch.testing.assert_close(second[k], v, msg=k)
    other = classifier_model(variant_config(scarce_config({**TINY, "seed": 1}), "mt-scratch"), None).state_dict()
    assert not torch.equal(other["stages.0.0.weight"], first["stages.0.0.weight"])      # the seed decides the trunk


def test_table_configs_build_with_their_targets():
    ids = {x.experiment for x in paper_numbers("scarce_annotations")}
    root = project_root() / "configs" / "scarce_annotations"
    for name, rows in (("full_refine_cifar10", 3), ("full_refine_cifar100", 3), ("full_refine_cifar100_25", 3),
                       ("full_transfer_cifar10", 4), ("full_transfer_cifar100", 4), ("full_transfer_places10", 4),
                       ("full_transfer_mit67", 4)):
        q = scarce_config(load_yaml(root / f"{name}.yaml"))
        assert all(v in VARIANTS for v in q.variants) and len(q.variants) == rows
        assert {experiment_id(q, v) for v in q.variants} <= ids, name     # every run has its thesis number
        assert q.frozen_stages == 2 and q.mt_logit_distance < 0 and q.labels_per_class in (10, 25)
        assert (q.pretrain == "imagenet") == name.startswith("full_transfer")
