"""Semi-supervised learning with scarce annotations (Rebuffi, Ehrhardt, Han, Vedaldi & Zisserman;
Rebuffi thesis ch. 5).

Algorithm 1: RotNet self-supervised preparation, then cycles of a supervised phase on the few labelled
images, pseudo-labelling, a random two-thirds split, a restart from the RotNet weights and an
unsupervised phase with the pseudo-label and temporal terms; against the labelled-set, Π-model and
Mean Teacher baselines. Modules:

* :mod:`~thesislib.methods.scarce_annotations.config` — :class:`ScarceParams`, the variants;
* :mod:`~thesislib.methods.scarce_annotations.data` — digits (smoke), CIFAR-10/100, SVHN, MIT-67, Places10, the
  labelled subset;
* :mod:`~thesislib.methods.scarce_annotations.model` — backbone + rotation head, then the classifier;
* :mod:`~thesislib.methods.scarce_annotations.losses` — the temporal target (hard or soft labels), the split, the
  Π loss, Mean Teacher's logit distance;
* :mod:`~thesislib.methods.scarce_annotations.train` — every stage through the engine; torchrun entry point;
* :mod:`~thesislib.methods.scarce_annotations.moons` — Fig. 1 (Π-model on two moons) computed exactly;
* :mod:`~thesislib.methods.scarce_annotations.experiments` — replicates, claims and their verdicts;
* :mod:`~thesislib.methods.scarce_annotations.plots` — the chapter's figures.
"""

from thesislib.methods.scarce_annotations.config import (
    VARIANTS,
    ScarceParams,
    config_for,
    scarce_config,
    variant_config,
)
from thesislib.methods.scarce_annotations.data import ScarceData, labelled_subset, load_data
from thesislib.methods.scarce_annotations.losses import TemporalTargets, cycle_subset, temporal_target, unlabelled_loss
from thesislib.methods.scarce_annotations.moons import pi_moons
from thesislib.methods.scarce_annotations.train import run_stage, train_alternating

__all__ = [
    "VARIANTS", "ScarceData", "ScarceParams", "TemporalTargets", "config_for", "cycle_subset", "labelled_subset",
    "load_data", "pi_moons", "run_stage", "scarce_config", "temporal_target", "train_alternating",
    "unlabelled_loss", "variant_config",
]
