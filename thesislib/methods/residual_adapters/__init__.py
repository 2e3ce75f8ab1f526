"""Chapter 3 of Rebuffi's thesis: residual (series) adapters and the Visual Decathlon.

Modules: ``config`` (:class:`ResidualAdaptersParams`, schedules, experiment ids), ``data`` (the
mini-decathlon or the Visual Decathlon as :class:`Domain` objects), ``model`` (each method's
starting network), ``train`` (source pre-training with a cached checkpoint, one target run,
"finetune all" over every domain in round-robin, the domain predictor, the torchrun entry point),
``evaluate`` (accuracy through the engine, forgetting, accuracy with the predicted domain),
``experiments`` (replicates, S, parameter account, decay study, verdicts), ``plots``. The network, the adapters,
the modes and the decathlon score are shared library pieces (:mod:`thesislib.nn.resnet26_adapters`,
:mod:`thesislib.nn.multidomain`, :mod:`thesislib.eval.decathlon`).
"""

from thesislib.methods.residual_adapters.config import ResidualAdaptersParams, adapters_config, config_for

__all__ = ["ResidualAdaptersParams", "adapters_config", "config_for"]
