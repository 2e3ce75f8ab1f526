"""VGG16 (Simonyan & Zisserman 2015): the one layer table and torchvision key map of the library.

Three networks are built on VGG16's 13 convolutions: DeepLab-LargeFOV (:mod:`thesislib.nn.deeplab`),
Zhou et al.'s VGGnet-GAP (:func:`thesislib.nn.cam.cam_vgg16`) and SEC's localization net
(:func:`thesislib.methods.sec.localization.sec_cam_vgg16`). They differ in their pooling and in
what follows conv5_3; all of them name the layers as Caffe does and build them with
:func:`vgg16_layers`:

=======  ====================  ==========================  =================================
block    layers                channels (in -> out)        torchvision ``features`` indices
=======  ====================  ==========================  =================================
1        conv1_1, conv1_2      3 -> 64, 64 -> 64           0, 2; pool after: 4
2        conv2_1, conv2_2      64 -> 128, 128 -> 128       5, 7; pool 9
3        conv3_1 .. conv3_3    128 -> 256, 256 -> 256      10, 12, 14; pool 16
4        conv4_1 .. conv4_3    256 -> 512, 512 -> 512      17, 19, 21; pool 23
5        conv5_1 .. conv5_3    512 -> 512                  24, 26, 28; pool 30
=======  ====================  ==========================  =================================

Every convolution is 3x3 with padding = dilation, followed by a ReLU (``relu{b}_{i}``); a pool
``pool{b}`` may follow block b. The key map (:data:`VGG16_KEY_MAP`) sends torchvision's
``features.{index}.{weight,bias}`` to ``{name}.{weight,bias}``; :func:`load_vgg16_weights` finds
the convolutions by name inside any network (``conv1_1`` at the top or under ``trunk.``) and, for
DeepLab's ``fc6``/``fc7``, applies the ``vgg16_20M`` subsampling of :func:`convert_vgg16_state_dict`.
ImageNet weights come from a LOCAL torchvision file only (``vgg16-397923af.pth``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from torch import Tensor, nn

from thesislib.nn.weights import WeightsFileError, check_weights_file, read_state_dict, require_tensors

VGG16_FILE = "vgg16-397923af.pth"
VGG16_EXPECTED = f"a torchvision vgg16 state dict (torchvision names the file {VGG16_FILE})"


class VGGConv(NamedTuple):
    """One VGG16 convolution: Caffe name, torchvision ``features`` index, in and out channels."""

    name: str
    index: int
    in_channels: int
    out_channels: int

    @property
    def block(self) -> int:
        """The block number 1..5 (``conv4_2`` -> 4)."""
        return int(self.name[4])


VGG16_CONVS: tuple[VGGConv, ...] = tuple(VGGConv(*row) for row in (
    ("conv1_1", 0, 3, 64), ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128), ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256), ("conv3_2", 12, 256, 256), ("conv3_3", 14, 256, 256),
    ("conv4_1", 17, 256, 512), ("conv4_2", 19, 512, 512), ("conv4_3", 21, 512, 512),
    ("conv5_1", 24, 512, 512), ("conv5_2", 26, 512, 512), ("conv5_3", 28, 512, 512),
))
# torchvision ``features`` index of the 2x2 max pool after each block
VGG16_POOLS: dict[int, int] = {1: 4, 2: 9, 3: 16, 4: 23, 5: 30}
VGG16_KEY_MAP: dict[str, str] = {f"features.{c.index}.{kind}": f"{c.name}.{kind}"
                                 for c in VGG16_CONVS for kind in ("weight", "bias")}
_FC6_SHAPE = (4096, 512 * 7 * 7)
_FC7_SHAPE = (4096, 4096)


def vgg16_layers(pool: Callable[[int], nn.Module | None], dilation: Callable[[int], int] = lambda block: 1
                 ) -> OrderedDict[str, nn.Module]:
    """VGG16's convolutions in order, each followed by an in-place ReLU, with ``pool(b)`` after
    block b where it is not ``None``: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...``.

    ``dilation(b)``: the dilation (= padding) of block b's 3x3 convolutions. Weights keep
    PyTorch's default initialisation; see :func:`he_init_`.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for k, conv in enumerate(VGG16_CONVS):
        d = dilation(conv.block)
        layers[conv.name] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=d, dilation=d)
        layers[f"relu{conv.name[4:]}"] = nn.ReLU(inplace=True)
        last_of_block = k + 1 == len(VGG16_CONVS) or VGG16_CONVS[k + 1].block != conv.block
        if last_of_block and (module := pool(conv.block)) is not None:
            layers[f"pool{conv.block}"] = module
    return layers


def he_init_(module: nn.Module) -> None:
    """He-normal (fan-out, ReLU gain) weights and zero biases for every ``Conv2d`` in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_vgg16_file(path: str | Path) -> Path:
    """``path`` expanded, or :class:`~thesislib.nn.weights.WeightsNotFoundError` naming it and
    torchvision's ``vgg16-397923af.pth``."""
    return check_weights_file(path, VGG16_EXPECTED)


