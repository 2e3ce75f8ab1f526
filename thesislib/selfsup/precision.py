"""Float32 islands inside the engine's bf16 autocast (CUDA ``amp``).

The pairwise pieces (squared distances, kNN / ranking pseudo-labels, p_iᵀq_j and its BCE) and the
heads whose argmax is scored are sensitive to bf16 rounding: ``||a||² + ||b||² - 2ab`` cancels, top-k
and argmax tie. They run under :func:`full_precision` (autocast off) on float32 inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from thesislib.engine.distributed import unwrap


def full_precision(t: Tensor) -> torch.autocast:
    """A context with autocast off on ``t``'s device type (matrix products inside stay float32)."""
    return torch.autocast(device_type=t.device.type, enabled=False)


def fp32_head(model: nn.Module, features: Tensor, name: str) -> Tensor:
    """Logits (B, K) of ``model.heads[name]`` on ``features`` (B, D) in float32 with autocast off (the
    features may come from a bf16 forward pass; the linear head and so the argmax do not)."""
    head = unwrap(model).heads[name]
    with full_precision(features):
        return head(features.float())
