"""Limited context inpainting, warping and rotation (Jenni thesis ch. 4; Jenni, Jin & Favaro, CVPR 2020).

A classifier C learns features by recognising which transformation was applied to an image: identity,
rotations by 90°, 180°, 270°, a random polyharmonic-spline warp, or limited-context inpainting (LCI), where an
inpainter F, trained against a patch discriminator D and adversarially against C, fills a patch from a thin
border of context. All of them keep local statistics and change global ones. Modules: :mod:`.config`
(parameters), :mod:`.transforms` (T_0..T_5 and C's batch), :mod:`.tiles` (Fig. 4.1's tile shuffle with
inpainted borders), :mod:`.data`, :mod:`.model` (F, D, C, the diagnostic
nets), :mod:`.losses`, :mod:`.train` (the engine update and the torchrun entry point), :mod:`.evaluate`,
:mod:`.experiments` (replicates, claims, verdicts), :mod:`.plots`.
"""

from thesislib.methods.lci.config import LCIParams, class_names, lci_config
from thesislib.methods.lci.model import GlobalNet, Inpainter, LocalNet, PatchDiscriminator, build_classifier

__all__ = ["GlobalNet", "Inpainter", "LCIParams", "LocalNet", "PatchDiscriminator", "build_classifier",
           "class_names", "lci_config"]
