"""The G-softmax network: backbone + classification head, built from a run's configuration.

:class:`GSoftmaxNet` is ``forward(inputs, target=None) -> (x, z)`` with ``x`` the logits of the final
fully-connected layer and ``z = x + lam Phi(x; mu, sigma)`` (Eq. 3) for G-softmax, ``z = x``
otherwise. Multi-label heads have two logits per class (``2m`` outputs, layout in
:mod:`~thesislib.methods.gsoftmax.losses`). For L-softmax the backbone's final linear layer is
replaced by :class:`~thesislib.methods.gsoftmax.lsoftmax.LargeMarginLinear`.
"""

from __future__ import annotations

from torch import Tensor, nn

from thesislib.methods.gsoftmax.config import RunSpec, parse_backbone
from thesislib.methods.gsoftmax.lsoftmax import BetaSchedule, LargeMarginLinear
from thesislib.methods.gsoftmax.transform import GaussianLogitTransform
from thesislib.nn import mlp, resnet_gmp, wrn


class GSoftmaxNet(nn.Module):
    """Backbone + classification head. ``forward(inputs, target=None) -> (x, z)``, each (B, outputs).

    ``x``: logits of the final fully-connected layer (for L-softmax in training, with the margin
    applied to the true class, which needs ``target``); ``z``: ``transform(x)`` for G-softmax
    (Eq. 3's softmax argument), else ``x`` itself.
    """

    def __init__(self, backbone: nn.Module, transform: GaussianLogitTransform | None = None,
                 margin_head: LargeMarginLinear | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.transform = transform
        self.margin_head = margin_head

    def forward(self, inputs: Tensor, target: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.margin_head is not None:
            x = self.margin_head(self.backbone(inputs), target if self.training else None)
        else:
            x = self.backbone(inputs)
        return x, (x if self.transform is None else self.transform(x))


def _final_layer_name(backbone: nn.Module) -> str:
    for name in ("head", "fc"):
        if isinstance(getattr(backbone, name, None), nn.Linear):
            return name
    raise TypeError(f"{type(backbone).__name__} has no final linear layer named 'head' or 'fc'")


def build_model(config: RunSpec, num_outputs: int, in_features: int) -> GSoftmaxNet:
    """The network of ``config`` with ``num_outputs`` logits (m single-label, 2m multi-label) on inputs
    of ``in_features`` values (used by the MLP). Draws its initial weights from torch's global RNG.

    The G-softmax transform holds one (mu, sigma) per output (``2m`` multi-label); its construction
    draws no random numbers, so softmax and G-softmax runs with one seed start from the same weights.
    """
    spec = parse_backbone(config.backbone)
    outputs = num_outputs
    if spec.kind == "mlp":
        backbone = mlp(in_features, outputs, config.hidden)
    elif spec.kind == "wrn":
        backbone = wrn(spec.depth, spec.widen, outputs)
    else:
        backbone = resnet_gmp(outputs, spec.arch, config.params.weights_path or None)
    transform = margin_head = None
    if config.method == "gsoftmax":
        transform = GaussianLogitTransform(outputs, lam=config.lam, mu_init=config.mu_init,
                                           sigma_init=config.sigma_init, learn=config.params.learn_gaussians,
                                           sigma_param=config.params.sigma_param)
    elif config.method == "lsoftmax":
        name = _final_layer_name(backbone)
        setattr(backbone, name, nn.Identity())          # the backbone now returns its features
        margin_head = LargeMarginLinear(backbone.num_features, outputs, margin=config.params.lsoftmax_margin,
                                        beta=BetaSchedule(*config.params.lsoftmax_beta))
    return GSoftmaxNet(backbone, transform, margin_head)
