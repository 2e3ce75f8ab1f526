"""Batched mean-field inference in the fully-connected CRF, reproducing pydensecrf's model.

Model (Krähenbühl & Koltun, NIPS 2011, Eqs. 1-5; used by SEC's constrain-to-boundary loss,
Kolesnikov thesis Eq. 2.5, and by its test-time post-processing). For every image, pixels
i = 1..N, labels l = 1..L, unary energies ``U_i(l)`` (negative log-probabilities):

    Q^0_i(l)   = softmax_l(-U_i(l))
    Q^{t+1}_i(l) = softmax_l( -U_i(l) + sum_k w_k sum_j A^k_ij Q^t_j(l) )

with two Potts terms k (Gaussian w2 on positions, bilateral w1 on positions and colours) and
``A^k`` the normalised Gaussian kernel of term k. All pixels are updated in parallel.

What the C++ code does (read in the pydensecrf2 1.1 sdist, ``pydensecrf/densecrf/src``; the
``CRF/`` directory of kolesman/SEC ships the same 2013 library: ``densecrf.cpp`` and
``labelcompatibility.cpp`` are byte-identical, ``pairwise.cpp`` / ``permutohedral.cpp`` differ
only in member order and a commented-out WIN32 helper):

* ``DenseCRF::inference`` (densecrf.cpp): ``expAndNormalize(Q, -unary)``, then per iteration
  ``tmp1 = -unary; tmp1 -= pairwise_k->apply(Q)`` for every term in the order they were added,
  ``expAndNormalize(Q, tmp1)`` (max-subtracted softmax over labels). So Q0 = softmax(-unary),
  Jacobi (parallel) updates, terms summed. ``dense_crf`` does the same.
* ``PottsCompatibility::apply`` (labelcompatibility.cpp) returns ``-w * (filtered Q)``: the sign
  makes the message *attractive*, ``+w K Q`` in the logits. This is the textbook Potts penalty
  ``w [l != l']`` up to a per-pixel constant: ``-w sum_{l' != l} KQ(l') = w KQ(l) - w K1``.
* ``DenseKernel`` (pairwise.cpp): default ``NORMALIZE_SYMMETRIC`` (the default argument of
  ``addPairwiseGaussian`` / ``addPairwiseBilateral``, both in pydensecrf's .pyx and in SEC's
  wrapper, which passes no normalisation), ``norm = 1/sqrt(K 1 + 1e-20)`` computed once with
  the lattice in ``initLattice``, and ``filter``: ``out = norm * K (norm * Q)``. Other modes are
  selectable (``DenseCRFParams.normalization``); NO_NORMALIZATION applies the raw lattice sum.
* The self term j = i is *included*: the lattice filter returns sum over all j, and nothing
  subtracts it (``include_self=True``; ``False`` gives the paper's sum over j != i, exact path only).
* Features (``DenseCRF2D::addPairwiseGaussian/Bilateral``): ``[x/sx, y/sy]`` and ``[x/sx, y/sy,
  r/sr, g/sg, b/sb]`` in float32, kernel ``exp(-|f_i - f_j|^2 / 2)`` (see ``features``).
* SEC's ``CRF/src/densecrf_wrapper.cpp`` adds the Gaussian term first, then the bilateral one,
  both ``PottsCompatibility``; its Python caller passes ``-logits`` as the unary (equal to
  ``-log softmax`` up to a per-pixel constant, which softmax ignores) and divides the spatial
  thetas by ``scale_factor`` (12 in the training CRFLayer, 1 in deploy).

Methods (``dense_crf(..., method=...)``):

* ``"exact"``: explicit N x N kernels (``thesislib.crf.exact``), one matrix ``w1 A^bil + w2
  A^gauss`` per image, built once and applied by ``bmm`` in every iteration. Differentiable by
  autograd (w.r.t. unary and image). Memory: B N^2 x 4 bytes per matrix, ~3x that at the peak;
  refused above ``max_exact_bytes`` (default 2 GiB: N <= 23170 for one image, e.g. 152x152).
* ``"permutohedral"``: both terms through the permutohedral lattice (``thesislib.crf.
  permutohedral``), the same approximation as pydensecrf, so it agrees with it to float32
  rounding. Linear in N, any resolution. Differentiable w.r.t. the unary.
* ``"hybrid"``: lattice for the bilateral term, exact separable Gaussian (``thesislib.crf.
  separable``: a 5-diagonal band at SEC's training scale theta_gamma = 0.25 px, two small
  matmuls otherwise) for the spatial term, which saves the second lattice.
* ``"auto"``: on CUDA ``exact`` when it fits in ``max_exact_bytes`` (one bmm per iteration, by
  far the fastest there), else ``permutohedral``; on CPU ``hybrid`` when its exact Gaussian is
  cheap (narrow band or H + W <= 256; the fastest CPU path at SEC's 41x41 training size,
  measured in ``benchmarks/crf_benchmark.py``), else ``permutohedral`` (full-resolution
  post-processing). On a CPU the all-pairs path is an order of magnitude slower than the lattice
  at 41x41 (15 x 1681^2 x 21 multiply-adds per iteration), so ``auto`` never picks it there.

Agreement with pydensecrf (tests/crf/test_crf_pydensecrf.py, photos and procedural scenes with
noisy unaries): ``permutohedral`` max |dQ| <= 4e-5 (typically 1e-6), all argmaxes equal;
``hybrid`` max |dQ| ~0.06, argmax agreement >= 0.9987; ``exact`` argmax agreement ~0.98 at
41x41 (the 5-D lattice is a coarse approximation of the exact kernel at that size, see
``thesislib.crf.permutohedral``).

All methods run in float32 (float64 when the unary is float64), with autocast disabled and
CUDA float32 matmuls forced to full IEEE precision for the duration of the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor

from thesislib.crf.exact import gaussian_matrix, normalize_kernel, separable_gaussian_matrix
from thesislib.crf.features import bilateral_features, gaussian_features
from thesislib.crf.params import DenseCRFParams
from thesislib.crf.permutohedral import PermutohedralLattice
from thesislib.crf.separable import SeparableGaussian

__all__ = ["dense_crf", "resolve_method", "unary_from_probabilities", "DEFAULT_MAX_EXACT_BYTES",
           "CPU_HYBRID_MAX_SIDES"]

Method = Literal["auto", "exact", "permutohedral", "hybrid"]
METHODS = ("auto", "exact", "permutohedral", "hybrid")
DEFAULT_MAX_EXACT_BYTES = 2 * 1024**3
CPU_HYBRID_MAX_SIDES = 256
_EPS = 1e-20
# Below this many labels, PyTorch's CPU softmax over a contiguous last dimension takes a scalar
# path: on (16, 256, 4) it costs 0.33 ms against 0.03 ms over the labels of the transposed
# (B, L, N) view (1 thread, torch 2.14; 15 ms vs 1.3 ms on (1, 187500, 4)). From 16 labels on
# the last-dimension kernel is vectorised and as fast or faster (12 vs 20 ms on (1, 187500, 21)).
_SMALL_LABEL_COUNT = 16

Message = Callable[[Tensor], Tensor]


def unary_from_probabilities(probs: Tensor, clamp: float = 1e-5) -> Tensor:
    """Unary energies ``-log(max(p, clamp))`` from (B, L, H, W) class probabilities.

    SEC's ``deploy/demo.py`` clamps the upsampled probabilities at 1e-5 before the CRF.
    """
    return -torch.log(probs.clamp_min(clamp))


def exact_bytes(batch: int, height: int, width: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of one (B, N, N) kernel matrix of the exact path."""
    n = height * width
    return batch * n * n * torch.empty((), dtype=dtype).element_size()


