"""Class activation maps (Zhou et al., CVPR 2016) and input-gradient saliency (Simonyan et al. 2014).

Weak localisation in thesis chapters 2 (SEC's foreground seeds) and 3 (micro-annotation's
score maps and patterns). A CAM classifier is a convolutional trunk whose post-ReLU feature
maps f_k(x, y) are globally average pooled, F_k = mean_{x,y} f_k(x, y), and fed to a linear
layer, S_c = sum_k w_ck F_k + b_c. The class activation map of class c is (Zhou et al., sec. 2)

    M_c(x, y) = sum_k w_ck f_k(x, y),      so that      S_c = mean_{x,y} M_c(x, y) + b_c,

an exact identity because both maps are linear. The thesis (section 3.4) calls M the score map
S^y(X) and thresholds it at 20% of its maximum. Micro-annotation clusters L2-normalised
post-ReLU activations: :meth:`CAMClassifier.features` returns the maps f_k that feed the GAP,
:meth:`CAMClassifier.trunk_features` the trunk's output (conv5_3 for :func:`cam_vgg16`, the
layer the thesis clusters on ILSVRC); both have the CAM's resolution.

Background seeds in SEC come from the gradient of the class scores with respect to the input
(Simonyan et al., sec. 3.1): M(i, j) = max_channel |dS/dX(channel, i, j)|, where S
sums the scores of the selected (present) classes; see :func:`input_gradient_saliency`, which
also takes the gradient with respect to a hidden layer's output A instead of the input
(M(i, j) = max_channel |dS/dA(channel, i, j)|, SEC's conv4_1 variant).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from thesislib.nn.vgg import check_vgg16_file, he_init_, load_vgg16_weights, vgg16_layers


class CAMClassifier(nn.Module):
    """trunk -> [3x3 conv to ``extra_channels`` + ReLU] -> GAP -> linear.

    Shapes: images (B, C_in, H, W); ``features`` (B, K, h, w), K = ``num_features``;
    ``forward`` logits (B, num_classes); ``cams`` (B, num_classes, h, w).
    The trunk's output must be non-negative (end in a ReLU) when there is no extra conv.
    """

    def __init__(self, trunk: nn.Module, feat_channels: int, num_classes: int,
                 extra_channels: int | None = None) -> None:
        super().__init__()
        self.trunk = trunk
        self.extra: nn.Module | None = None
        if extra_channels:
            self.extra = nn.Sequential(nn.Conv2d(feat_channels, extra_channels, 3, padding=1),
                                       nn.ReLU(inplace=True))
            nn.init.kaiming_normal_(self.extra[0].weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.extra[0].bias)
        self.num_features = extra_channels or feat_channels
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def trunk_features(self, x: Tensor) -> Tensor:
        """The trunk's output (B, feat_channels, h, w): conv5_3 after ReLU for :func:`cam_vgg16`."""
        return self.trunk(x)

    def features(self, x: Tensor) -> Tensor:
        """Post-ReLU feature maps f_k(x, y) that feed the GAP, (B, K, h, w)."""
        f = self.trunk(x)
        return self.extra(f) if self.extra is not None else f

    def logits_from_features(self, f: Tensor) -> Tensor:
        """S_c = sum_k w_ck mean_{x,y} f_k(x, y) + b_c, (B, num_classes)."""
        return self.fc(f.mean(dim=(2, 3)))

    def cams_from_features(self, f: Tensor) -> Tensor:
        """M_c(x, y) = sum_k w_ck f_k(x, y) (Zhou et al., sec. 2), (B, num_classes, h, w); no bias."""
        return torch.einsum("ck,bkhw->bchw", self.fc.weight.to(f.dtype), f)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits_from_features(self.features(x))

    def cams(self, x: Tensor) -> Tensor:
        """Class activation maps at feature resolution, (B, num_classes, h, w)."""
        return self.cams_from_features(self.features(x))

    def forward_with_cams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Logits (B, num_classes) and CAMs (B, num_classes, h, w) from one trunk pass."""
        f = self.features(x)
        return self.logits_from_features(f), self.cams_from_features(f)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

def vgg16_conv_trunk() -> nn.Sequential:
    """VGG16 conv1_1 .. conv5_3 with ReLUs and pool1-4 (2x2, stride 2), no pool5: feature
    stride 16. Built from :func:`~thesislib.nn.vgg.vgg16_layers` (modules ``conv1_1``,
    ``relu1_1``, ..., ``pool4``, ..., ``relu5_3``); computes torchvision's ``vgg16().features[:30]``."""
    trunk = nn.Sequential(vgg16_layers(lambda block: nn.MaxPool2d(2, stride=2) if block <= 4 else None))
    he_init_(trunk)
    return trunk


