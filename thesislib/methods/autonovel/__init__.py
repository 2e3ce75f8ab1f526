"""AutoNovel: discovering new classes with ranking statistics (Han, Rebuffi, Ehrhardt, Vedaldi & Zisserman,
ICLR 2020; Rebuffi thesis ch. 6).

Given labelled images of C^l classes and unlabelled images of C^u new classes, (1) RotNet
self-supervision on all images, (2) supervised training of head 1 on the labelled classes, (3) joint
training of head 1 (CE) and a clustering head 2 on pairwise pseudo-labels from ranking statistics
(BCE), with an MSE consistency ramped up over training; optionally incremental learning. Modules:

* :mod:`~thesislib.methods.autonovel.config` — :class:`AutoNovelParams`, the ablation variants;
* :mod:`~thesislib.methods.autonovel.data` — digits (smoke), CIFAR-10/100, SVHN, OmniGlot and ImageNet (full), views,
  metric-learning episodes;
* :mod:`~thesislib.methods.autonovel.model` — the two-headed network, the I.L. head extension;
* :mod:`~thesislib.methods.autonovel.losses` — the joint objective (eqs. 3-5), the prototypical loss;
* :mod:`~thesislib.methods.autonovel.train` — the three steps (RotNet or metric learning, supervised, joint)
  through the engine; torchrun entry point;
* :mod:`~thesislib.methods.autonovel.evaluate` — ACC / NMI / ARI on the new classes, Table 4;
* :mod:`~thesislib.methods.autonovel.experiments` — replicates, ablations, baselines and verdicts; OmniGlot's
  per-alphabet runs; with C^u unknown (``num_novel``), DTC's estimate of it (App. E, Table 6);
* :mod:`~thesislib.methods.autonovel.plots` — the estimator's per-candidate scores.
"""

from thesislib.methods.autonovel.config import VARIANTS, AutoNovelParams, autonovel_config, variant_config
from thesislib.methods.autonovel.data import NovelData, load_data
from thesislib.methods.autonovel.evaluate import incremental_scores, novel_scores
from thesislib.methods.autonovel.losses import joint_loss
from thesislib.methods.autonovel.train import joint, pretrain, run_stage, supervised

__all__ = ["VARIANTS", "AutoNovelParams", "NovelData", "autonovel_config", "incremental_scores", "joint",
           "joint_loss", "load_data", "novel_scores", "pretrain", "run_stage", "supervised", "variant_config"]
