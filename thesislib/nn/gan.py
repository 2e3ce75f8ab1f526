"""GAN building blocks shared by the adversarial chapters (Jenni ch. 3, 4 and 7).

* :func:`spectral_normalize`: spectral normalisation (Miyato et al. 2018, thesis ref. [43]) of every
  convolution and linear layer of a module, through torch's
  ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training forward):
  W_SN = W / sigma(W), sigma(W) the largest singular value of W reshaped to (out, in * k * k).
* The losses, all means over the batch of raw discriminator scores (logits) ``d_real``, ``d_fake``:

  - hinge (Lim & Ye 2017; LCI's patch discriminator, thesis ch. 4):
    L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],  L_G = -E[D(G(z))];
  - non-saturating (Goodfellow et al. 2014; ch. 3's real/corrupt head, Eq. 3.4 with the usual
    generator trick): L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))],  L_G = E[softplus(-D(G(z)))]
    (softplus(-t) = -log sigmoid(t)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def spectral_normalize(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise every ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` in ``module`` (in place).

    Returns ``module``. Layers that already carry the parametrisation are left as they are.
    """
    for sub in list(module.modules()):
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if getattr(sub, "parametrizations", None) is not None and "weight" in sub.parametrizations:
                continue
            spectral_norm(sub, n_power_iterations=n_power_iterations,
                          dim=1 if isinstance(sub, nn.ConvTranspose2d) else 0)
    return module


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (scalar)."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss -E[D(G(z))] (scalar)."""
    return -d_fake.mean()


def nonsaturating_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """-E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))] (scalar), computed stably with softplus."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def nonsaturating_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """-E[log sigmoid(D(G(z)))] (scalar)."""
    return F.softplus(-d_fake).mean()
