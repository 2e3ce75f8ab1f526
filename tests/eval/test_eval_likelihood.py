"""bits/dim and the two-part bound (thesis Eq. 4.5) on hand cases."""

from __future__ import annotations

import math

import pytest
import torch

from thesislib.eval import bits_per_dim, two_part_bits_per_dim


def test_bits_per_dim_hand_case():
    dims = 3 * 32 * 32
    assert bits_per_dim(2.0 * dims * math.log(2), dims) == pytest.approx(2.0)
    assert bits_per_dim(torch.full((4,), math.log(2)), 2) == pytest.approx(2.0)   # a tensor is summed
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)


def test_two_part_split_of_the_grayscale_pixelcnn():
    dims = 10 * 3 * 32 * 32
    ln2 = math.log(2)
    bpd = two_part_bits_per_dim(0.459 * dims * ln2, 2.52 * dims * ln2, dims)
    assert bpd.auxiliary == pytest.approx(0.459) and bpd.conditional == pytest.approx(2.52)
    assert bpd.total == pytest.approx(2.979)
    assert bpd.auxiliary_share == pytest.approx(0.459 / 2.979)
