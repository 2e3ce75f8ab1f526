"""Exponential moving average (Polyak averaging) of a model's parameters."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """A shadow copy of ``model`` whose parameters track ``θ̄ ← d·θ̄ + (1 − d)·θ`` per update.

    ``update(model)`` is called once per optimiser step (no host-device sync: one fused
    ``lerp`` over all floating-point parameters). Buffers (e.g. BatchNorm running statistics)
    are copied, not averaged. ``module`` is the shadow model, in eval mode and without
    gradients, ready for evaluation; its state goes into checkpoints via :meth:`state_dict`.
    After ``t`` updates from ``θ̄_0 = θ_0``: ``θ̄_t = d^t θ_0 + (1 − d) Σ_i d^(t−i) θ_i``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step ``θ̄ ← d·θ̄ + (1 − d)·θ`` from the live ``model``; buffers are copied."""
        shadow = dict(self.module.named_parameters())
        pairs = [(shadow[name], p.detach()) for name, p in model.named_parameters() if p.is_floating_point()]
        if pairs:
            ema, live = zip(*pairs)
            torch._foreach_lerp_(list(ema), list(live), 1.0 - self.decay)
        for buf, live_buf in zip(self.module.buffers(), model.buffers()):
            buf.copy_(live_buf)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        """The shadow weights, the decay and the update count, for checkpoints."""
        return {"module": self.module.state_dict(), "decay": self.decay, "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["module"])
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
