"""Multi-layer perceptron for the CPU smoke runs (e.g. 8x8 digits, 16x16 digit mosaics).

On the 2-core CPU machines an MLP step costs about a millisecond where a tiny CNN costs tens
(study note 002, section 6a), so the chapters' smoke demos use this network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """Inputs (B, ...) flattened to (B, in_features) -> logits (B, num_outputs).

    Hidden layer ``i``: ``Linear -> [BatchNorm1d] -> ReLU -> [Dropout]``. ``features(x)`` is the
    activation the final linear layer reads (B, hidden[-1]), so ``forward(x) == head(features(x))``.
    """

    def __init__(self, in_features: int, num_outputs: int, hidden: Sequence[int] = (128, 64),
                 dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if in_features < 1 or num_outputs < 1 or not hidden or min(hidden) < 1:
            raise ValueError("in_features, num_outputs and every hidden width must be >= 1 (at least one hidden layer)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features, self.num_outputs, self.hidden = int(in_features), int(num_outputs), hidden
        layers: list[nn.Module] = []
        width = self.in_features
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.num_outputs)
        self.num_features = width

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activation (B, hidden[-1])."""
        return self.body(torch.flatten(x, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def mlp(in_features: int, num_outputs: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.0,
        batch_norm: bool = False) -> MLP:
    """Build :class:`MLP` (default 64-128-64-10 shape when ``in_features=64, num_outputs=10``)."""
    return MLP(in_features, num_outputs, hidden, dropout, batch_norm)
