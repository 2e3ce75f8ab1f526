"""VOC07Input's normalisations (the transfer protocol's item transform)."""

from __future__ import annotations

import numpy as np
import torch

from thesislib.data.voc07 import VOC07Input


def test_voc07_input_symmetric_normalisation_maps_to_minus_one_one():
    """Jenni ch. 3's C was trained on [-1, 1]: VOC07Input offers that range (R4 #13)."""
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[:, 2:] = 255
    x, _ = VOC07Input(size=4, normalization="symmetric")({"image": img, "labels": np.zeros(20, dtype=np.int8)})
    assert torch.allclose(x[:, :, :2], torch.tensor(-1.0)) and torch.allclose(x[:, :, 2:], torch.tensor(1.0))
