"""SEC's segmentation networks and their learning-rate groups (thesis section 2.4.1).

``network="deeplab_largefov"``: DeepLab-LargeFOV (:func:`thesislib.nn.deeplab.deeplab_largefov`,
321 x 321 inputs -> (B, K, 41, 41) logits), initialised from a local torchvision VGG16 file;
``"fcn"``: the smoke-scale :class:`~thesislib.nn.fcn.SmallFCN` (S x S inputs -> (B, K, S/2, S/2)).
The CAM localizers that produce the cues live in :mod:`thesislib.methods.sec.localization`.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from thesislib.methods.sec.config import SECParams
from thesislib.nn.deeplab import deeplab_largefov
from thesislib.nn.fcn import small_fcn


def build_network(params: SECParams, num_labels: int) -> nn.Module:
    """The segmentation network with ``num_labels`` outputs (background first); DeepLab without
    ``weights_path`` warns that the run is no replication (random initialisation)."""
    if params.network == "fcn":
        return small_fcn(num_labels, width=params.width, dropout=params.dropout)
    if not params.weights_path:
        warnings.warn("DeepLab-LargeFOV starts from random weights (no weights_path): the thesis initialises "
                      "it from ImageNet VGG16, so this run is NOT a replication of its numbers", stacklevel=2)
    return deeplab_largefov(num_labels, params.dropout, params.weights_path or None)


def param_groups(model: nn.Module, params: SECParams) -> list[dict[str, Any]]:
    """Caffe lr multipliers (``caffe_lr_mult``: DeepLab fc8 x10 weights / x20 bias, other biases
    x2; the FCN's classifier x10) or one group with weight decay on everything."""
    if params.caffe_lr_mult and hasattr(model, "param_groups"):
        if params.network == "fcn":
            return model.param_groups(params.lr, params.weight_decay, head_lr_mult=10.0)
        return model.param_groups(params.lr, params.weight_decay)
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": params.lr,
             "weight_decay": params.weight_decay}]
