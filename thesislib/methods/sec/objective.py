"""SEC's objective, Eq. 2.1: seeding + expansion + constrain-to-boundary, with switches.

:class:`SECLoss` computes the three terms of :mod:`thesislib.methods.sec.losses` from one
forward pass (equal weights, as in the thesis and the released ``train.prototxt``). Each term can
be switched off (the loss-term ablation of Fig. 2.7), and the pooling of the present classes can
be GWRP, GMP or GAP (the pooling ablation of Fig. 2.6: absent classes always use d- and the
background always d_bg).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from thesislib.crf import SEC_TRAIN, DenseCRFParams
from thesislib.methods.sec.losses import (
    constrain_loss,
    constrain_targets,
    cue_onehot,
    downscale_image,
    expansion_loss,
    sec_probabilities,
    seeding_loss,
)

Pooling = Literal["gwrp", "gmp", "gap"]
POOLINGS: tuple[str, ...] = ("gwrp", "gmp", "gap")


@dataclass(frozen=True)
class SECLossConfig:
    """Switches and constants of :class:`SECLoss`.

    ``pooling`` sets the decay of the present classes: ``"gwrp"`` uses ``d_plus``, ``"gmp"`` 0
    and ``"gap"`` 1. ``prob_floor`` / ``q_floor``: the released code's 1e-4 floors (0 = off).
    ``crf`` holds the training CRF's kernels (``spatial_scale`` 12 for 41 x 41 masks).
    """

    seed: bool = True
    expand: bool = True
    constrain: bool = True
    pooling: Pooling = "gwrp"
    d_plus: float = 0.996
    d_minus: float = 0.0
    d_bg: float = 0.999
    prob_floor: float = 1e-4
    seed_background: bool = True
    seed_normalization: Literal["image", "batch"] = "image"
    crf: DenseCRFParams = field(default_factory=lambda: SEC_TRAIN)
    crf_method: str = "permutohedral"
    crf_unary: Literal["logits", "log_probs"] = "logits"
    crf_grad: Literal["stop", "unrolled"] = "stop"
    q_floor: float = 1e-4

    def __post_init__(self) -> None:
        if not (self.seed or self.expand or self.constrain):
            raise ValueError("SECLossConfig: switch on at least one of seed, expand, constrain")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("d_plus", "d_minus", "d_bg"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def present_decay(self) -> float:
        """d+ actually used for the present classes (after the pooling choice)."""
        return {"gwrp": self.d_plus, "gmp": 0.0, "gap": 1.0}[self.pooling]


class SECLossOutput(NamedTuple):
    """``loss`` (0-dim) and its enabled terms (0-dim, ``None`` when switched off); ``probs`` f
    (B, K, h, w); ``q`` the CRF output (B, K, h, w, no gradient), ``None`` without the constrain
    term."""

    loss: Tensor
    seed: Tensor | None
    expand: Tensor | None
    constrain: Tensor | None
    probs: Tensor
    q: Tensor | None


class SECLoss(nn.Module):
    """Eq. 2.1 for a batch: ``L_seed + L_expand + L_constrain`` (each optional).

    ``forward(logits, labels, cues, images)``:

    * logits (B, K, h, w) network scores (any float dtype; computed in float32);
    * labels (B, K-1) multi-hot present foreground classes;
    * cues (B, h, w) cue label map (255 = no cue) or (B, K, h, w) one-hot;
    * images (B, 3, H, W) on the 0-255 scale (only read by the constrain term; downscaled to
      h x w here) or already (B, 3, h, w).
    """

    def __init__(self, config: SECLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or SECLossConfig()

    def forward(self, logits: Tensor, labels: Tensor, cues: Tensor | None, images: Tensor | None) -> SECLossOutput:
        cfg = self.config
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        probs = sec_probabilities(logits, cfg.prob_floor)
        total = torch.zeros((), dtype=probs.dtype, device=probs.device)
        seed = expand = constrain = q = None
        if cfg.seed:
            if cues is None:
                raise ValueError("the seeding loss needs cues")
            seed = seeding_loss(probs, cue_onehot(cues.to(probs.device), probs.shape[1]),
                                include_background=cfg.seed_background, normalization=cfg.seed_normalization)
            total = total + seed
        if cfg.expand:
            expand = expansion_loss(probs, labels.to(probs.dtype), cfg.present_decay, cfg.d_minus, cfg.d_bg)
            total = total + expand
        if cfg.constrain:
            if images is None:
                raise ValueError("the constrain-to-boundary loss needs the images")
            small = images if images.shape[-2:] == logits.shape[-2:] else downscale_image(images, logits.shape[-2:])
            q = constrain_targets(logits, probs, small, cfg.crf, method=cfg.crf_method, unary=cfg.crf_unary,
                                  grad=cfg.crf_grad, q_floor=cfg.q_floor)
            constrain = constrain_loss(probs, q)
            total = total + constrain
            q = q.detach()
        return SECLossOutput(total, seed, expand, constrain, probs, q)
