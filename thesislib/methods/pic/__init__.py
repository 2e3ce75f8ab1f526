"""PIC: probabilistic image colorization (Royer, Kolesnikov & Lampert, BMVC 2017; Kolesnikov thesis, ch. 5).

p(X^ab | X^L) as a PixelCNN over the (subsampled) chroma channels conditioned on an embedding of the
lightness. Modules:

* :mod:`~thesislib.methods.pic.config` — :class:`PICParams`, the one parameter declaration, and the
  configs derived from it (g^w stages, DMOL size, the engine's config, experiment ids);
* :mod:`~thesislib.methods.pic.data` — RGB -> L and the low-resolution Lab canvas; the ambiguity
  images (smoke), CIFAR-10 and ILSVRC 128² (full);
* :mod:`~thesislib.methods.pic.model` — PIC (g^w + f^θ) and the g^w-only baseline;
* :mod:`~thesislib.methods.pic.losses` — Eqs. 5.1-5.3 in bits per chroma dimension;
* :mod:`~thesislib.methods.pic.train` — training through the engine, one replicate in-process or
  under torchrun, CLI;
* :mod:`~thesislib.methods.pic.evaluate` — bits/dim, sampling (exact fast sampler), Lab -> RGB,
  saturation, the ambiguity benchmark's measurements, sampling speed;
* :mod:`~thesislib.methods.pic.experiments` — replicates, claims and their verdicts;
* :mod:`~thesislib.methods.pic.plots` — the chapter's figures.
"""

from thesislib.methods.pic.config import PICParams, config_for, engine_config, experiment_id, pic_config
from thesislib.methods.pic.data import PICData, lab_inputs, load_data
from thesislib.methods.pic.evaluate import (
    ambiguity_scores,
    chroma_bpd,
    dmol_mean,
    image_saturation,
    sample_gw,
    sample_pic,
    sampling_speed,
    to_full_lab,
)
from thesislib.methods.pic.losses import chroma_bits_per_dim, chroma_nll_nats
from thesislib.methods.pic.model import PIC, GwOnly, build_gw_only, build_pic, gw_head
from thesislib.methods.pic.train import train_gw_only, train_pic

__all__ = [
    "PIC", "GwOnly", "PICData", "PICParams", "ambiguity_scores", "build_gw_only", "build_pic", "chroma_bits_per_dim",
    "chroma_bpd", "chroma_nll_nats", "config_for", "dmol_mean", "engine_config", "experiment_id", "gw_head",
    "image_saturation", "lab_inputs", "load_data", "pic_config", "sample_gw", "sample_pic", "sampling_speed",
    "to_full_lab", "train_gw_only", "train_pic",
]
