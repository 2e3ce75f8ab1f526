"""Scarce annotations (thesis ch. 5): parameters, data, the phase-two target, the split, the temporal
buffer, Fig. 1, a short replicate, and the torchrun entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture
from thesislib.data.svhn import write_svhn_fixture
from thesislib.methods.scarce_annotations import experiments as E
from thesislib.methods.scarce_annotations.config import VARIANTS, scarce_config, variant_config
from thesislib.methods.scarce_annotations.data import labelled_subset, load_data
from thesislib.methods.scarce_annotations.losses import (
    TemporalTargets,
    cycle_subset,
    pi_loss,
    soft_cross_entropy,
    temporal_target,
    unlabelled_loss,
)
from thesislib.methods.scarce_annotations.model import classifier_model
from thesislib.methods.scarce_annotations.moons import anchor_points, border_stretch, consistency_weight, pi_moons
from thesislib.methods.scarce_annotations.train import (
    assign_labels,
    main,
    pimodel_dataset,
    run_stage,
    supervised_phase,
)
from thesislib.paths import project_root

TINY = dict(mlp_widths=(32, 32, 16), rotnet_epochs=1, rotnet_milestones=(1,), cycles=2, split_cycles=1,
            refine_epochs=2, head_epochs=1, inner_epochs=2, inner_milestones=(1,), pi_epochs=2, pi_rampup_epochs=1,
            labels_per_class=2, n_seeds=1, progress="none", batch_size=64)
CPU = torch.device("cpu")


def test_params_and_configs():
    p = scarce_config({"cycles": 3})
    assert variant_config(p, "no-split").split is False and variant_config(p, "no-reinit").reinit is False
    assert variant_config(p, "pi-model").mt_decay == 0.0 and variant_config(p, "mean-teacher").method == "pimodel"
    with pytest.raises(ConfigError, match="unknown variants"):
        scarce_config({"variants": ["alternating", "nope"]})
    with pytest.raises(ConfigError, match="nosuch"):
        scarce_config({"nosuch": 1})
    with pytest.raises(ConfigError, match="MLP backbone"):
        scarce_config({"data": "cifar10"})
    for scale in ("smoke", "full", "full_cifar100", "full_svhn"):
        q = scarce_config(load_yaml(project_root() / "configs" / "scarce_annotations" / f"{scale}.yaml"))
        assert all(v in VARIANTS for v in q.variants)
        if scale != "smoke":
            assert q.backbone == "resnet18" and q.frozen_stages == 2 and q.rotnet_epochs == 200 and q.nproc == 1


def test_temporal_target_and_loss_hand_computed():
    pseudo, prev = torch.tensor([1]), torch.tensor([[0.2, 0.8]])
    torch.testing.assert_close(temporal_target(pseudo, prev, 0.5), torch.tensor([[0.1, 0.9]]))
    torch.testing.assert_close(temporal_target(pseudo, prev, 0.0), torch.tensor([[0.0, 1.0]]))
    logits = torch.tensor([[0.0, 0.0]])                     # softmax (0.5, 0.5): CE = log 2 against any target
    assert float(soft_cross_entropy(logits, torch.tensor([[0.3, 0.7]]))) == pytest.approx(0.6931, abs=1e-4)
    # 0.5 CE(pseudo) + 0.5 KL(prev || p) + 0.5 H(prev) == the soft cross-entropy (the code's form of the thesis's loss)
    logits = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    pseudo, prev = torch.tensor([0, 1]), torch.tensor([[0.3, 0.7], [0.9, 0.1]])
    logp = torch.log_softmax(logits, 1)
    ce = torch.nn.functional.cross_entropy(logits, pseudo)
    kl = (prev * (prev.log() - logp)).sum(1).mean()
    h = -(prev * prev.log()).sum(1).mean()
    assert float(unlabelled_loss(logits, pseudo, prev, 0.5)) == pytest.approx(float(0.5 * ce + 0.5 * kl + 0.5 * h))


def test_cycle_subset_is_the_codes_three_fold_rotation():
    perm = torch.tensor([5, 0, 3, 8, 1, 7, 2, 6, 4])
    assert cycle_subset(perm, 0, True, 5).tolist() == [5, 0, 3, 8, 1, 7]
    assert cycle_subset(perm, 1, True, 5).tolist() == [8, 1, 7, 2, 6, 4]
    assert cycle_subset(perm, 2, True, 5).tolist() == [5, 0, 3, 2, 6, 4]
    assert cycle_subset(perm, 3, True, 5).tolist() == [5, 0, 3, 8, 1, 7]
    assert torch.equal(cycle_subset(perm, 5, True, 5), perm) and torch.equal(cycle_subset(perm, 0, False, 5), perm)
    n = 300   # every image is in exactly two of three consecutive cycles' subsets (two-thirds each)
    perm = torch.randperm(n)
    counts = torch.bincount(torch.cat([cycle_subset(perm, c, True, 9) for c in range(3)]), minlength=n)
    assert (counts == 2).all()


def test_temporal_targets_buffer():
    buf = TemporalTargets(3, 2, CPU)
    torch.testing.assert_close(buf.prev, torch.full((3, 2), 0.5))            # uniform at the start of a cycle
    buf.record(torch.tensor([0, 2]), torch.tensor([[1.0, 0.0], [0.2, 0.8]]))
    torch.testing.assert_close(buf.prev, torch.full((3, 2), 0.5))            # not before the epoch ends
    buf.end_epoch()
    torch.testing.assert_close(buf.prev, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]]))
    buf.record(torch.tensor([0, 0]), torch.tensor([[0.0, 1.0], [0.4, 0.6]]))  # seen twice (DDP padding): averaged
    buf.end_epoch()
    torch.testing.assert_close(buf.prev[0], torch.tensor([0.2, 0.8]))


def test_pi_loss_masks_unlabelled():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    p = torch.softmax(logits, 1)
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    loss, parts = pi_loss(logits, torch.tensor([0, -1]), p, q, 3.0)
    ce0 = float(torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0])))
    assert float(parts["ce"]) == pytest.approx(ce0)
    assert float(parts["mse"]) == pytest.approx(float(((p - q) ** 2).mean()))
    assert float(loss) == pytest.approx(ce0 + 3.0 * float(parts["mse"]))


def test_labelled_subset_and_pimodel_dataset():
    labels = torch.arange(10).repeat(20)
    idx = labelled_subset(labels, 3, 10, seed=1)
    assert len(idx) == 30 and torch.bincount(labels[idx]).tolist() == [3] * 10
    assert torch.equal(idx, labelled_subset(labels, 3, 10, seed=1))
    assert not torch.equal(idx, labelled_subset(labels, 3, 10, 2))
    with pytest.raises(ValueError, match="fewer than"):
        labelled_subset(labels, 21, 10, 0)
    p = scarce_config(TINY)
    d = load_data(p)
    lab = labelled_subset(d.train_labels, 2, 10, 0)
    ds = pimodel_dataset(d, lab, 0.25)
    y = ds.tensors[1]
    n_unl = len(d.train_labels) - 20
    assert (y == -1).sum() == n_unl and 0.2 < float((y >= 0).float().mean()) < 0.3
    assert torch.equal(torch.bincount(y[y >= 0]), torch.bincount(d.train_labels[lab]) * ((y >= 0).sum() // 20))


def test_real_format_loaders_and_missing_data(tmp_path: Path):
    write_cifar_fixture(tmp_path, "cifar100", n_train=40, n_test=10)
    d = load_data(scarce_config({"data": "cifar100", "backbone": "resnet18", "data_root": str(tmp_path)}))
    assert d.train_images.shape == (40, 3, 32, 32) and d.train_images.dtype == torch.uint8 and d.num_classes == 100
    write_svhn_fixture(tmp_path, n_train=20, n_test=10)
    d = load_data(scarce_config({"data": "svhn", "backbone": "resnet18", "data_root": str(tmp_path)}))
    assert d.train_images.shape == (20, 3, 32, 32) and d.test_labels.shape == (10,)
    with pytest.raises(DatasetNotFoundError, match="cifar10"):
        load_data(scarce_config({"data": "cifar10", "backbone": "resnet18", "data_root": str(tmp_path / "none")}))


def test_phase_one_head_only_and_labels_kept():
    p = scarce_config(TINY)
    d = load_data(p)
    rot, _ = run_stage("rotnet", p, CPU, data=d)
    model = classifier_model(p, rot.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lab = labelled_subset(d.train_labels, 2, 10, 0)
    supervised_phase(model, p, d, lab, CPU, head_only=True)
    after = model.state_dict()
    assert torch.equal(after["stages.2.0.weight"], before["stages.2.0.weight"])          # trunk untouched
    assert not torch.equal(after["heads.classifier.weight"], before["heads.classifier.weight"])
    assert all(q.requires_grad == (not n.startswith("stages.0") and not n.startswith("stages.1"))
               for n, q in model.named_parameters())                                     # trainability restored
    pseudo = assign_labels(model, p, d, lab, CPU)
    assert torch.equal(pseudo[lab], d.train_labels[lab]) and pseudo.shape == d.train_labels.shape


def test_short_replicate_and_verdicts():
    p = scarce_config({**TINY, "variants": ["labelled-only", "alternating", "no-reinit", "mean-teacher"]})
    r = E.run_replicate(p, 0, CPU, keep=True)
    assert set(r.metrics) == {"labelled-only", "alternating", "no-reinit", "mean-teacher"}
    assert all(0.0 <= m["acc"] <= 1.0 for m in r.metrics.values())
    ev = r.histories["alternating"].eval
    assert [e["cycle"] for e in ev] == [0, 1, 2]
    assert ev[-1]["test_acc"] == pytest.approx(r.metrics["alternating"]["acc"])
    assert 0.0 <= ev[1]["switch_rate"] <= 1.0
    assert {v.id for v in E.claim_verdicts([r, r])} == {"alt>labelled", "reinit>no-reinit", "alt>mt"}


def test_fig1_moons_border_stretches():
    anchors, labels = anchor_points()
    assert anchors.shape == (6, 2) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert consistency_weight(200) == 0.0 and consistency_weight(600) == pytest.approx(5.0)
    assert consistency_weight(1000) == 10.0 == consistency_weight(5000)
    run = pi_moons(iterations=600, every=100, n_per_moon=200, grid=40)
    assert sorted(run.frames) == [0, 100, 200, 300, 400, 500, 600]
    assert border_stretch(run, 600) > border_stretch(run, 200)


def test_torchrun_entry_point(tmp_path: Path, torchrun_gloo):
    params = scarce_config(TINY)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(to_dict(params)))
    out = tmp_path / "out"
    torchrun_gloo(main, ["--params", path, "--stage", "rotnet", "--output", out, "--device", "cpu"])
    torchrun_gloo(main, ["--params", path, "--stage", "alternating", "--init", out / "rotnet.pt", "--output", out,
                         "--device", "cpu"])
    init = torch.load(out / "rotnet.pt", weights_only=True)
    state = torch.load(out / "alternating.pt", weights_only=True)
    assert "heads.classifier.weight" in state and "heads.rotation.weight" not in state
    torch.testing.assert_close(state["stages.0.0.weight"], init["stages.0.0.weight"])     # frozen stage
    assert not torch.equal(state["stages.2.0.weight"], init["stages.2.0.weight"])         # trained stage
    history = json.loads((out / "metrics_alternating.json").read_text())["history"]
    assert [e["cycle"] for e in history["eval"]] == [0, 1, 2]
    assert main(["--params", str(path), "--stage", "pimodel"]) == 2                         # no --init
