"""PixelCNN models with auxiliary variables (Kolesnikov & Lampert, ICML 2017; Kolesnikov thesis, chapter 4).

Grayscale PixelCNN (X̂ = the 4-bit luma) and Pyramid PixelCNN (X̂ = the half-resolution image),
both p(X, X̂) = p(X̂) p(X | X̂) (Eq. 4.2), built on :mod:`thesislib.nn.pixelcnn`. Modules:

* :mod:`~thesislib.methods.pixelcnn_aux.config` — :class:`PixelCNNAuxParams` (the one parameter
  declaration), the parts and their network sizes, the engine config, experiment ids;
* :mod:`~thesislib.methods.pixelcnn_aux.data` — coloured digits / CIFAR-10, procedural faces /
  CelebA, and each part's items (X, X̂, pyramid levels);
* :mod:`~thesislib.methods.pixelcnn_aux.model` — one part's PixelCNN++ and its f_w;
* :mod:`~thesislib.methods.pixelcnn_aux.losses` — the terms of Eq. 4.4 (DMOL / 16-way softmax);
* :mod:`~thesislib.methods.pixelcnn_aux.train` — one part through the engine; torchrun entry point;
* :mod:`~thesislib.methods.pixelcnn_aux.evaluate` — bits/dim (Eq. 4.5 split, per resolution),
  sampling, recognisability, sampling speed;
* :mod:`~thesislib.methods.pixelcnn_aux.experiments` — replicates, claims, verdicts;
* :mod:`~thesislib.methods.pixelcnn_aux.plots` — the figures.
"""

from thesislib.methods.pixelcnn_aux.config import PixelCNNAuxParams, part_spec, pixelcnn_aux_config

__all__ = ["PixelCNNAuxParams", "part_spec", "pixelcnn_aux_config"]
