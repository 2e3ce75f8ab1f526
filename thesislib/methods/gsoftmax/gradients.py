"""Closed-form gradients of the single-label G-softmax loss: the corrected ones and the printed ones.

The loss is ``l = -sum_i y_i log p_i`` with ``p = softmax(z)``, ``z_i = x_i + lam Phi_i`` (Eqs. 1, 3).
Its derivative with respect to ``z_i`` is ``p_i sum_j y_j - y_i``; the paper's Eqs. 5, 6, 9, 10, 12
print ``(x_i + lam Phi_i) sum_j y_j - y_i`` instead, i.e. ``z_i`` where ``p_i`` belongs (study note
002, section 7.1). With ``g_i = p_i sum_j y_j - y_i`` and ``phi_i = dPhi_i/dx_i`` (Eq. 11):

* ``dl/dx_i     = g_i (1 + lam phi_i)``                   (corrected Eq. 12)
* ``dl/dmu_i    = -lam g_i phi_i``                        (corrected Eqs. 5, 9)
* ``dl/dsigma_i = lam g_i phi_i (mu_i - x_i) / sigma_i``  (corrected Eqs. 6, 10)

Eqs. 7, 8 and 11 (the partials of Phi) are right. Training uses autograd; this module exists so that
the tests and the notebook can show that autograd agrees with the corrected forms and not with the
printed ones. Gradients with respect to ``sigma`` are with respect to sigma itself, not to the free
parameter of a ``GaussianLogitTransform`` parametrisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from thesislib.methods.gsoftmax.transform import Phi, gaussian_transform, phi

Reduction = Literal["sum", "mean"]


@dataclass(frozen=True)
class GSoftmaxGradients:
    """Gradients of the batch loss: ``x`` (B, m), ``mu`` (m,), ``sigma`` (m,)."""

    x: Tensor
    mu: Tensor
    sigma: Tensor


def _targets(y: Tensor, x: Tensor) -> Tensor:
    """Class indices (B,) -> one-hot (B, m); a (B, m) target (one-hot, multi-hot, soft) passes through."""
    if y.ndim == x.ndim - 1:
        return torch.nn.functional.one_hot(y.long(), x.shape[-1]).to(x.dtype)
    if y.shape != x.shape:
        raise ValueError(f"targets must be (B,) indices or (B, m) like x {tuple(x.shape)}, got {tuple(y.shape)}")
    return y.to(x.dtype)


def _reduce(per_sample: Tensor, reduction: Reduction, batch: int) -> Tensor:
    if reduction == "sum":
        return per_sample
    if reduction == "mean":
        return per_sample / batch
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def corrected_gradients(x: Tensor, y: Tensor, mu: Tensor, sigma: Tensor, lam: float | Tensor,
                        reduction: Reduction = "mean") -> GSoftmaxGradients:
    """Closed-form gradients of the batch loss (Eqs. 5-12 with ``p_i`` in place of ``x_i + lam Phi_i``).

    Args:
        x: logits (B, m). y: class indices (B,) or targets (B, m). mu, sigma: (m,). lam: scalar.
        reduction: ``"mean"`` (loss averaged over the batch, as ``F.cross_entropy``) or ``"sum"``.
    """
    y = _targets(y, x)
    batch = x.shape[0]
    p = torch.softmax(gaussian_transform(x, mu, sigma, lam), dim=-1)
    g = p * y.sum(-1, keepdim=True) - y
    dens = phi(x, mu, sigma)
    dx = g * (1 + lam * dens)
    dmu = (-lam * g * dens).sum(0)
    dsigma = (lam * g * dens * (mu - x) / sigma).sum(0)
    return GSoftmaxGradients(_reduce(dx, reduction, batch), _reduce(dmu, reduction, batch),
                             _reduce(dsigma, reduction, batch))


def paper_gradients(x: Tensor, y: Tensor, mu: Tensor, sigma: Tensor, lam: float | Tensor,
                    reduction: Reduction = "mean") -> GSoftmaxGradients:
    """The gradients exactly as printed in Eqs. 9, 10 and 12 (erroneous factor ``x_i + lam Phi_i``).

    Shapes and arguments as in :func:`corrected_gradients`.
    """
    y = _targets(y, x)
    batch = x.shape[0]
    sum_y = y.sum(-1, keepdim=True)
    printed = (x + lam * Phi(x, mu, sigma)) * sum_y - y                     # the printed factor
    gauss = torch.exp(-((mu - x) ** 2) / (2 * sigma**2))
    root2, rootpi = math.sqrt(2.0), math.sqrt(math.pi)
    dmu = lam * (y - (x + lam * Phi(x, mu, sigma)) * sum_y) * root2 * gauss / (2 * rootpi * sigma)  # Eq. 9
    dsigma = lam * printed * root2 * (mu - x) * gauss / (2 * rootpi * sigma**2)                    # Eq. 10
    dx = printed * (1 + lam * root2 * gauss / (2 * rootpi * sigma))                              # Eq. 12
    return GSoftmaxGradients(_reduce(dx, reduction, batch), _reduce(dmu.sum(0), reduction, batch),
                             _reduce(dsigma.sum(0), reduction, batch))


def paper_phi_partials(x: Tensor, mu: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(dPhi/dmu, dPhi/dsigma, dPhi/dx)`` as printed in Eqs. 7, 8 and 11 (these are correct). (B, m) each."""
    root2, rootpi = math.sqrt(2.0), math.sqrt(math.pi)
    gauss = torch.exp(-((mu - x) ** 2) / (2 * sigma**2))
    d_mu = -root2 * gauss / (2 * rootpi * sigma)
    d_sigma = root2 * (mu - x) * gauss / (2 * rootpi * sigma**2)
    d_x = root2 * gauss / (2 * rootpi * sigma)
    return d_mu, d_sigma, d_x


def autograd_gradients(x: Tensor, y: Tensor, mu: Tensor, sigma: Tensor, lam: float | Tensor,
                       reduction: Reduction = "mean") -> GSoftmaxGradients:
    """The same gradients from autograd on ``-sum_i y_i log softmax(x + lam Phi)_i`` (reference)."""
    y = _targets(y, x)
    with torch.enable_grad():
        xs, mus, sigmas = (t.detach().clone().requires_grad_(True) for t in (x, mu, sigma))
        z = gaussian_transform(xs, mus, sigmas, lam)
        per_sample = -(y * torch.log_softmax(z, dim=-1)).sum(-1)
        loss = per_sample.sum() if reduction == "sum" else per_sample.mean()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        gx, gmu, gsigma = torch.autograd.grad(loss, (xs, mus, sigmas))
    return GSoftmaxGradients(gx, gmu, gsigma)
