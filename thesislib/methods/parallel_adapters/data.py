"""Chapter 4's data: chapter 3's domains (:mod:`thesislib.methods.residual_adapters.data`) and a
stratified share of a target's training set (Fig. 4c)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from thesislib.data.mini_decathlon import stratified_indices
from thesislib.methods.residual_adapters.data import Domain, load_domain, load_domains

__all__ = ["Domain", "fraction_of", "load_domain", "load_domains"]


def _labels(dataset: torch.utils.data.Dataset) -> np.ndarray:
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return dataset.tensors[1].numpy()
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise TypeError(f"cannot read the labels of a {type(dataset).__name__}")
    return np.asarray(labels)


def fraction_of(domain: Domain, fraction: float, seed: int) -> Domain:
    """``domain`` with a stratified ``fraction`` of its training set (at least one image per class),
    drawn with ``seed``; the test set is unchanged."""
    if fraction >= 1.0:
        return domain
    keep = stratified_indices(_labels(domain.train), fraction, np.random.default_rng(seed))
    return Domain(domain.name, Subset(domain.train, keep.tolist()), domain.test, domain.num_classes)
