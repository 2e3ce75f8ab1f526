"""LSD-C: linearly separable deep clusters (Rebuffi, Ehrhardt, Han, Vedaldi & Zisserman; Rebuffi thesis ch. 7).

Deep clustering by pairwise cluster predictions: pairwise pseudo-labels from a feature-space
adjacency (kNN, cosine, L2 or SNE) train a linear clustering head with the BCE on p_iᵀp_j, helped by
data composition (RICAP / MixUp) and an MSE consistency, on top of a RotNet-pre-trained network whose
first stages are frozen. Modules:

* :mod:`~thesislib.methods.lsdc.config` — :class:`LSDCParams`, the ablation variants, derived configs;
* :mod:`~thesislib.methods.lsdc.data` — the digits (smoke) and CIFAR-10 / CIFAR-100-20 / STL-10 / MNIST /
  Reuters-10K (full), views;
* :mod:`~thesislib.methods.lsdc.model` — the backbone with rotation / clustering heads (linear or Table 6's
  2-layer), the denoising autoencoder of Reuters-10K;
* :mod:`~thesislib.methods.lsdc.losses` — eqs. 5-8 from :mod:`thesislib.selfsup`;
* :mod:`~thesislib.methods.lsdc.train` — RotNet (or the DAE) and LSD-C through the engine; torchrun entry point;
* :mod:`~thesislib.methods.lsdc.evaluate` — ACC / NMI / ARI and the k-means baselines;
* :mod:`~thesislib.methods.lsdc.moons` — Fig. 2 (connection graphs on two moons) computed exactly;
* :mod:`~thesislib.methods.lsdc.experiments` — replicates, ablations, the L2 threshold grid search, claims and
  their verdicts;
* :mod:`~thesislib.methods.lsdc.plots` — the chapter's figures.
"""

from thesislib.methods.lsdc.config import VARIANTS, LSDCParams, config_for, lsdc_config, variant_config
from thesislib.methods.lsdc.data import LSDCData, augment, load_data
from thesislib.methods.lsdc.evaluate import predict, score_model
from thesislib.methods.lsdc.losses import lsdc_loss, pseudo_adjacency
from thesislib.methods.lsdc.moons import moon_graphs
from thesislib.methods.lsdc.train import pretrain, run_stage, train_lsdc

__all__ = [
    "VARIANTS", "LSDCData", "LSDCParams", "augment", "config_for", "load_data", "lsdc_config",
    "lsdc_loss", "moon_graphs", "predict", "pretrain", "pseudo_adjacency", "run_stage", "score_model",
    "train_lsdc", "variant_config",
]
