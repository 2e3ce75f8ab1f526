"""Parameters of the fully-connected CRF of Krähenbühl & Koltun (NIPS 2011), as used by SEC.

The model has two Potts pairwise terms (Kolesnikov thesis, ch. 2, Eq. 2.5 builds on it):

* a *bilateral* (appearance) kernel ``w1 * exp(-|p_i-p_j|^2 / (2 theta_alpha^2)
  - |I_i-I_j|^2 / (2 theta_beta^2))`` on pixel positions ``p`` and RGB colours ``I`` (0-255);
* a *Gaussian* (smoothness) kernel ``w2 * exp(-|p_i-p_j|^2 / (2 theta_gamma^2))`` on positions.

SEC's code calls the same C++ library with every *spatial* standard deviation divided by a
``scale_factor`` (12 in training, where the image is downscaled to the 41x41 output; 1 at test
time on the full image). :class:`DenseCRFParams` stores the unscaled thetas plus that divisor
(``spatial_scale``); the effective values are the ``*_px`` properties.

Model conventions that other dense-CRF code varies are fields too (see ``thesislib.crf.dense``):
``normalization`` ("symmetric" is the library default that SEC and pydensecrf use) and
``include_self`` (whether the message to pixel i includes j = i; the C++ library includes it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Normalization = Literal["symmetric", "after", "before", "none"]
NORMALIZATIONS: tuple[str, ...] = ("symmetric", "after", "before", "none")


@dataclass(frozen=True)
class DenseCRFParams:
    """Kernel weights, standard deviations and the number of mean-field iterations.

    Thetas are in pixels (spatial) and 0-255 intensity units (colour), *before* division by
    ``spatial_scale``. Use :meth:`sec_train` / :meth:`sec_test` for the SEC presets.
    """

    bilateral_weight: float = 10.0  # w1
    theta_alpha: float = 80.0  # bilateral spatial std (px, unscaled)
    theta_beta: float = 13.0  # bilateral colour std (0-255 units)
    gaussian_weight: float = 3.0  # w2
    theta_gamma: float = 3.0  # Gaussian spatial std (px, unscaled)
    iterations: int = 10
    spatial_scale: float = 1.0  # divisor of theta_alpha and theta_gamma (SEC: 12 in training)
    normalization: Normalization = "symmetric"
    include_self: bool = True

    def __post_init__(self) -> None:
        for name in ("theta_alpha", "theta_beta", "theta_gamma", "spatial_scale"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"DenseCRFParams.{name} must be > 0, got {value!r}")
        for name in ("bilateral_weight", "gaussian_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"DenseCRFParams.{name} must be >= 0, got {getattr(self, name)!r}")
        if int(self.iterations) != self.iterations or self.iterations < 0:
            raise ValueError(f"DenseCRFParams.iterations must be an integer >= 0, got {self.iterations!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"DenseCRFParams.normalization must be one of {NORMALIZATIONS}, "
                             f"got {self.normalization!r}")

    # effective (scaled) standard deviations -------------------------------------------------
    @property
    def theta_alpha_px(self) -> float:
        """Bilateral spatial std actually used: ``theta_alpha / spatial_scale`` (pixels)."""
        return self.theta_alpha / self.spatial_scale

    @property
    def theta_gamma_px(self) -> float:
        """Gaussian spatial std actually used: ``theta_gamma / spatial_scale`` (pixels)."""
        return self.theta_gamma / self.spatial_scale

    # constructors ---------------------------------------------------------------------------
    def scaled(self, spatial_scale: float) -> DenseCRFParams:
        """The same parameters with the spatial stds divided by ``spatial_scale``."""
        return dataclasses.replace(self, spatial_scale=float(spatial_scale))

    @classmethod
    def sec_test(cls, iterations: int = 10) -> DenseCRFParams:
        """SEC test-time post-processing on the full image (``deploy/demo.py``, scale 1)."""
        return cls(iterations=iterations)

    @classmethod
    def sec_train(cls, iterations: int = 10) -> DenseCRFParams:
        """SEC constrain-to-boundary CRF on the 41x41 downscaled image (``CRFLayer``, scale 12)."""
        return cls(iterations=iterations, spatial_scale=12.0)


SEC_TRAIN = DenseCRFParams.sec_train()
"""w1=10, theta_alpha=80/12, theta_beta=13, w2=3, theta_gamma=3/12, 10 iterations."""

SEC_TEST = DenseCRFParams.sec_test()
"""w1=10, theta_alpha=80, theta_beta=13, w2=3, theta_gamma=3, 10 iterations."""
