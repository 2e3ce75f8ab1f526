"""Learning to spot artifacts (Jenni thesis ch. 3; Jenni & Favaro, CVPR 2018).

A discriminator C learns features by telling real images from images whose autoencoder code was
damaged (latent positions dropped and replaced by a local average) and then repaired by a gated,
distributed repair network, and by locating the damage. Modules: :mod:`.config` (parameters),
:mod:`.data`, :mod:`.model` (E, D, damage, R, C, history buffer), :mod:`.losses`, :mod:`.train` (the two
engine stages and the torchrun entry point), :mod:`.evaluate` (per-layer probes, spotting accuracy),
:mod:`.experiments` (replicates, claims, verdicts), :mod:`.plots`.
"""

from thesislib.methods.spotting_artifacts.config import SpottingArtifactsParams, spotting_artifacts_config
from thesislib.methods.spotting_artifacts.model import (
    AutoEncoder,
    DamageRepair,
    Discriminator,
    HistoryBuffer,
    RepairBlock,
    damage,
    drop_mask,
    receptive_field,
)

__all__ = ["AutoEncoder", "DamageRepair", "Discriminator", "HistoryBuffer", "RepairBlock", "SpottingArtifactsParams",
           "damage", "drop_mask", "receptive_field", "spotting_artifacts_config"]
