"""Review R1 item 4: under DDP, LSD-C's pairwise graph and BCE cover the global batch, and the ranks
draw different augmentations. Two gloo processes against the one-process computation."""

from __future__ import annotations

import torch
import torch.distributed as dist

from thesislib.engine.distributed import all_gather_rows, get_rank, get_world_size, init_distributed
from thesislib.methods.lsdc.config import lsdc_config
from thesislib.methods.lsdc.losses import lsdc_loss, pseudo_adjacency
from thesislib.selfsup import Composite, consistency_mse, mix_targets, pairwise_bce
from thesislib.selfsup.stages import decorrelate_ranks

B, D, K = 8, 5, 3


def _global_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, B, D, generator=g)               # clean view and the two composite views
    feats = torch.randn(B, 4, generator=g)
    w = torch.randn(D, K, generator=g)
    perms = torch.stack([torch.randperm(B // 2, generator=g) for _ in range(4)])   # per-rank local perms
    weights = torch.softmax(torch.randn(4, B // 2, generator=g), 0)
    return x, feats, w, perms, weights


def _reference(x, feats, w, perms, weights, params, world):
    """The one-process loss over the global batch, and the gradient of the weights."""
    w = w.clone().requires_grad_(True)
    p, p1, p2 = (torch.softmax(v @ w, 1) for v in x)
    a = pseudo_adjacency(feats, p.detach(), params)
    b = B // world
    glob = Composite(x[1], torch.cat([perms + r * b for r in range(world)], 1), torch.cat([weights] * world, 1))
    loss = pairwise_bce(p, p1, mix_targets(a, glob)) + 0.5 * consistency_mse(p1, p2)
    loss.backward()
    return loss.detach(), w.grad


def _worker(argv: list[str]) -> int:
    init_distributed("cpu")
    rank, world = get_rank(), get_world_size()
    params = lsdc_config({"k": 3, "batch_size": B})
    x, feats, w0, perms, weights = _global_inputs()
    ref_loss, ref_grad = _reference(x, feats, w0, perms, weights, params, world)
    b = B // world
    rows = slice(rank * b, (rank + 1) * b)
    w = w0.clone().requires_grad_(True)
    p, p1, p2 = (torch.softmax(v[rows] @ w, 1) for v in x)
    a = pseudo_adjacency(all_gather_rows(feats[rows]), all_gather_rows(p.detach()), params)
    loss, metrics = lsdc_loss(p, p1, p2, a, Composite(x[1][rows], perms, weights), 0.5, world=world, rank=rank)
    loss.backward()
    grad = w.grad.clone()
    dist.all_reduce(grad)
    grad /= world                                          # what DDP does to a parameter's gradient
    torch.testing.assert_close(grad, ref_grad)
    torch.testing.assert_close(metrics["bce"] + 0.5 * dist_mean(metrics["mse"]), ref_loss)
    # per-rank randomness after the shared seed
    torch.manual_seed(5)
    decorrelate_ranks(5)
    draws = all_gather_rows(torch.rand(1, 4))
    assert not torch.equal(draws[0], draws[1])
    dist.destroy_process_group()
    return 0


def dist_mean(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    dist.all_reduce(t)
    return t / get_world_size()


def test_lsdc_loss_over_the_global_batch_under_ddp(torchrun_gloo):
    torchrun_gloo(_worker, [])


def test_one_process_is_unchanged():
    params = lsdc_config({"k": 3, "batch_size": B})
    x, feats, w, perms, weights = _global_inputs()
    p, p1, p2 = (torch.softmax(v @ w, 1) for v in x)
    a = pseudo_adjacency(feats, p, params)
    comp = Composite(x[1], torch.cat([perms, perms + B // 2], 1), torch.cat([weights] * 2, 1))
    loss, _ = lsdc_loss(p, p1, p2, a, comp, 0.5)
    torch.testing.assert_close(loss, pairwise_bce(p, p1, mix_targets(a, comp)) + 0.5 * consistency_mse(p1, p2))
    state = torch.random.get_rng_state()
    decorrelate_ranks(5)                                  # a no-op in one process
    assert torch.equal(state, torch.random.get_rng_state())
