"""G-softmax (Luo et al., TNNLS 2020): Gaussian-based softmax for compact, separable logits.

Public API:

* :mod:`~thesislib.methods.gsoftmax.transform`: ``GaussianLogitTransform`` (Eqs. 3-4), ``Phi``,
  ``phi``, ``gaussian_transform``, ``gsoftmax_param_groups`` (no weight decay on mu/sigma).
* :mod:`~thesislib.methods.gsoftmax.losses`: single-label cross-entropy (Eq. 13), the multi-label
  losses (Eqs. 14-16; default = the released code's per-class 2-way softmax), ``multilabel_scores``.
* :mod:`~thesislib.methods.gsoftmax.gradients`: corrected and printed closed-form gradients (Eqs. 5-12).
* :mod:`~thesislib.methods.gsoftmax.measures`: KL (Eq. 18), separability (Eq. 19), compactness,
  ratio (Eq. 20), learned and empirical per class.
* :mod:`~thesislib.methods.gsoftmax.lsoftmax`: the L-softmax baseline layer.
* :mod:`~thesislib.methods.gsoftmax.mosaics`: the 2x2 digit-mosaic multi-label demo data.

The chapter's parameters, run side and notebook plan live in submodules that are imported explicitly
(``train`` is also the ``python -m thesislib.methods.gsoftmax.train`` entry point that ``torchrun``
launches, so this package does not import it). Their imports run one way, from the top down:

* :mod:`~thesislib.methods.gsoftmax.config`: ``GSoftmaxParams`` (the notebook's parameters, the
  configs' keys), ``RunSpec`` (one run, derived from them), ``single_label_runs``/``multilabel_runs``.
* :mod:`~thesislib.methods.gsoftmax.protocol`: the paper's protocol and ``experiment_id``.
* :mod:`~thesislib.methods.gsoftmax.data`: a run's data on the device (``prepare_data``).
* :mod:`~thesislib.methods.gsoftmax.model`: ``GSoftmaxNet`` and ``build_model``.
* :mod:`~thesislib.methods.gsoftmax.evaluate`: test-set outputs through ``engine.evaluate`` and the metrics.
* :mod:`~thesislib.methods.gsoftmax.train`: ``train``, ``run`` / ``run_many`` (in-process or DDP
  through torchrun), ``main``, ``GSoftmaxResult``.
* :mod:`~thesislib.methods.gsoftmax.experiments`: replicates, paired verdicts, Tables V/VI procedures.
* :mod:`~thesislib.methods.gsoftmax.plots`: the chapter's figures.
"""

from thesislib.methods.gsoftmax.gradients import (
    GSoftmaxGradients,
    autograd_gradients,
    corrected_gradients,
    paper_gradients,
    paper_phi_partials,
)
from thesislib.methods.gsoftmax.losses import (
    MULTILABEL_READINGS,
    gsoftmax_cross_entropy,
    gsoftmax_multilabel_loss,
    gsoftmax_predict,
    multilabel_scores,
    multilabel_soft_margin_loss,
    split_pos_neg,
)
from thesislib.methods.gsoftmax.lsoftmax import BetaSchedule, LargeMarginLinear, cos_m_theta, psi
from thesislib.methods.gsoftmax.measures import (
    EmpiricalMeasures,
    LearnedMeasures,
    compactness,
    empirical_measures,
    empirical_measures_multilabel,
    gaussian_kl,
    learned_measures,
    separability,
    separability_sigma_ratio,
    symmetric_kl,
)
from thesislib.methods.gsoftmax.mosaics import DigitMosaics, digit_mosaic_splits, make_digit_mosaics
from thesislib.methods.gsoftmax.transform import (
    SIGMA_PARAMS,
    GaussianLogitTransform,
    Phi,
    gaussian_transform,
    gsoftmax_param_groups,
    phi,
)

__all__ = [
    "BetaSchedule",
    "DigitMosaics",
    "EmpiricalMeasures",
    "GSoftmaxGradients",
    "GaussianLogitTransform",
    "LargeMarginLinear",
    "LearnedMeasures",
    "MULTILABEL_READINGS",
    "Phi",
    "SIGMA_PARAMS",
    "autograd_gradients",
    "compactness",
    "corrected_gradients",
    "cos_m_theta",
    "digit_mosaic_splits",
    "empirical_measures",
    "empirical_measures_multilabel",
    "gaussian_kl",
    "gaussian_transform",
    "gsoftmax_cross_entropy",
    "gsoftmax_multilabel_loss",
    "gsoftmax_param_groups",
    "gsoftmax_predict",
    "learned_measures",
    "make_digit_mosaics",
    "multilabel_scores",
    "multilabel_soft_margin_loss",
    "paper_gradients",
    "paper_phi_partials",
    "phi",
    "psi",
    "separability",
    "separability_sigma_ratio",
    "split_pos_neg",
    "symmetric_kl",
]
