"""Review of h-anim, finding 2: under DDP the ranking-statistics BCE covers the pairs of the global batch, as
the released code's ``nn.DataParallel`` gathers its GPUs' outputs before ``PairEnum``. Two gloo processes
against the one-process computation on the concatenated batch."""

from __future__ import annotations

import torch
import torch.distributed as dist

from thesislib.engine.distributed import get_rank, get_world_size, init_distributed
from thesislib.methods.autonovel.config import autonovel_config
from thesislib.methods.autonovel.losses import joint_loss
from thesislib.selfsup import pairwise_bce, rank_statistics, ranking_bce

B, D, CL, CU, TOPK = 12, 6, 4, 3, 2


def _global_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, B, D, generator=g)                 # clean and augmented view
    w = torch.randn(D, CL + CU, generator=g)
    # unlabelled rows (-1) spread unevenly over the two halves: 3 on rank 0, 4 on rank 1
    target = torch.tensor([0, -1, 2, -1, 1, -1, -1, 3, -1, 0, -1, -1])
    return x, w, target


def _outputs(x: torch.Tensor, w: torch.Tensor):
    o, oa = x[0] @ w, x[1] @ w
    return ({"features": x[0], "head1": o[:, :CL], "head2": o[:, CL:]},
            {"features": x[1], "head1": oa[:, :CL], "head2": oa[:, CL:]})


def _reference(x, w0, target):
    """The one-process BCE (and its gradient) over the B rows, written out from the shared pieces."""
    w = w0.clone().requires_grad_(True)
    out, aug = _outputs(x, w)
    unl = (target < 0).float()
    s = rank_statistics(out["features"], TOPK)
    pairs = unl[:, None] * unl[None, :]
    bce = pairwise_bce(torch.softmax(out["head2"], 1), torch.softmax(aug["head2"], 1), s, weight=pairs)
    bce.backward()
    return bce.detach(), (s * pairs).sum() / pairs.sum(), w.grad


def _dist_mean(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    dist.all_reduce(t)
    return t / get_world_size()


def _worker(argv: list[str]) -> int:
    init_distributed("cpu")
    rank, world = get_rank(), get_world_size()
    x, w0, target = _global_inputs()
    ref_bce, ref_pos, ref_grad = _reference(x, w0, target)
    b = B // world
    rows = slice(rank * b, (rank + 1) * b)
    # the shared path: loss value on every rank and DDP's averaged gradient equal the one-process ones
    w = w0.clone().requires_grad_(True)
    out, aug = _outputs(x[:, rows], w)
    unl = (target[rows] < 0).float()
    bce, pos = ranking_bce(out["features"], torch.softmax(out["head2"], 1), torch.softmax(aug["head2"], 1),
                           TOPK, rows=unl)
    torch.testing.assert_close(bce.detach(), ref_bce)
    torch.testing.assert_close(pos, ref_pos)
    bce.backward()
    torch.testing.assert_close(_dist_mean(w.grad), ref_grad)       # what DDP does to a parameter's gradient
    # AutoNovel's joint loss reports the global BCE and positive rate on every rank
    out, aug = _outputs(x[:, rows], w0)
    _, metrics = joint_loss(out, aug, target[rows], autonovel_config({"topk": TOPK}), epoch=0)
    torch.testing.assert_close(metrics["bce"], ref_bce)
    torch.testing.assert_close(metrics["pos_rate"], ref_pos)
    dist.destroy_process_group()
    return 0


def test_ranking_bce_over_the_global_batch_under_ddp(torchrun_gloo):
    torchrun_gloo(_worker, [])


def test_one_process_joint_bce_is_the_shared_ranking_bce():
    x, w, target = _global_inputs()
    ref_bce, ref_pos, _ = _reference(x, w, target)
    out, aug = _outputs(x, w)
    _, metrics = joint_loss(out, aug, target, autonovel_config({"topk": TOPK}), epoch=0)
    assert torch.equal(metrics["bce"], ref_bce) and torch.equal(metrics["pos_rate"], ref_pos)
