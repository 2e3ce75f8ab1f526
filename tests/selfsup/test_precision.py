"""Review R1 item 2: the pairwise pieces and the scored heads stay float32 under bf16 autocast."""

import torch
from torch import nn

from thesislib.selfsup import fp32_head, knn_adjacency, pairwise_bce, rank_statistics
from thesislib.selfsup.pseudo_labels import sq_distances


def _features(n: int = 256, d: int = 512) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    # a large common offset plus small differences: ||a||² + ||b||² - 2ab cancels badly in bf16
    return 10.0 + 0.05 * torch.randn(n, d, generator=g)


def test_knn_adjacency_is_the_same_under_cpu_bf16_autocast():
    f = _features()
    ref = knn_adjacency(f, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = knn_adjacency(f, 20)
        d = sq_distances(f)
    assert d.dtype == torch.float32
    assert torch.equal(got, ref)


def test_pairwise_bce_and_rank_statistics_are_float32_under_autocast():
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(64, 10, generator=g), 1)
    q = torch.softmax(torch.randn(64, 10, generator=g), 1)
    t = (torch.rand(64, 64, generator=g) > 0.5).float()
    ref = pairwise_bce(p, q, t)
    f = _features(64, 32)
    ref_rank = rank_statistics(f, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = pairwise_bce(p, q, t)
        got_rank = rank_statistics(f, 5)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)
    assert torch.equal(got_rank, ref_rank)


def test_fp32_head_recomputes_the_head_in_float32():
    model = nn.Module()
    model.heads = nn.ModuleDict({"h": nn.Linear(512, 10)})
    f = _features(32, 512)
    ref = model.heads["h"](f)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf = model.heads["h"](f)
        got = fp32_head(model, f.to(torch.bfloat16).float(), "h")
        exact = fp32_head(model, f, "h")
    assert bf.dtype == torch.bfloat16 and got.dtype == torch.float32
    torch.testing.assert_close(exact, ref)
