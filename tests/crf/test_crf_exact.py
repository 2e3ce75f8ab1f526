"""Exact all-pairs dense CRF against an independent float64 reference; invariances; gradients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from crf_reference_impl import mean_field as reference_mean_field

from thesislib.crf import SEC_TEST, SEC_TRAIN, DenseCRFParams, dense_crf
from thesislib.crf.demo import noisy_unaries, photo, segment_labels, shapes_on_noise
from thesislib.crf.dense import resolve_method, unary_from_probabilities

METHODS = ("exact", "permutohedral", "hybrid")


def _case(height: int = 9, width: int = 11, n_labels: int = 5, seed: int = 0):
    image, labels = shapes_on_noise(height, width, n_shapes=2, seed=seed)
    unary = noisy_unaries(labels, n_labels=n_labels, seed=seed)
    return unary, image


def _reference(unary: torch.Tensor, image: np.ndarray, p: DenseCRFParams) -> torch.Tensor:
    q = reference_mean_field(unary.double().numpy(), image, p.bilateral_weight, p.theta_alpha_px,
                             p.theta_beta, p.gaussian_weight, p.theta_gamma_px, p.iterations,
                             p.normalization, p.include_self)
    return torch.from_numpy(q)


def _as_batch(unary: torch.Tensor, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return unary[None], torch.from_numpy(image).permute(2, 0, 1)[None]


@pytest.mark.parametrize("params", [SEC_TRAIN, SEC_TEST, SEC_TRAIN.scaled(3.0)],
                         ids=["sec_train", "sec_test", "scale3"])
def test_exact_matches_float64_reference(params):
    unary, image = _case()
    q = dense_crf(*_as_batch(unary, image), params, method="exact")[0]
    ref = _reference(unary, image, params)
    assert q.dtype == torch.float32 and q.shape == unary.shape
    assert (q.double() - ref).abs().max().item() < 1e-5
    q64 = dense_crf(*_as_batch(unary.double(), image), params, method="exact")[0]
    assert q64.dtype == torch.float64
    assert (q64 - ref).abs().max().item() < 1e-10


@pytest.mark.parametrize("normalization", ["symmetric", "after", "before", "none"])
@pytest.mark.parametrize("include_self", [True, False])
def test_exact_conventions_match_reference(normalization, include_self):
    params = dataclasses.replace(SEC_TRAIN.scaled(4.0), normalization=normalization,
                                 include_self=include_self, iterations=5)
    unary, image = _case(seed=1)
    q = dense_crf(*_as_batch(unary.double(), image), params, method="exact")[0]
    assert (q - _reference(unary, image, params)).abs().max().item() < 1e-10


@pytest.mark.parametrize("normalization", ["symmetric", "after", "before", "none"])
@pytest.mark.parametrize("include_self", [True, False])
def test_hybrid_gaussian_term_is_exact(normalization, include_self):
    """With w1 = 0 only the separable Gaussian is left: hybrid must equal the reference."""
    for theta in (0.25, 3.0):  # banded path, matrix path
        params = DenseCRFParams(bilateral_weight=0.0, gaussian_weight=3.0, theta_gamma=theta,
                                iterations=4, normalization=normalization, include_self=include_self)
        unary, image = _case(seed=2)
        q = dense_crf(*_as_batch(unary.double(), image), params, method="hybrid")[0]
        assert (q - _reference(unary, image, params)).abs().max().item() < 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_zero_iterations_is_softmax_of_minus_unary(method):
    unary, image = _case()
    params = dataclasses.replace(SEC_TRAIN, iterations=0)
    q = dense_crf(*_as_batch(unary, image), params, method=method)[0]
    torch.testing.assert_close(q, torch.softmax(-unary, dim=0), rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_one_by_one(method):
    cases = [_case(seed=s) for s in range(3)]
    unary = torch.stack([u for u, _ in cases])
    images = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for _, im in cases])
    q = dense_crf(unary, images, SEC_TRAIN, method=method)
    for i in range(3):
        single = dense_crf(unary[i:i + 1], images[i:i + 1], SEC_TRAIN, method=method)[0]
        torch.testing.assert_close(q[i], single, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_label_permutation_equivariance(method):
    unary, image = _case(seed=3)
    perm = torch.randperm(unary.shape[0], generator=torch.Generator().manual_seed(0))
    u, im = _as_batch(unary, image)
    q = dense_crf(u, im, SEC_TRAIN, method=method)
    q_perm = dense_crf(u[:, perm], im, SEC_TRAIN, method=method)
    torch.testing.assert_close(q_perm, q[:, perm], rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_uniform_unary_and_image_stay_uniform(method):
    unary = torch.full((2, 4, 10, 13), 0.7)
    image = torch.full((2, 3, 10, 13), 128, dtype=torch.uint8)
    q = dense_crf(unary, image, SEC_TEST, method=method)
    torch.testing.assert_close(q, torch.full_like(q, 0.25), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_marginals_sum_to_one_and_crf_smooths_noise(method):
    """On a noisy two-region image the CRF must fix most wrong unary labels."""
    image, labels = shapes_on_noise(24, 28, n_shapes=3, noise=10.0, seed=4)
    unary = noisy_unaries(labels, n_labels=6, confidence=3.0, noise=1.5, seed=4)
    truth = torch.stack([(-unary)[:, torch.from_numpy(labels) == k].mean(1).argmax()
                         for k in range(int(labels.max()) + 1)])[torch.from_numpy(labels)]
    q = dense_crf(*_as_batch(unary, image), SEC_TRAIN, method=method)[0]
    torch.testing.assert_close(q.sum(0), torch.ones(24, 28), rtol=0, atol=1e-5)
    before = (unary.argmin(0) == truth).float().mean().item()
    after = (q.argmax(0) == truth).float().mean().item()
    assert before < 0.9 and after > before + 0.05


def test_exact_gradcheck_float64():
    unary, image = _case(height=4, width=5, n_labels=3, seed=5)
    params = dataclasses.replace(SEC_TRAIN.scaled(2.0), iterations=3)
    img = torch.from_numpy(image).permute(2, 0, 1)[None].double().requires_grad_(True)
    u = unary[None].double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: dense_crf(a, b, params, method="exact"), (u, img))


def test_exact_memory_check_names_the_limit():
    unary = torch.zeros(2, 3, 20, 20)
    image = torch.zeros(2, 3, 20, 20, dtype=torch.uint8)
    with pytest.raises(MemoryError, match="max_exact_bytes"):
        dense_crf(unary, image, SEC_TRAIN, method="exact", max_exact_bytes=2 * 400 * 400 * 4 - 1)
    dense_crf(unary, image, SEC_TRAIN, method="exact", max_exact_bytes=2 * 400 * 400 * 4)


def test_auto_method_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_method("auto", 15, 41, 41, cpu, theta_gamma_px=SEC_TRAIN.theta_gamma_px) == "hybrid"
    assert resolve_method("auto", 1, 375, 500, cpu, theta_gamma_px=SEC_TEST.theta_gamma_px) == "permutohedral"
    assert resolve_method("auto", 15, 41, 41, cuda) == "exact"
    assert resolve_method("auto", 1, 375, 500, cuda) == "permutohedral"
    assert resolve_method("exact", 1, 375, 500, cpu) == "exact"
    with pytest.raises(ValueError, match="unknown method"):
        resolve_method("fast", 1, 4, 4, cpu)


def test_bad_inputs_are_rejected():
    unary, image = _case()
    u, im = _as_batch(unary, image)
    with pytest.raises(ValueError, match="unary must have shape"):
        dense_crf(unary, im, SEC_TRAIN)
    with pytest.raises(ValueError, match="image must have shape"):
        dense_crf(u, im[:, :, :-1], SEC_TRAIN)
    with pytest.raises(TypeError, match="floating-point"):
        dense_crf(u.long(), im, SEC_TRAIN)
    with pytest.raises(ValueError, match="include_self=False"):
        dense_crf(u, im, dataclasses.replace(SEC_TRAIN, include_self=False), method="permutohedral")


def test_runs_under_bf16_autocast():
    unary, image = _case()
    u, im = _as_batch(unary, image)
    expected = dense_crf(u, im, SEC_TRAIN, method="exact")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = dense_crf(u, im, SEC_TRAIN, method="exact")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_unary_from_probabilities_clamps():
    probs = torch.tensor([0.0, 0.25, 0.75]).view(1, 3, 1, 1)
    u = unary_from_probabilities(probs, clamp=1e-5)
    torch.testing.assert_close(u.flatten(), -torch.log(torch.tensor([1e-5, 0.25, 0.75])))


def test_photo_case_exact_vs_reference_on_real_image():
    image = photo("chelsea", 8, 10)
    unary = noisy_unaries(segment_labels(image, 3), n_labels=4)
    q = dense_crf(*_as_batch(unary.double(), image), SEC_TEST, method="exact")[0]
    assert (q - _reference(unary, image, SEC_TEST)).abs().max().item() < 1e-10


@pytest.mark.parametrize("n_labels", [1, 2, 4, 15, 16, 21])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_label_softmax_is_softmax_over_the_last_dimension(n_labels, dtype):
    from thesislib.crf.dense import label_softmax

    logits = (torch.randn(3, 50, n_labels, generator=torch.Generator().manual_seed(n_labels)) * 8).to(dtype)
    out = label_softmax(logits)
    assert out.shape == logits.shape and out.dtype == dtype and out.is_contiguous()
    atol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(out, torch.softmax(logits, dim=-1), rtol=0, atol=atol)
    x = logits.clone().requires_grad_(True)
    w = torch.randn(logits.shape, dtype=dtype)
    (label_softmax(x) * w).sum().backward()
    ref = logits.clone().requires_grad_(True)
    (torch.softmax(ref, dim=-1) * w).sum().backward()
    torch.testing.assert_close(x.grad, ref.grad, rtol=1e-5, atol=1e-6)
