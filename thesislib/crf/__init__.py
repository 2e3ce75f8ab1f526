"""Dense (fully-connected) CRF mean-field inference: pydensecrf wrapper and batched PyTorch paths.

``dense_crf(unary, image, params, method)`` is the entry point (``thesislib.crf.dense``);
``DenseCRFParams.sec_train()`` / ``sec_test()`` are SEC's parameter presets; the reference
implementation is wrapped in ``thesislib.crf.reference`` (pydensecrf, imported lazily).
"""

from thesislib.crf.dense import dense_crf, mean_field, resolve_method, unary_from_probabilities
from thesislib.crf.params import SEC_TEST, SEC_TRAIN, DenseCRFParams
from thesislib.crf.permutohedral import PermutohedralLattice
from thesislib.crf.reference import pydensecrf_available, pydensecrf_batch, pydensecrf_inference

__all__ = [
    "DenseCRFParams",
    "SEC_TRAIN",
    "SEC_TEST",
    "dense_crf",
    "mean_field",
    "resolve_method",
    "unary_from_probabilities",
    "PermutohedralLattice",
    "pydensecrf_available",
    "pydensecrf_batch",
    "pydensecrf_inference",
]
