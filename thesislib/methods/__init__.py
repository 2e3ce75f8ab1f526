"""Method chapters: one subpackage per chapter (losses, method-specific models, train/evaluate).

Nothing is imported here; import the chapter you need, e.g.
``from thesislib.methods.gsoftmax import GaussianLogitTransform``.
"""
