"""L-softmax baseline (Liu et al., "Large-Margin Softmax Loss for CNNs", ICML 2016), as in Table I / Fig. 3.

The final linear layer (no bias) is written ``f_j = ||W_j|| ||x|| cos(theta_j)``. For the true class
``y`` L-softmax replaces ``cos(theta_y)`` by

    psi(theta) = (-1)^k cos(m theta) - 2k,   theta in [k pi/m, (k+1) pi/m],  k = 0..m-1,

a monotonically decreasing, continuous extension of ``cos(m theta)`` to ``[0, pi]``; ``cos(m theta)``
is computed from ``cos(theta)`` by the Chebyshev expansion
``cos(m theta) = sum_n (-1)^n C(m, 2n) cos^(m-2n)(theta) (1 - cos^2(theta))^n``. Training starts
close to softmax: the true-class logit is ``(beta f_y + ||W_y|| ||x|| psi(theta_y)) / (1 + beta)``
with ``beta = max(beta_min, base (1 + gamma t)^(-power))`` decaying over the iterations ``t``. At
test time the plain logits ``W x`` are used (no target is passed).

Margin: the G-softmax paper does not state the ``m`` of its L-softmax runs. The default ``m = 2``
and the default annealing ``(base, gamma, power, beta_min) = (1000, 2e-5, 45, 0)`` are those of the
L-softmax authors' own CIFAR-10 example configuration; ``m = 2`` is also the easiest margin to
optimise. ``m`` in {1, 2, 3, 4} is accepted as in their implementation (any integer >= 1 works here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class BetaSchedule:
    """``beta(t) = max(minimum, base * (1 + gamma * t) ** -power)``; ``base = 0`` disables the blending."""

    base: float = 1000.0
    gamma: float = 2e-5
    power: float = 45.0
    minimum: float = 0.0

    def __call__(self, step: Tensor | float) -> Tensor | float:
        """beta at iteration ``step`` (a tensor stays on its device: no host sync)."""
        if isinstance(step, Tensor):
            value = self.base * torch.pow(1.0 + self.gamma * step.double(), -self.power)
            return value.clamp_min(self.minimum)
        return max(self.minimum, self.base * (1.0 + self.gamma * float(step)) ** (-self.power))


def cos_m_theta(cos_theta: Tensor, margin: int) -> Tensor:
    """``cos(m theta)`` from ``cos(theta)`` by the Chebyshev expansion (any shape, elementwise)."""
    c2 = cos_theta * cos_theta
    sin2 = 1.0 - c2
    out = torch.zeros_like(cos_theta)
    for n in range(margin // 2 + 1):
        out = out + ((-1) ** n) * math.comb(margin, 2 * n) * cos_theta ** (margin - 2 * n) * sin2**n
    return out


def margin_k(cos_theta: Tensor, margin: int) -> Tensor:
    """The piece index ``k`` with ``theta in [k pi/m, (k+1) pi/m]``, from ``cos(theta)`` (same shape)."""
    k = torch.zeros_like(cos_theta)
    for j in range(1, margin):
        k = k + (cos_theta < math.cos(j * math.pi / margin)).to(cos_theta.dtype)
    return k


def psi(cos_theta: Tensor, margin: int) -> Tensor:
    """``psi(theta) = (-1)^k cos(m theta) - 2k`` as a function of ``cos(theta)`` (elementwise)."""
    k = margin_k(cos_theta, margin)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * cos_m_theta(cos_theta, margin) - 2.0 * k


class LargeMarginLinear(nn.Module):
    """Bias-free linear classifier with the L-softmax margin on the true-class logit.

    ``forward(features (B, d), target (B,) or None) -> logits (B, C)``; feed them to ordinary
    cross-entropy. With a target (training), column ``target`` is replaced by the annealed margin
    logit; without one (evaluation) the logits are ``features @ W.T``. Each training forward with a
    target advances the iteration counter of the beta schedule (a buffer, updated on the device).
    The layer computes in float32 even under autocast.
    """

    def __init__(self, in_features: int, num_classes: int, margin: int = 2,
                 beta: BetaSchedule = BetaSchedule(), eps: float = 1e-12) -> None:
        super().__init__()
        if int(margin) < 1:
            raise ValueError(f"margin must be an integer >= 1, got {margin}")
        self.in_features, self.num_classes, self.margin = int(in_features), int(num_classes), int(margin)
        self.beta = beta
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.in_features))
        nn.init.kaiming_normal_(self.weight)     # "msra" filler, as in the L-softmax reference setup
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def current_beta(self) -> Tensor:
        """beta for the current iteration counter (0-dim tensor)."""
        return self.beta(self.step)

    def forward(self, features: Tensor, target: Tensor | None = None, beta: float | None = None) -> Tensor:
        """Logits (B, C); ``beta`` overrides the schedule (and then the counter does not advance)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            x = features.float()
            w = self.weight.float()
            logits = F.linear(x, w)
            if target is None:
                return logits
            target = target.long()[:, None]
            if beta is None:
                if self.training:
                    self.step.add_(1)
                beta_t = self.beta(self.step).to(logits.dtype)
            else:
                beta_t = torch.as_tensor(float(beta), dtype=logits.dtype, device=logits.device)
            w_norm = w.norm(dim=1)[target.squeeze(1)]                     # (B,)
            x_norm = x.norm(dim=1)                                         # (B,)
            scale = (w_norm * x_norm)[:, None]
            plain = logits.gather(1, target)                               # (B, 1)
            cos = (plain / scale.clamp_min(self.eps)).clamp(-1.0, 1.0)
            margin_logit = scale * psi(cos, self.margin)
            blended = (beta_t * plain + margin_logit) / (1.0 + beta_t)
            return logits.scatter(1, target, blended)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, margin={self.margin}, beta={self.beta}"
