"""The G-softmax distribution term: z = x + lam * Phi(x; mu, sigma), per output (Luo et al., Eqs. 3-4).

G-softmax keeps the network and the cross-entropy and changes only what is fed to the softmax:
each logit ``x_i`` is shifted by ``lam`` times the Gaussian CDF of that logit under a per-class
Gaussian ``N(mu_i, sigma_i^2)``. Softmax of ``z`` is Eq. 3; ``lam = 0`` is exactly softmax.

Decisions (study note 002, sections 2.3 and 7.4/7.6):

* ``lam`` is a fixed hyperparameter, stored as a buffer (the paper says "initialized", the released
  code never updates it).
* ``mu`` and ``sigma`` are per-output learnable parameters, initialised to (0, 1) by default. The
  paper enforces no ``sigma > 0``; here ``sigma`` is ``exp(s)`` (default) or ``softplus(s)`` of a
  free parameter ``s``, and ``sigma_param="raw"`` is the paper-literal unconstrained ``sigma``.
* ``mu``/``sigma`` must get no weight decay (the authors update them outside the optimiser, without
  decay): build the optimiser with :func:`gsoftmax_param_groups`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

SigmaParam = Literal["exp", "softplus", "raw"]
SIGMA_PARAMS: tuple[str, ...] = ("exp", "softplus", "raw")

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def Phi(x: Tensor, mu: Tensor | float, sigma: Tensor | float) -> Tensor:  # noqa: N802 (paper symbol)
    """Gaussian CDF ``Phi(x; mu, sigma) = 1/2 [1 + erf((x - mu) / (sigma sqrt 2))]`` (Eq. 4).

    Broadcasts: ``x`` (..., m) with ``mu``, ``sigma`` (m,) or scalars. The paper's form
    ``1/2 erf(-sqrt2 (mu - x) / (2 sigma)) + 1/2`` is the same function for either sign of sigma.
    """
    return torch.special.ndtr((x - mu) / sigma)


def phi(x: Tensor, mu: Tensor | float, sigma: Tensor | float) -> Tensor:
    """``dPhi/dx = exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))`` (Eq. 11).

    For ``sigma > 0`` this is the Gaussian density; with a raw negative sigma it carries sigma's
    sign, as the derivative of Eq. 4 does. Shapes as in :func:`Phi`.
    """
    t = (x - mu) / sigma
    return torch.exp(-0.5 * t * t) * _INV_SQRT_2PI / sigma


def gaussian_transform(x: Tensor, mu: Tensor | float, sigma: Tensor | float,
                       lam: Tensor | float) -> Tensor:
    """``z = x + lam * Phi(x; mu, sigma)``, the argument of the softmax in Eq. 3. Shapes as in :func:`Phi`."""
    return x + lam * Phi(x, mu, sigma)


def _as_vector(value: float | Sequence[float] | Tensor, n: int, name: str,
               dtype: torch.dtype | None = None) -> Tensor:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
    vec = torch.as_tensor(value, dtype=dtype or torch.get_default_dtype()).clone()
    if vec.ndim == 0:
        vec = vec.expand(n).clone()
    if vec.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {tuple(vec.shape)}")
    if not torch.isfinite(vec).all():
        raise ValueError(f"{name} must be finite")
    return vec


def _sigma_to_raw(sigma: Tensor, mode: str) -> Tensor:
    if mode == "raw":
        if (sigma == 0).any():
            raise ValueError("sigma must be non-zero")
        return sigma
    if (sigma <= 0).any():
        raise ValueError(f"sigma must be > 0 with sigma_param={mode!r}")
    if mode == "exp":
        return sigma.log()
    # inverse softplus, stable for large and small sigma: s = sigma + log(1 - exp(-sigma))
    return sigma + torch.log(-torch.expm1(-sigma))


def _raw_to_sigma(raw: Tensor, mode: str) -> Tensor:
    if mode == "exp":
        return raw.exp()
    if mode == "softplus":
        return nn.functional.softplus(raw)
    return raw


class GaussianLogitTransform(nn.Module):
    """Map logits ``x`` (..., m) to ``z = x + lam * Phi(x; mu, sigma)`` (..., m), Eqs. 3-4.

    Args:
        num_outputs: m, the number of logits (classes; ``2 * classes`` for the multi-label head,
            whose layout is described in :mod:`thesislib.methods.gsoftmax.losses`).
        lam: the fixed weight of the distribution term (a buffer, not learned).
        mu_init, sigma_init: scalars or (m,) initial values (the paper's default is (0, 1)).
        learn: if False, ``mu`` and ``sigma`` are frozen (``requires_grad=False``).
        sigma_param: ``"exp"`` (sigma = exp(s)), ``"softplus"`` (sigma = softplus(s)) or ``"raw"``
            (sigma = s, paper-literal, no positivity constraint).

    ``z`` has the promoted dtype of ``x`` and the parameters (float32 under bf16 autocast), so the
    cross-entropy that follows runs in full precision.
    """

    def __init__(self, num_outputs: int, lam: float = 1.0,
                 mu_init: float | Sequence[float] | Tensor = 0.0,
                 sigma_init: float | Sequence[float] | Tensor = 1.0,
                 learn: bool = True, sigma_param: SigmaParam = "exp") -> None:
        super().__init__()
        if int(num_outputs) < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        if sigma_param not in SIGMA_PARAMS:
            raise ValueError(f"sigma_param must be one of {SIGMA_PARAMS}, got {sigma_param!r}")
        if not math.isfinite(float(lam)):
            raise ValueError(f"lam must be finite, got {lam}")
        self.num_outputs = int(num_outputs)
        self.sigma_param = sigma_param
        self.register_buffer("lam", torch.tensor(float(lam)))
        mu = _as_vector(mu_init, self.num_outputs, "mu_init")
        sigma = _as_vector(sigma_init, self.num_outputs, "sigma_init")
        self.loc = nn.Parameter(mu, requires_grad=learn)
        self.raw_scale = nn.Parameter(_sigma_to_raw(sigma, sigma_param), requires_grad=learn)

    @property
    def mu(self) -> Tensor:
        """Current means, shape (m,)."""
        return self.loc

    @property
    def sigma(self) -> Tensor:
        """Current standard deviations, shape (m,) (any sign in ``raw`` mode)."""
        return _raw_to_sigma(self.raw_scale, self.sigma_param)

    @property
    def learn(self) -> bool:
        return self.loc.requires_grad

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (..., m) -> ``z`` (..., m)."""
        if x.shape[-1] != self.num_outputs:
            raise ValueError(f"expected logits with last dimension {self.num_outputs}, got shape {tuple(x.shape)}")
        return gaussian_transform(x, self.loc, self.sigma, self.lam)

    def distribution_term(self, x: Tensor) -> Tensor:
        """``Phi(x; mu, sigma)`` (..., m), the quantity scaled by ``lam`` in Eq. 3."""
        return Phi(x, self.loc, self.sigma)

    @torch.no_grad()
    def set_gaussians(self, mu: float | Sequence[float] | Tensor,
                      sigma: float | Sequence[float] | Tensor) -> None:
        """Overwrite ``mu`` and ``sigma`` (scalars or (m,)) in place, keeping the parametrisation."""
        mu_vec = _as_vector(mu, self.num_outputs, "mu", dtype=torch.float64)
        sigma_vec = _as_vector(sigma, self.num_outputs, "sigma", dtype=torch.float64)
        self.loc.copy_(mu_vec)
        self.raw_scale.copy_(_sigma_to_raw(sigma_vec, self.sigma_param))

    @torch.no_grad()
    def init_from_logits(self, logits: Tensor, min_sigma: float = 1e-3) -> None:
        """Data-driven initialisation (Sec. IV, MS COCO): per-output mean and std of ``logits`` (N, m).

        The std (population, ddof=0) is floored at ``min_sigma`` so a constant output cannot give 0.
        """
        if logits.ndim != 2 or logits.shape[1] != self.num_outputs or logits.shape[0] < 2:
            raise ValueError(f"expected logits of shape (N >= 2, {self.num_outputs}), got {tuple(logits.shape)}")
        data = logits.detach().double()
        self.set_gaussians(data.mean(0), data.std(0, unbiased=False).clamp_min(min_sigma))

    def extra_repr(self) -> str:
        return (f"num_outputs={self.num_outputs}, lam={float(self.lam)}, sigma_param={self.sigma_param!r}, "
                f"learn={self.learn}")


def gsoftmax_param_groups(modules: nn.Module | Iterable[nn.Module], weight_decay: float,
                          gaussian_lr: float | None = None) -> list[dict]:
    """Optimiser parameter groups with NO weight decay on every G-softmax ``mu``/``sigma``.

    Args:
        modules: the model, or several modules (e.g. a backbone and a separate transform); shared
            parameters are counted once. Frozen parameters (``requires_grad=False``) are left out.
        weight_decay: decay for every other parameter.
        gaussian_lr: optional learning rate for the mu/sigma group (the released code scales it by
            ``gsm_lr_w``); ``None`` uses the optimiser's default.

    Returns:
        ``[{"params": others, "weight_decay": weight_decay},
        {"params": gaussian, "weight_decay": 0.0[, "lr": gaussian_lr]}]``, empty groups omitted.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    modules = list(modules)
    gaussian_ids: set[int] = set()
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, GaussianLogitTransform):
                gaussian_ids.update(id(p) for p in sub.parameters())
    seen: set[int] = set()
    others: list[nn.Parameter] = []
    gaussian: list[nn.Parameter] = []
    for module in modules:
        for param in module.parameters():
            if id(param) in seen or not param.requires_grad:
                continue
            seen.add(id(param))
            (gaussian if id(param) in gaussian_ids else others).append(param)
    groups: list[dict] = []
    if others:
        groups.append({"params": others, "weight_decay": float(weight_decay)})
    if gaussian:
        group: dict = {"params": gaussian, "weight_decay": 0.0}
        if gaussian_lr is not None:
            group["lr"] = float(gaussian_lr)
        groups.append(group)
    return groups
