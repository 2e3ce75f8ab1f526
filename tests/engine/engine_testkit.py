"""Small models, datasets and step functions shared by the engine tests (CPU, deterministic)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset


class RegressionSet(Dataset):
    """``n`` fixed inputs ``(6,)`` with linear targets ``(2,)``; ``noise`` adds augmentation noise
    drawn from the global torch RNG in ``__getitem__`` (so RNG restoration covers the data too)."""

    def __init__(self, n: int = 37, noise: float = 0.0) -> None:
        gen = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, 6, generator=gen)
        self.y = self.x @ torch.randn(6, 2, generator=gen) + 0.1 * torch.randn(n, 2, generator=gen)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        if self.noise:
            x = x + self.noise * torch.randn(6)
        return x, self.y[i]


class MLP(nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def regression_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    x, y = batch
    out = model(x)
    return F.mse_loss(out, y), {"mae": (out - y).abs().mean()}


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.state_dict().values()]