def cam_vgg16(num_classes: int, weights_path: str | Path | None = None) -> CAMClassifier:
    """Zhou et al.'s VGGnet-GAP: VGG16 up to conv5_3 (pool5 and the fc layers removed), a 3x3
    conv with 1024 channels + ReLU, GAP, linear. A 224x224 input gives 14x14 maps (321 -> 20).

    ``weights_path``: a local torchvision vgg16 state dict for the conv layers (the new conv and
    the linear layer start at random; :func:`~thesislib.nn.vgg.load_vgg16_weights`); a missing
    file is a :class:`~thesislib.nn.WeightsNotFoundError` naming it.
    """
    if weights_path is not None:
        check_vgg16_file(weights_path)                            # fail before building
    model = CAMClassifier(vgg16_conv_trunk(), 512, num_classes, extra_channels=1024)
    if weights_path is not None:
        load_vgg16_weights(model, weights_path)
    return model


def cam_smallnet(num_classes: int, in_channels: int = 3, width: int = 16) -> CAMClassifier:
    """Small CAM net for smoke runs: conv3x3(width) BN ReLU, conv3x3/s2(2 width) BN ReLU,
    conv3x3(2 width) BN ReLU, then GAP and linear. Feature stride 2 (16x16 maps for 32x32
    images), K = 2 width channels; receptive field 9 px. Forward + backward of 32 images of
    32x32 takes about 40-50 ms on one CPU thread at the default width."""
    def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True)]

    trunk = nn.Sequential(*block(in_channels, width), *block(width, 2 * width, stride=2),
                          *block(2 * width, 2 * width))
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return CAMClassifier(trunk, 2 * width, num_classes)


# --------------------------------------------------------------------------------------------
# Saliency
# --------------------------------------------------------------------------------------------

def class_sum(labels: Tensor) -> Callable[[Tensor], Tensor]:
    """``class_scores_fn`` summing the scores of the classes marked in ``labels`` (B, C)."""
    def scores(logits: Tensor) -> Tensor:
        return (logits * labels.to(logits.dtype)).sum(dim=1)
    return scores


def resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> nn.Module | None:
    """``None`` or ``"input"`` -> ``None`` (the input); a module as it is; a name from
    ``model.named_modules()`` -> that module (ValueError listing the names otherwise)."""
    if layer is None or isinstance(layer, nn.Module):
        return layer
    if layer == "input":
        return None
    modules = dict(model.named_modules())
    if layer not in modules:
        names = ", ".join(n for n in modules if n)
        raise ValueError(f"the model has no layer {layer!r}; layers: {names}")
    return modules[layer]


def input_gradient_saliency(model: nn.Module, x: Tensor, class_scores_fn: Callable[[Tensor], Tensor], *,
                            layer: str | nn.Module | None = None) -> Tensor:
    """Saliency M(i, j) = max_channel |d S / d A(channel, i, j)| (Simonyan et al. 2014, sec. 3.1),
    (B, h, w): A is the input x (``layer=None`` or ``"input"``, then (h, w) = (H, W)) or the output
    of ``layer`` (a module of ``model`` or its name in ``model.named_modules()``, e.g. SEC's
    ``"trunk.conv4_1"``; (h, w) is that layer's resolution).

    ``class_scores_fn`` maps the model output to one score per image, (B,), e.g.
    :func:`class_sum` of the image's labels. The images of a batch are independent: the model
    runs in eval mode (its mode is restored afterwards), and the gradient of the summed scores
    is taken with respect to A only (parameter ``.grad`` fields are left untouched). A hidden
    layer's output is captured before any in-place operation after it (an in-place ReLU), so the
    gradient is the one with respect to the layer's own output, as Caffe's diff.
    """
    target = resolve_layer(model, layer)
    captured: list[Tensor] = []

    def hook(_: nn.Module, __: object, output: Tensor) -> Tensor:
        # keep the layer's own output and pass a copy on, so that an in-place op after it
        # cannot turn the captured tensor into the post-ReLU value
        captured.append(output)
        return output.clone()

    was_training = model.training
    model.eval()
    handle = target.register_forward_hook(hook) if target is not None else None
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(target is None)
            scores = class_scores_fn(model(x))
            if scores.shape != (x.shape[0],):
                raise ValueError(f"class_scores_fn must return one score per image, shape "
                                 f"({x.shape[0]},), got {tuple(scores.shape)}")
            (grad,) = torch.autograd.grad(scores.sum(), x if target is None else captured[0])
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    return grad.abs().amax(dim=1)
