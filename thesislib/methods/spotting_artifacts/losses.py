"""The losses of learning to spot artifacts (Jenni ch. 3, Eqs. 3.3-3.4 and the mask loss).

With x the input, x_r the image shown to C as real (D(E(x)), or x in ablation a), x̂ = D̂(φ̂(x)) the
repaired corruption, Ω its drop mask and U(Ω) the mask at image resolution:

* autoencoder (Eq. 3.3): L_auto = w_ae · mean (D(E(x)) − x)²;
* discriminator: the real/corrupt part of Eq. 3.4 as a sigmoid cross-entropy,
  E[softplus(−C(x_r))] + E[softplus(C(x̂))], plus w_mask · BCE(C^mask, Ω) over real (target all ones,
  nothing dropped; [code]) and corrupted images. The thesis prints the mask term with an
  inconsistent sign; it is implemented as the binary cross-entropy it must be;
* repair network: the non-saturating generator form of Eq. 3.4, E[softplus(−C(x̂))], plus
  w_rep · sum(U(Ω) ⊙ (x̂ − x)²) / sum(U(Ω) broadcast over channels): the mean squared error over
  the *kept* pixels only ([code]: TensorFlow's weighted MSE divides by the non-zero weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from thesislib.nn.gan import nonsaturating_d_loss, nonsaturating_g_loss


def autoencoder_loss(recon: torch.Tensor, x: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` · mean squared error (scalar); ``recon``, ``x`` (B, C, H, W)."""
    return weight * F.mse_loss(recon, x)


def mask_loss(mask_logits: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Mean BCE of the mask logits (B, M, N) against Ω (B, 1, M, N) or (B, M, N) (1 = kept)."""
    target = omega.reshape(mask_logits.shape).to(mask_logits.dtype)
    return F.binary_cross_entropy_with_logits(mask_logits, target)


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor, mask_logits: torch.Tensor | None,
                       mask_target: torch.Tensor | None, mask_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, mask term) of C's loss; the mask term is 0 without a mask head."""
    adv = nonsaturating_d_loss(logit_real, logit_fake)
    if mask_logits is None or mask_target is None:
        zero = adv.new_zeros(())
        return adv, zero
    m = mask_loss(mask_logits, mask_target)
    return adv + mask_weight * m, m


def repair_loss(logit_fake: torch.Tensor, fake: torch.Tensor, x: torch.Tensor, keep: torch.Tensor,
                mse_weight: float) -> torch.Tensor:
    """R's loss: non-saturating adversarial term + ``mse_weight`` · MSE over the kept pixels.

    ``fake``, ``x`` (B, C, H, W); ``keep`` = U(Ω) (B, 1, H, W) in {0, 1}. With nothing kept the
    reconstruction term is 0.
    """
    weights = keep.expand_as(fake)
    mse = (weights * (fake - x) ** 2).sum() / weights.sum().clamp_min(1.0)
    return nonsaturating_g_loss(logit_fake) + mse_weight * mse
