"""Scarce annotations (thesis ch. 5): parameters, data, the phase-two target, the split, the temporal
buffer, Fig. 1, a short replicate, and the torchrun entry point."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from thesislib.config import ConfigError, load_yaml, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.fixtures import write_cifar_fixture
from thesislib.data.svhn import write_svhn_fixture
from thesislib.methods.scarce_annotations import experiments as E
from thesislib.methods.scarce_annotations import train as T
from thesislib.methods.scarce_annotations.config import VARIANTS, scarce_config, variant_config
from thesislib.methods.scarce_annotations.data import labelled_subset, load_data
from thesislib.methods.scarce_annotations.losses import (
    TemporalTargets,
    cycle_subset,
    derived_seed,
    pi_loss,
    soft_cross_entropy,
    temporal_target,
    unlabelled_loss,
)
from thesislib.methods.scarce_annotations.model import classifier_model
from thesislib.methods.scarce_annotations.moons import (
    MoonsRun,
    anchor_points,
    border_stretch,
    consistency_weight,
    perturbation,
    pi_moons,
    two_moons,
)
from thesislib.methods.scarce_annotations.train import (
    assign_labels,
    main,
    pimodel_dataset,
    run_stage,
    supervised_phase,
)
from thesislib.paths import project_root

TINY = dict(mlp_widths=(32, 32, 16), rotnet_epochs=1, rotnet_milestones=(), cycles=2, split_cycles=1,
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
            # the code's milestones, stepped at the start of each epoch, act one epoch early (0-based here)
            assert q.rotnet_milestones == (59, 119, 159) and q.refine_epochs == q.head_epochs == 99
            # Mean Teacher: the CuriousAI CIFAR-10 settings
            assert (q.pi_weight, q.pi_rampup_epochs, q.mt_decay, q.pi_lr, q.pi_epochs, q.pi_rampdown_epochs,
                    q.pi_ce_norm) == (100.0, 5, 0.97, 0.05, 180, 210, "batch")
    # README "[14, 20]" = milestones_inner [lr milestone, number of epochs]: 20 epochs, one decay (code's 14)
    c100 = scarce_config(load_yaml(project_root() / "configs" / "scarce_annotations" / "full_cifar100.yaml"))
    assert c100.inner_epochs == 20 and c100.inner_milestones == (13,) and c100.split_cycles == 61


def test_params_reject_inconsistent_settings():
    with pytest.raises(ConfigError, match="resnet18 needs"):
        scarce_config({"backbone": "resnet18"})                                   # digits are for the MLP
    with pytest.raises(ConfigError, match="inner_milestones"):
        scarce_config({"inner_epochs": 6, "inner_milestones": (6,)})              # never reached
    with pytest.raises(ConfigError, match="inner_milestones"):
        scarce_config({"inner_epochs": 21, "inner_milestones": (14, 20, 7)})      # not increasing
    with pytest.raises(ConfigError, match="rotnet_milestones"):
        scarce_config({"rotnet_epochs": 12, "rotnet_milestones": (4, 8, 12)})
    with pytest.raises(ConfigError, match="pi_rampdown_epochs"):
        scarce_config({"pi_epochs": 25, "pi_rampdown_epochs": 10})
    assert scarce_config({"pi_epochs": 25, "pi_rampdown_epochs": 30}).pi_rampdown_epochs == 30
    with pytest.raises(ConfigError, match="mode refinement is a mode of Algorithm 1"):
        scarce_config({"method": "pimodel", "mode": "refinement"})               # was silently ignored
    with pytest.raises(ConfigError, match="mode refinement"):
        variant_config(scarce_config({"mode": "refinement"}), "mean-teacher")


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


def test_cycle_subset_redraws_the_permutation_every_three_cycles():
    n = 300
    subsets = [cycle_subset(n, 7, c, True, 9) for c in range(9)]
    assert all(len(s) == 2 * n // 3 and len(set(s.tolist())) == len(s) for s in subsets)
    for block in range(3):   # within a block of three cycles every image is held out exactly once
        counts = torch.bincount(torch.cat(subsets[3 * block:3 * block + 3]), minlength=n)
        assert (counts == 2).all()
    held_out = [frozenset(set(range(n)) - set(s.tolist())) for s in subsets]
    assert len(set(held_out)) == 9                       # nine distinct T_i, not three repeated ones
    assert torch.equal(cycle_subset(n, 7, 4, True, 9), subsets[4])                  # deterministic in (seed, cycle)
    assert not torch.equal(cycle_subset(n, 8, 0, True, 9), subsets[0])             # and depends on the seed
    assert torch.equal(cycle_subset(n, 7, 9, True, 9), torch.arange(n))            # the split has stopped
    assert torch.equal(cycle_subset(n, 7, 0, False, 9), torch.arange(n))
    assert len({derived_seed(0, c, 3) for c in range(100)}) == 100


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
    _, parts = pi_loss(logits, torch.tensor([0, -1]), p, q, 3.0, "batch")     # Mean Teacher code: / batch size
    assert float(parts["ce"]) == pytest.approx(ce0 / 2)


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
    assert any("running_mean" in k for k in before)                                      # the trunk has BatchNorm
    lab = labelled_subset(d.train_labels, 2, 10, 0)
    supervised_phase(model, p, d, lab, CPU, head_only=True)
    after = model.state_dict()
    # nothing but the classifier moves: weights and BatchNorm buffers (running stats, counters) of every stage
    changed = sorted(k for k in before if not torch.equal(after[k], before[k]))
    assert changed == ["heads.classifier.bias", "heads.classifier.weight"]
    assert all(q.requires_grad == (not n.startswith("stages.0") and not n.startswith("stages.1"))
               for n, q in model.named_parameters())                                     # trainability restored
    pseudo = assign_labels(model, p, d, lab, CPU)
    assert torch.equal(pseudo[lab], d.train_labels[lab]) and pseudo.shape == d.train_labels.shape
    supervised_phase(model, p, d, lab, CPU, head_only=False)                            # cycle 1: train mode
    assert not torch.equal(model.state_dict()["stages.2.1.running_mean"], before["stages.2.1.running_mean"])


def test_views_are_seeded_per_rank(monkeypatch: pytest.MonkeyPatch):
    x = torch.zeros(4, 1, 8, 8)
    p = scarce_config(TINY)
    views = []
    for rank in (0, 1, 0):
        monkeypatch.setattr(T, "get_rank", lambda rank=rank: rank)
        T.seed_views(5)
        views.append(T.augment(x, p))
    assert torch.equal(views[0], views[2]) and not torch.equal(views[0], views[1])


def test_mean_teacher_teacher_in_train_mode():
    p = variant_config(scarce_config(TINY), "mean-teacher")
    model = classifier_model(p, None)
    teacher = classifier_model(p, None).eval()
    seen = []
    teacher.register_forward_pre_hook(lambda m, a: seen.append(m.training))

    class Clock:
        trainer = type("Tr", (), {"ema": type("E", (), {"module": teacher})(), "epoch": 0})()

        def __call__(self) -> int:
            return 0

    loss, parts = T._pi_step(p, Clock())(model, (torch.rand(8, 1, 8, 8), torch.tensor([0, 1] + [-1] * 6)))
    assert seen == [True] and set(parts) == {"ce", "mse"} and torch.isfinite(loss)         # one head by default


def test_short_replicate_and_verdicts():
    p = scarce_config({**TINY, "variants": ["labelled-only", "alternating", "no-reinit", "no-temp", "no-split-no-temp",
                                            "mean-teacher"]})
    r = E.run_replicate(p, 0, CPU, keep=True)
    assert set(r.metrics) == set(p.variants)
    assert all(0.0 <= m["acc"] <= 1.0 for m in r.metrics.values())
    ev = r.histories["alternating"].eval
    assert [e["cycle"] for e in ev] == [0, 1]           # one record per cycle; no extra phase one at the end
    # the score is taken after the last phase two (the code's final test), recorded beside phase one's
    assert ev[-1]["test_acc"] == pytest.approx(r.metrics["alternating"]["acc"])
    assert {"phase_one_acc", "test_acc", "pseudo_acc", "switch_rate"} <= set(ev[-1])
    assert 0.0 <= ev[1]["switch_rate"] <= 1.0
    verdicts = {v.id: v for v in E.claim_verdicts([r, r])}
    assert set(verdicts) == {"alt>labelled", "reinit>no-reinit", "alt~mt", "split>no-split", "temp-helps"}
    assert verdicts["alt~mt"].expected == "no clear difference"
    split = next(c for c in E.CLAIMS if c[0] == "split>no-split")              # L_pseudo only on both sides
    assert all(variant_config(p, name).temp_weight == 0.0 for name in split[2:4])
    assert E.EXPLORATORY <= {c[0] for c in E.CLAIMS}


def test_fig1_moons_border_stretches():
    anchors, labels = anchor_points()
    assert anchors.shape == (6, 2) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(anchors[2], torch.tensor([2.9, 0.3]))            # the code's fixed points
    pts, cls = two_moons(5, 0.0, 0)                                              # noiseless: the code's curves
    torch.testing.assert_close(pts[:5, 1], torch.sin(pts[:5, 0]))
    torch.testing.assert_close(pts[5:], -pts[:5] + torch.tensor([math.pi / 2 + 0.1, 0.15]))
    assert cls.tolist() == [0] * 5 + [1] * 5
    assert perturbation(torch.zeros(1000, 2), 0.1).unique().tolist() == pytest.approx([-0.1, 0.0, 0.1])
    assert consistency_weight(200) == 0.0 and consistency_weight(600) == pytest.approx(5.0)
    assert consistency_weight(1000) == 10.0 == consistency_weight(5000)
    run = pi_moons(iterations=1200, every=200, n_per_moon=300, grid=40)
    assert sorted(run.frames) == sorted(run.point_acc) == [0, 200, 400, 600, 800, 1000, 1200]
    assert border_stretch(run, 1200) > border_stretch(run, 200)


def test_border_stretch_reads_the_nearest_grid_node():
    axis = torch.tensor([0.0, 1.0, 2.0])
    frame = torch.zeros(3, 3)
    frame[:, 1] = 1.0                                  # class 1 on the column x = 1 only
    run = MoonsRun(torch.tensor([[0.9, 0.0], [0.4, 0.0]]), torch.tensor([1, 0]), torch.zeros(6, 2),
                   torch.zeros(6, dtype=torch.long), axis, axis, {0: frame}, {0: 0.0})
    assert border_stretch(run, 0) == 1.0              # 0.9 -> node 1 (class 1), 0.4 -> node 0 (class 0)


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
    assert [e["cycle"] for e in history["eval"]] == [0, 1]
    assert main(["--params", str(path), "--stage", "pimodel"]) == 2                         # no --init