def resolve_method(method: str, batch: int, height: int, width: int, device: torch.device,
                   max_exact_bytes: int = DEFAULT_MAX_EXACT_BYTES,
                   theta_gamma_px: float | None = None) -> str:
    """The concrete method ``"auto"`` stands for (see the module doc); others pass through.

    CUDA: ``exact`` when its (B, N, N) matrix fits in ``max_exact_bytes``, else
    ``permutohedral``. CPU: ``hybrid`` when its exact Gaussian is cheap (a narrow band, as at
    SEC's training scale, or H + W <= 256), else ``permutohedral``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    if method != "auto":
        return method
    if device.type == "cuda":
        return "exact" if exact_bytes(batch, height, width) <= max_exact_bytes else "permutohedral"
    banded = theta_gamma_px is not None and SeparableGaussian.is_banded(theta_px=theta_gamma_px)
    return "hybrid" if banded or height + width <= CPU_HYBRID_MAX_SIDES else "permutohedral"


@contextlib.contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    """Disable autocast and TF32 matmuls inside the CRF (restored afterwards)."""
    matmul = torch.backends.cuda.matmul
    attr = "fp32_precision" if hasattr(matmul, "fp32_precision") else "allow_tf32"
    old = getattr(matmul, attr)
    try:
        if device.type == "cuda":
            setattr(matmul, attr, "ieee" if attr == "fp32_precision" else False)
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    finally:
        if device.type == "cuda":
            setattr(matmul, attr, old)


# ---------------------------------------------------------------------------------------------
# pairwise messages: each returns sum_j w A_ij Q_j(l) for Q of shape (B, N, L)

def _lattice_message(features: Tensor, weight: float, params: DenseCRFParams, dtype: torch.dtype,
                     pad_like_sse: bool) -> Message:
    if not params.include_self:
        raise ValueError("include_self=False is only available with method='exact' (the lattice "
                         "filter always contains the j = i term)")
    lattice = PermutohedralLattice(features, pad_like_sse=pad_like_sse)
    batch, n, _ = features.shape
    rowsum = lattice.filter(torch.ones(batch, n, 1, dtype=torch.float32, device=features.device))
    rowsum = rowsum.to(torch.float64) + _EPS
    mode = params.normalization
    before = {"symmetric": rowsum.rsqrt(), "before": 1.0 / rowsum}.get(mode)
    after = {"symmetric": rowsum.rsqrt(), "after": 1.0 / rowsum}.get(mode, torch.ones_like(rowsum))
    return lattice.operator(pre=None if before is None else before.to(dtype),
                            post=(after.to(dtype) * weight), dtype=dtype)


def _exact_message(image: Tensor, params: DenseCRFParams, dtype: torch.dtype,
                   max_exact_bytes: int) -> Message:
    batch, _, height, width = image.shape
    need = exact_bytes(batch, height, width, dtype)
    if need > max_exact_bytes:
        raise MemoryError(
            f"method='exact' needs a ({batch}, {height * width}, {height * width}) kernel matrix = "
            f"{need / 2**30:.2f} GiB (about 3x that at the peak), over max_exact_bytes = "
            f"{max_exact_bytes / 2**30:.2f} GiB; use method='permutohedral' or 'hybrid', a smaller "
            "batch, or raise max_exact_bytes")
    feats = bilateral_features(image, params.theta_alpha_px, params.theta_beta, dtype)
    a = normalize_kernel(gaussian_matrix(feats), params.normalization, params.include_self)
    a = a * params.bilateral_weight
    if params.gaussian_weight:
        g = separable_gaussian_matrix(height, width, params.theta_gamma_px, image.device, dtype)
        a = a + params.gaussian_weight * normalize_kernel(g, params.normalization, params.include_self)

    def message(q: Tensor) -> Tensor:
        return torch.bmm(a, q)

    return message


# ---------------------------------------------------------------------------------------------
def label_softmax(logits: Tensor) -> Tensor:
    """Softmax over the labels of (B, N, L) logits -> contiguous (B, N, L) probabilities.

    The same function as ``torch.softmax(logits, -1)`` (to float32 rounding, ~3e-8), computed
    over the transposed (B, L, N) view when L is small (fewer than 16 labels), where PyTorch's
    CPU last-dimension kernel is about 10x slower; SEC's training CRF (4 labels on 16x16 masks)
    spends most of its mean-field time there otherwise.
    """
    if logits.shape[-1] < _SMALL_LABEL_COUNT:
        return torch.softmax(logits.transpose(-1, -2), dim=-2).transpose(-1, -2).contiguous()
    return torch.softmax(logits, dim=-1)


def mean_field(unary: Tensor, messages: list[Message], iterations: int) -> Tensor:
    """Parallel mean-field updates (``DenseCRF::inference``) on (B, N, L) energies -> (B, N, L) Q."""
    logits = (-unary).contiguous()  # (B, N, L) rows: the adds and softmaxes below run on contiguous
    q = label_softmax(logits)  # memory (a permuted unary made them 3-4x slower on CPU)
    for _ in range(iterations):
        acc = logits
        for message in messages:
            acc = acc + message(q)
        q = label_softmax(acc)
    return q


def dense_crf(unary: Tensor, image: Tensor, params: DenseCRFParams, method: Method = "auto", *,
              max_exact_bytes: int = DEFAULT_MAX_EXACT_BYTES, pad_like_sse: bool = True) -> Tensor:
    """Mean-field marginals of the dense CRF for a batch of images.

    Args:
        unary: (B, L, H, W) unary energies = negative log-probabilities (``-log p``, or ``-logits``:
            a per-pixel constant does not matter). float32 or float64, any device.
        image: (B, 3, H, W) colours on the 0-255 scale (uint8, or float holding 0-255 values),
            same device. Any channel order (the colour kernel is isotropic).
        params: kernel parameters and the number of iterations (``DenseCRFParams.sec_train()``...).
        method: ``"auto" | "exact" | "permutohedral" | "hybrid"`` (see the module doc).
        max_exact_bytes: memory budget of the exact path's (B, N, N) matrix.
        pad_like_sse: lattice paths only: reproduce the SSE build's zero padding points.

    Returns:
        Q: (B, L, H, W) marginals (sum to 1 over L), dtype of ``unary`` (float32 if it was lower).
    """
    if unary.ndim != 4:
        raise ValueError(f"unary must have shape (B, L, H, W), got {tuple(unary.shape)}")
    batch, n_labels, height, width = unary.shape
    if image.shape != (batch, 3, height, width):
        raise ValueError(f"image must have shape (B, 3, H, W) = {(batch, 3, height, width)}, "
                         f"got {tuple(image.shape)}")
    if image.device != unary.device:
        raise ValueError(f"unary is on {unary.device} but image is on {image.device}")
    if not unary.is_floating_point():
        raise TypeError(f"unary must be a floating-point tensor, got {unary.dtype}")
    device = unary.device
    dtype = torch.float64 if unary.dtype == torch.float64 else torch.float32
    chosen = resolve_method(method, batch, height, width, device, max_exact_bytes,
                            params.theta_gamma_px)
    n = height * width

    with _full_precision(device):
        u = unary.to(dtype).permute(0, 2, 3, 1).reshape(batch, n, n_labels)
        if params.iterations == 0:
            q = label_softmax(-u)
        else:
            messages: list[Message] = []
            if chosen == "exact":
                messages.append(_exact_message(image, params, dtype, max_exact_bytes))
            else:
                if params.gaussian_weight:
                    if chosen == "permutohedral":
                        feats = gaussian_features(batch, height, width, params.theta_gamma_px, device)
                        messages.append(_lattice_message(feats, params.gaussian_weight, params, dtype,
                                                         pad_like_sse))
                    else:
                        messages.append(SeparableGaussian(height, width, params.theta_gamma_px,
                                                          params.normalization, params.include_self,
                                                          params.gaussian_weight, device, dtype))
                if params.bilateral_weight:
                    feats = bilateral_features(image.detach(), params.theta_alpha_px, params.theta_beta)
                    messages.append(_lattice_message(feats, params.bilateral_weight, params, dtype,
                                                     pad_like_sse))
            q = mean_field(u, messages, int(params.iterations))
        return q.reshape(batch, height, width, n_labels).permute(0, 3, 1, 2).contiguous()
