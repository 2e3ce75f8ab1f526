"""The chapter's loss: the cross-entropy of the domain's classifier, Φ_d = softmax(W_d φ_{α_d}(x))
(Ch. 3 §3.1), in :func:`thesislib.methods.residual_adapters.train.classification_step`. Shrinkage
of the adapters (the thesis's regulariser) is the optimiser's per-group weight decay
(:func:`thesislib.nn.multidomain.param_groups`), not a loss term."""
