"""The losses of the chapter (Jenni §4.2).

* Eq. 4.1: L_SSL = (1 / (K N)) Σ_i Σ_y ℓ_cls(C(T_y ∘ x_i), y), ℓ_cls the softmax cross-entropy (C minimises).
* The patch discriminator D: the hinge loss (Lim & Ye; thesis ref. [140]),
  L_D = E[max(0, 1 − D(e, ê))] + E[max(0, 1 + D(r, ê))], with the real pair (e, ê) and the fake (r, ê).
* The inpainter F (L_inp, with the shortcut prevention L_inp,AE of §4.2.4):
  L_F = −E[D(r, ê)] + λ_border · |(r − e) ⊙ (1 − m)|² + λ_AE · |F(e) − e|² − L_SSL.
  Both squared norms are means over the entries they cover (the border entries, and all entries of the
  autoencoded patches), as the official code's MSE terms are; the thesis writes a per-image squared norm
  averaged over the batch, which differs from this by a constant factor absorbed in λ (a decision).
  The −L_SSL term makes F adversarial to C (switched off in Table 4.1 (e)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from thesislib.nn.gan import hinge_d_loss, hinge_g_loss

__all__ = ["autoencoding_loss", "border_loss", "discriminator_loss", "inpainter_loss", "ssl_loss"]


def ssl_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 4.1: mean softmax cross-entropy of C's ``logits`` (K·N, K) against the transformation ``labels``."""
    return F.cross_entropy(logits, labels)


def border_loss(r: torch.Tensor, e: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean of (r − e)² over the border entries (where m = 0): r, e (B, C, p, p), m (1, 1, p, p) in {0, 1}."""
    keep = (1.0 - m).expand_as(r)
    return (keep * (r - e) ** 2).sum() / keep.sum().clamp_min(1.0)


def autoencoding_loss(recon: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Mean of (F(e) − e)² (the patch autoencoding of §4.2.4); 0 for an empty batch."""
    if recon.numel() == 0:
        return recon.new_zeros(())
    return F.mse_loss(recon, e)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """D's hinge loss on the scores of real pairs (e, ê) and inpainted pairs (r, ê), (B,) each."""
    return hinge_d_loss(d_real, d_fake)


def inpainter_loss(d_fake: torch.Tensor, r: torch.Tensor, e: torch.Tensor, m: torch.Tensor,
                   recon: torch.Tensor, e_ae: torch.Tensor, l_ssl: torch.Tensor | None, lambda_border: float,
                   lambda_ae: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_F (scalar) and its terms: hinge generator term, λ_border · border MSE, λ_AE · autoencoding MSE of
    ``recon`` = F(e_ae) against ``e_ae`` (h, C, p, p), minus ``l_ssl`` (C's Eq. 4.1 loss on the batch holding F's
    patches; ``None``: no adversarial feedback from C)."""
    terms = {"gan": hinge_g_loss(d_fake), "border": border_loss(r, e, m), "ae": autoencoding_loss(recon, e_ae)}
    total = terms["gan"] + lambda_border * terms["border"] + lambda_ae * terms["ae"]
    if l_ssl is not None:
        terms["neg_ssl"] = -l_ssl
        total = total - l_ssl
    return total, terms
