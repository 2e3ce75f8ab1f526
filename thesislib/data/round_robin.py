"""Several domains in one training run: round-robin batches and domain-labelled images.

Rebuffi's "finetune all" (thesis Ch. 3 §5, study note 003 §1.2) trains one network on every domain
"sampling one batch per dataset in round-robin"; the unknown-domain setting ("dom-pred") trains a
classifier whose label is the domain of the image. Both read the domains' ordinary datasets of
``(image (3, H, W), label)``; image sizes may differ between domains (the decathlon keeps GTSRB,
Omniglot and SVHN at 72 px), never within one.

* :class:`RoundRobinDomains`: item ``i`` belongs to global step ``s = i // B`` (``B`` the global
  batch) and to domain :func:`round_robin_domain` ``(s, T) = s mod T``; within its domain it is
  position ``(s // T) * B + i mod B`` of an endless sequence of seeded per-domain permutations
  (one permutation per pass over that domain: sampling without replacement, like epochs).
  Read in order (the engine's ``TrainConfig.shuffle=False``: step ``s`` uses the indices
  ``s*B .. s*B + B - 1``, each rank a contiguous slice of them), so the domain of a step is a
  function of the step index and the global batch only: the same on every rank and after a resume.
* :func:`collate_domain_batch`: ``(x (b, 3, H, W), y (b,), domain: int)``; the domain stays a
  Python int, so the step function picks the domain's modules without a host-device sync.
* :class:`DomainLabelled`: the concatenation of the domains' images, each with its domain index
  as the label, centre-cropped to one side so batches of mixed domains stack.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

__all__ = ["DomainLabelled", "RoundRobinDomains", "center_crop", "collate_domain_batch", "round_robin_domain"]


def round_robin_domain(step: int, n_domains: int) -> int:
    """The domain of optimiser step ``step`` (0-based) when ``n_domains`` take turns: ``step mod T``."""
    if n_domains < 1:
        raise ValueError(f"n_domains must be positive, got {n_domains}")
    return int(step) % int(n_domains)


class RoundRobinDomains(Dataset):
    """``steps`` global batches of ``batch_size`` items, step ``s`` drawn from domain ``s mod T``.

    Item ``i`` -> ``(image, label, domain)`` (module docstring). ``seed`` sets the per-domain
    permutations (pass ``e`` over domain ``d`` is the permutation seeded by ``(seed, d, e)``)."""

    def __init__(self, datasets: Sequence[Dataset], batch_size: int, steps: int, seed: int = 0) -> None:
        if not datasets:
            raise ValueError("RoundRobinDomains needs at least one domain")
        if batch_size < 1 or steps < 1:
            raise ValueError(f"batch_size and steps must be positive, got {batch_size} and {steps}")
        empty = [d for d, ds in enumerate(datasets) if len(ds) == 0]
        if empty:
            raise ValueError(f"domain(s) {empty} have no training images")
        self.datasets, self.batch_size, self.steps, self.seed = list(datasets), int(batch_size), int(steps), int(seed)
        self.sizes = [len(ds) for ds in self.datasets]

    def __len__(self) -> int:
        return self.steps * self.batch_size

    @property
    def n_domains(self) -> int:
        return len(self.datasets)

    def _order(self, domain: int, epoch: int) -> np.ndarray:
        return _permutation(self.sizes[domain], self.seed, domain, epoch)

    def locate(self, index: int) -> tuple[int, int]:
        """(domain, index in that domain's dataset) of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range ({len(self)} items)")
        step, within = divmod(int(index), self.batch_size)
        domain = round_robin_domain(step, self.n_domains)
        position = (step // self.n_domains) * self.batch_size + within
        epoch, offset = divmod(position, self.sizes[domain])
        return domain, int(self._order(domain, epoch)[offset])

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        domain, i = self.locate(index)
        x, y = self.datasets[domain][i][:2]
        return x, y, domain


@lru_cache(maxsize=64)
def _permutation(n: int, seed: int, domain: int, epoch: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, domain, epoch])))
    return rng.permutation(n)


def collate_domain_batch(items: list[tuple[Any, Any, int]]) -> tuple[Tensor, Tensor, int]:
    """Items of one domain -> ``(x (b, ...), y (b,), domain)``; a batch mixing domains is an error."""
    domains = {int(item[2]) for item in items}
    if len(domains) != 1:
        raise ValueError(f"a round-robin batch must come from one domain, got domains {sorted(domains)}")
    x, y = default_collate([(item[0], item[1]) for item in items])
    return x, y, domains.pop()


def center_crop(x: Tensor, size: int) -> Tensor:
    """The central ``size`` x ``size`` window of (..., H, W) (H, W >= size)."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


class DomainLabelled(Dataset):
    """The images of every domain, labelled by their domain index: item -> ``(center_crop(image,
    crop) (3, crop, crop), domain)``, domains in order, each dataset whole (the domains' natural
    proportions)."""

    def __init__(self, datasets: Sequence[Dataset], crop: int) -> None:
        self.datasets, self.crop = list(datasets), int(crop)
        self.ends = np.cumsum([len(ds) for ds in self.datasets]).tolist()

    def __len__(self) -> int:
        return int(self.ends[-1]) if self.ends else 0

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range ({len(self)} items)")
        domain = bisect.bisect_right(self.ends, index)
        start = self.ends[domain - 1] if domain else 0
        x = self.datasets[domain][index - start][0]
        return center_crop(torch.as_tensor(x), self.crop), torch.tensor(domain)
