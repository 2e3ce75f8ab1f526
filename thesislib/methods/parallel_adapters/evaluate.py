"""Chapter 4 evaluates as chapter 3 does (:mod:`thesislib.methods.residual_adapters.evaluate`):
top-1 accuracy of a domain through :func:`thesislib.engine.evaluate`."""

from thesislib.methods.residual_adapters.evaluate import domain_accuracy, evaluate_runs

__all__ = ["domain_accuracy", "evaluate_runs"]
