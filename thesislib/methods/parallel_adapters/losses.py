"""Chapter 4's loss is chapter 3's cross-entropy per domain
(:func:`thesislib.methods.residual_adapters.train.classification_step`); the adapters' shrinkage is the
optimiser's per-group weight decay (:func:`thesislib.nn.multidomain.param_groups`)."""
