"""Chapter 4 of Rebuffi's thesis: parallel residual adapters, their placement, and the joint
cross-domain SVD compression.

Modules: ``config`` (:class:`ParallelAdaptersParams`, chapter 3's plus this chapter's studies),
``data`` (chapter 3's domains and training-set shares), ``model`` (the joint network holding every
target's adapters), ``train`` (methods, placements, compression and fine-tuning of the factors; the
torchrun entry point), ``evaluate``, ``experiments`` (replicates, S, verdicts), ``plots``.
"""

from thesislib.methods.parallel_adapters.config import ParallelAdaptersParams, parallel_config

__all__ = ["ParallelAdaptersParams", "parallel_config"]