def read_vgg16_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A torchvision-format VGG16 state dict from ``path`` (:func:`~thesislib.nn.weights.read_state_dict`)."""
    return read_state_dict(path, VGG16_EXPECTED)


def _conv_shapes() -> dict[str, tuple[int, ...]]:
    return {f"features.{c.index}.{kind}": ((c.out_channels, c.in_channels, 3, 3) if kind == "weight"
                                           else (c.out_channels,))
            for c in VGG16_CONVS for kind in ("weight", "bias")}


def vgg16_conv_weights(state: Mapping[str, Tensor], source: str | Path = "the state dict") -> dict[str, Tensor]:
    """torchvision vgg16 state dict -> ``{conv1_1.weight, conv1_1.bias, ..., conv5_3.bias}``
    (26 tensors, :data:`VGG16_KEY_MAP`); :class:`~thesislib.nn.weights.WeightsFileError` when a
    convolution is missing or mis-shaped (vgg16_bn and others have other keys)."""
    require_tensors(state, _conv_shapes(), "a torchvision vgg16 (vgg16_bn and others have other keys)", source)
    return {ours: state[theirs].clone() for theirs, ours in VGG16_KEY_MAP.items()}


def to_torchvision_keys(convs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of the key map: ``{conv1_1.weight: ...}`` -> ``{features.0.weight: ...}``
    (other keys are dropped)."""
    inverse = {ours: theirs for theirs, ours in VGG16_KEY_MAP.items()}
    return {inverse[k]: v for k, v in convs.items() if k in inverse}


def convert_vgg16_state_dict(state: Mapping[str, Tensor], source: str | Path = "the state dict") -> dict[str, Tensor]:
    """torchvision vgg16 state dict -> DeepLab-LargeFOV's conv1_1 .. conv5_3, fc6, fc7 tensors.

    The convolutions by :data:`VGG16_KEY_MAP`; fc6: ``W6.view(4096, 512, 7, 7)[::4, :, ::3, ::3]``
    (1024, 512, 3, 3), ``b6[::4]``; fc7: ``W7[::4, ::4].view(1024, 1024, 1, 1)``, ``b7[::4]`` (the
    vgg16_20M subsampling). torchvision flattens pool5's (512, 7, 7) channel-major, which the view
    undoes.
    """
    expected = dict(_conv_shapes())
    expected.update({"classifier.0.weight": _FC6_SHAPE, "classifier.0.bias": (4096,),
                     "classifier.3.weight": _FC7_SHAPE, "classifier.3.bias": (4096,)})
    require_tensors(state, expected, "a torchvision vgg16 (vgg16_bn and others have other keys)", source)
    out = vgg16_conv_weights(state, source)
    w6 = state["classifier.0.weight"].reshape(4096, 512, 7, 7)
    out["fc6.weight"] = w6[::4, :, ::3, ::3].contiguous()
    out["fc6.bias"] = state["classifier.0.bias"][::4].clone()
    out["fc7.weight"] = state["classifier.3.weight"][::4, ::4].reshape(1024, 1024, 1, 1).contiguous()
    out["fc7.bias"] = state["classifier.3.bias"][::4].clone()
    return out


def _conv_prefix(model: nn.Module) -> str:
    for name, module in model.named_modules():
        if name == "conv1_1" or name.endswith(".conv1_1"):
            if not isinstance(module, nn.Conv2d):
                break
            return name[: -len("conv1_1")]
    raise ValueError(f"{type(model).__name__} has no VGG16 layers named conv1_1 .. conv5_3 (build it "
                     "with thesislib.nn.vgg.vgg16_layers)")


def load_vgg16_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model``'s VGG16 layers from a local torchvision vgg16 file; returns the names
    of the parameters left as they were (the layers that are new, e.g. ``["fc8.bias", "fc8.weight"]``).

    The convolutions are found by name (``conv1_1`` .. ``conv5_3`` at the top of ``model`` or under
    one prefix such as ``trunk.``); when ``fc6`` and ``fc7`` sit next to them with
    DeepLab-LargeFOV's shapes, they get the ``vgg16_20M`` subsampled fully connected layers
    (:func:`convert_vgg16_state_dict`). A missing file is a
    :class:`~thesislib.nn.weights.WeightsNotFoundError`, an unreadable or non-vgg16 file a
    :class:`~thesislib.nn.weights.WeightsFileError`.
    """
    prefix = _conv_prefix(model)
    state = read_vgg16_state_dict(path)
    own = model.state_dict()
    wants_fc = all(tuple(own.get(f"{prefix}{k}", Tensor()).shape) == shape for k, shape in
                   (("fc6.weight", (1024, 512, 3, 3)), ("fc7.weight", (1024, 1024, 1, 1))))
    converted = convert_vgg16_state_dict(state, path) if wants_fc else vgg16_conv_weights(state, path)
    converted = {prefix + k: v for k, v in converted.items()}
    wrong = sorted(k for k, v in converted.items() if k not in own or own[k].shape != v.shape)
    if wrong:
        raise WeightsFileError(f"{path}: the VGG16 tensors do not fit {type(model).__name__}: {', '.join(wrong[:5])}")
    model.load_state_dict(converted, strict=False)
    return sorted(name for name, _ in model.named_parameters() if name not in converted)
