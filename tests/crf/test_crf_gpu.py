"""CUDA and CPU give the same dense-CRF marginals (skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch

from thesislib.crf import SEC_TEST, SEC_TRAIN, dense_crf
from thesislib.crf.demo import PHOTOS, noisy_unaries, photo, segment_labels


def _batch(height: int, width: int):
    images = [photo(name, height, width) for name in PHOTOS]
    unary = torch.stack([noisy_unaries(segment_labels(im, 5, seed=i), seed=i) for i, im in enumerate(images)])
    return unary, torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in images])


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["exact", "permutohedral", "hybrid", "auto"])
def test_cuda_matches_cpu_at_41x41(method):
    unary, images = _batch(41, 41)
    cpu = dense_crf(unary, images, SEC_TRAIN, method=method)
    gpu = dense_crf(unary.cuda(), images.cuda(), SEC_TRAIN, method=method).cpu()
    atol = 1e-3 if method == "auto" else 1e-4  # auto is hybrid on CPU, exact on CUDA
    if method == "auto":
        assert (gpu.argmax(1) == cpu.argmax(1)).double().mean().item() > 0.97
    else:
        torch.testing.assert_close(gpu, cpu, rtol=0, atol=atol)


@pytest.mark.gpu
def test_cuda_permutohedral_full_resolution_matches_cpu():
    unary, images = _batch(375, 500)
    cpu = dense_crf(unary[:1], images[:1], SEC_TEST, method="permutohedral")
    gpu = dense_crf(unary[:1].cuda(), images[:1].cuda(), SEC_TEST, method="permutohedral").cpu()
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-4)


@pytest.mark.gpu
def test_cuda_exact_gradient_matches_cpu():
    unary, images = _batch(12, 12)
    grads = []
    for device in ("cpu", "cuda"):
        u = unary.detach().to(device, copy=True).requires_grad_(True)  # a fresh leaf per device
        q = dense_crf(u, images.to(device), SEC_TRAIN, method="exact")
        (q * torch.arange(q.shape[1], device=device).view(1, -1, 1, 1)).sum().backward()
        grads.append(u.grad.cpu())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)
