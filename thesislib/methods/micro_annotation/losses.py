"""The CAM classifier's training loss (image-level labels only; thesis section 3.4, GAP's setup).

The pooled class scores S (B, C) of :class:`~thesislib.nn.CAMClassifier` are trained with

* multi-label data (scenes, VOC): one sigmoid per class, the binary cross-entropy
  L = -(1 / (B C)) sum_{b,c} [y_bc log sigma(S_bc) + (1 - y_bc) log(1 - sigma(S_bc))];
* single-label data (ILSVRC): the softmax cross-entropy on the class index.

Both are the shared :func:`~thesislib.nn.cam_training.cam_classifier_step` (SEC's localizer uses
the same); this module picks the one the chapter's data needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from thesislib.nn.cam_training import cam_classifier_step


def cam_loss(multilabel: bool) -> Callable[[nn.Module, Any], tuple[Tensor, dict[str, Tensor]]]:
    """The engine's step function: ``"bce"`` on multi-hot labels (B, C) when ``multilabel``, else
    ``"ce"`` on class indices (B,); returns (loss, {``acc``[, ``label_acc``]})."""
    return cam_classifier_step("bce" if multilabel else "ce")
