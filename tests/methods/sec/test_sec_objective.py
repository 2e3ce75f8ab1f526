"""SECLoss (Eq. 2.1): the sum of the enabled terms, the switches and the pooling choice."""

from __future__ import annotations

import pytest
import torch

from thesislib.crf import DenseCRFParams
from thesislib.methods.sec.losses import (
    NO_CUE,
    constrain_loss,
    constrain_targets,
    cue_onehot,
    downscale_image,
    expansion_loss,
    sec_probabilities,
    seeding_loss,
)
from thesislib.methods.sec.objective import SECLoss, SECLossConfig


def _batch(seed=0, b=2, k=4, h=6, w=6, image_side=12):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=g)
    labels = torch.zeros(b, k - 1)
    labels[0, 0] = labels[1, 2] = 1
    cues = torch.full((b, h, w), NO_CUE, dtype=torch.uint8)
    cues[:, 0, :3] = 0
    cues[0, 3, 3] = 1
    cues[1, 4, 4] = 3
    images = torch.randint(0, 256, (b, 3, image_side, image_side), generator=g).float()
    return logits, labels, cues, images


def test_total_is_the_sum_of_the_three_terms():
    logits, labels, cues, images = _batch()
    cfg = SECLossConfig(d_plus=0.9, d_bg=0.95, crf=DenseCRFParams.sec_train().scaled(2.0), crf_method="exact")
    out = SECLoss(cfg)(logits, labels, cues, images)
    probs = sec_probabilities(logits, 1e-4)
    seed = seeding_loss(probs, cue_onehot(cues, 4))
    expand = expansion_loss(probs, labels, 0.9, 0.0, 0.95)
    q = constrain_targets(logits, probs, downscale_image(images, (6, 6)), cfg.crf, method="exact")
    constrain = constrain_loss(probs, q)
    assert torch.allclose(out.seed, seed) and torch.allclose(out.expand, expand)
    assert torch.allclose(out.constrain, constrain, atol=1e-6)
    assert torch.allclose(out.loss, seed + expand + constrain, atol=1e-6)
    assert out.q is not None and not out.q.requires_grad and out.probs.shape == logits.shape


def test_switches_and_pooling():
    logits, labels, cues, images = _batch(1)
    only_seed = SECLoss(SECLossConfig(expand=False, constrain=False))(logits, labels, cues, None)
    assert only_seed.expand is None and only_seed.constrain is None and only_seed.q is None
    assert torch.allclose(only_seed.loss, only_seed.seed)
    no_seed = SECLoss(SECLossConfig(seed=False, constrain=False))(logits, labels, None, None)
    assert no_seed.seed is None
    probs = sec_probabilities(logits, 1e-4)
    for pooling, d in (("gmp", 0.0), ("gap", 1.0), ("gwrp", 0.7)):
        cfg = SECLossConfig(seed=False, constrain=False, pooling=pooling, d_plus=0.7)
        assert cfg.present_decay == d
        got = SECLoss(cfg)(logits, labels, None, None).loss
        assert torch.allclose(got, expansion_loss(probs, labels, d, 0.0, cfg.d_bg))
    with pytest.raises(ValueError):
        SECLossConfig(seed=False, expand=False, constrain=False)
    with pytest.raises(ValueError):
        SECLossConfig(pooling="avg")
    with pytest.raises(ValueError, match="cues"):
        SECLoss()(logits, labels, None, images)


def test_one_hot_and_label_map_cues_agree_and_low_precision_logits_work():
    logits, labels, cues, images = _batch(2)
    cfg = SECLossConfig(constrain=False)
    a = SECLoss(cfg)(logits, labels, cues, None).loss
    b = SECLoss(cfg)(logits, labels, cue_onehot(cues, 4), None).loss
    assert torch.equal(a, b)
    low = SECLoss(SECLossConfig(crf_method="hybrid"))(logits.bfloat16(), labels, cues, images)
    assert low.loss.dtype == torch.float32 and torch.isfinite(low.loss)


def test_loss_decreases_under_gradient_descent_on_the_logits():
    logits, labels, cues, images = _batch(3)
    logits.requires_grad_(True)
    loss_fn = SECLoss(SECLossConfig(crf_method="hybrid"))
    opt = torch.optim.SGD([logits], lr=0.5)
    first = None
    for _ in range(30):
        loss = loss_fn(logits, labels, cues, images).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
