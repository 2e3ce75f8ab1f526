"""AutoNovel's batches: the two-stream joint batch (B - b labelled + b unlabelled, the released OmniGlot /
ImageNet code) and metric-learning episodes that change from epoch to epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from thesislib.config import ConfigError, load_yaml
from thesislib.engine import cycling_rows
from thesislib.methods.autonovel import train as T
from thesislib.methods.autonovel.config import autonovel_config
from thesislib.methods.autonovel.data import NovelData, load_data
from thesislib.methods.autonovel.model import HEAD1, build_backbone
from thesislib.paths import project_root

CPU = torch.device("cpu")
TINY = dict(mlp_widths=(32, 32, 16), epochs=2, lr_milestones=(), rampup_epochs=1, batch_size=40, n_seeds=1,
            progress="none")


def test_cycling_rows_visit_every_sample_once_per_cycle():
    rows = np.concatenate([cycling_rows(7, 3, 5, s) for s in range(7)])   # 21 rows = 3 cycles of 7
    assert [sorted(rows[c * 7:(c + 1) * 7].tolist()) for c in range(3)] == [list(range(7))] * 3
    assert not np.array_equal(rows[:7], rows[7:14])                        # each cycle reshuffled
    assert np.array_equal(cycling_rows(7, 3, 5, 4), rows[12:15])           # a pure function of the step
    assert np.bincount(cycling_rows(2, 5, 0, 0), minlength=2).min() == 2   # b larger than the set: 2.5 cycles
    with pytest.raises(ValueError, match="no samples"):
        cycling_rows(0, 3, 0, 0)


def _record_joint(params, monkeypatch):
    seen: list[torch.Tensor] = []
    real = T.joint_loss

    def spy(out1, out2, target, p, epoch):
        seen.append(target.clone())
        return real(out1, out2, target, p, epoch)

    monkeypatch.setattr(T, "joint_loss", spy)
    data = load_data(params)
    state = build_backbone(params, {HEAD1: params.n_labelled_classes}).state_dict()
    T.joint(params, data, CPU, state)
    return data, seen


def test_two_stream_joint_batches_hold_exactly_b_unlabelled_images(monkeypatch):
    params = autonovel_config({**TINY, "unlabelled_batch_size": 8})
    data, seen = _record_joint(params, monkeypatch)
    n_lab = int((data.y_train < data.n_labelled).sum())
    spe = math.ceil(n_lab / 32)
    assert len(seen) == 2 * spe                                # an epoch is one pass over the labelled images
    assert all(int((t == -1).sum()) == 8 for t in seen)        # every batch: exactly b unlabelled rows
    assert [int((t >= 0).sum()) for t in seen[:spe - 1]] == [32] * (spe - 1)   # and B - b labelled ones
    assert sum(int((t >= 0).sum()) for t in seen[:spe]) == n_lab
    # merged shuffle (b = 0): the unlabelled count per batch is whatever the shuffle gives
    _, merged = _record_joint(autonovel_config(TINY), monkeypatch)
    assert len({int((t == -1).sum()) for t in merged}) > 1
    with pytest.raises(ConfigError, match="leaves no labelled"):
        autonovel_config({**TINY, "unlabelled_batch_size": 40})


def test_full_omniglot_uses_the_released_two_streams():
    p = autonovel_config(load_yaml(project_root() / "configs" / "autonovel" / "full_omniglot.yaml"))
    assert (p.batch_size, p.unlabelled_batch_size) == (100, 32)


def _metric_episodes(monkeypatch) -> list[list[tuple[float, ...]]]:
    """The images of every episode the metric stage trains on, per epoch (2 epochs of 2 episodes)."""
    p = autonovel_config({"data": "omniglot", "backbone": "vgg6", "pretrain": "metric", "n_labelled_classes": 8,
                          "metric_epochs": 2, "episode_classes": 4, "episode_support": 2, "episode_query": 2,
                          "progress": "none"})
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 32, 32, generator=g), torch.arange(8).repeat_interleave(4)
    seen: list[tuple[float, ...]] = []
    real = T.augment

    def spy(xe, params):
        seen.append(tuple(xe[:, 0, 0, 0].tolist()))
        return real(xe, params)

    monkeypatch.setattr(T, "augment", spy)
    T.pretrain_metric(p, NovelData(x, y, x[:0], y[:0], 8), CPU)
    return [seen[:2], seen[2:]]


def test_metric_episodes_change_every_epoch_and_rerun_the_same(monkeypatch):
    first = _metric_episodes(monkeypatch)
    assert len(first[0]) == len(first[1]) == 2
    assert first[0] != first[1]                        # epoch 1 draws new episodes (DTC's RandSubClassSampler)
    assert _metric_episodes(monkeypatch) == first      # a rerun with the same seed sees the same ones
