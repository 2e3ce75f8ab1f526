"""The CAM classifiers of the chapter (trained by :func:`.train.train_cam`).

The thesis takes a trained GAP network (Zhou et al.'s VGGnet-GAP: VGG16 to conv5_3, one 3x3 conv
with 1024 channels + ReLU, global average pooling, linear) and clusters conv5_3 patterns. The
smoke run uses the same layout at a small size, :func:`cam_small_gap`: the trunk of
:func:`~thesislib.nn.cam_smallnet` (3 conv layers, stride 2, 16x16 maps for 32x32 images) plays
conv5_3, and an extra 3x3 conv + ReLU feeds the GAP, so ``pattern_layer="trunk"`` takes the
patterns one layer below the CAM features, as on ILSVRC.
"""

from __future__ import annotations

from pathlib import Path

from thesislib.nn import CAMClassifier, cam_smallnet, cam_vgg16
from thesislib.nn.weights import read_state_dict


def cam_small_gap(num_classes: int, width: int = 16, extra: int = 64) -> CAMClassifier:
    """Smoke-scale GAP network: ``cam_smallnet``'s trunk (K = 2 width channels, stride 2,
    receptive field 9 px) + 3x3 conv to ``extra`` channels + ReLU (receptive field 13 px), GAP,
    linear. CAMs and trunk patterns are (B, ., H/2, W/2)."""
    trunk = cam_smallnet(num_classes, width=width).trunk
    return CAMClassifier(trunk, 2 * width, num_classes, extra_channels=extra)


def build_cam_classifier(arch: str, num_classes: int, *, width: int = 16, extra: int = 64,
                         weights_path: str | Path | None = None,
                         vgg16_path: str | Path | None = None) -> CAMClassifier:
    """``"cam_small"`` (:func:`cam_small_gap`) or ``"cam_vgg16"`` (:func:`~thesislib.nn.cam_vgg16`,
    trunk from ``vgg16_path`` when given). ``weights_path``: a state dict of the whole CAM
    classifier (e.g. a trained GAP network), loaded last; a missing file is a
    :class:`~thesislib.nn.WeightsNotFoundError`."""
    if arch == "cam_small":
        model = cam_small_gap(num_classes, width, extra)
    elif arch == "cam_vgg16":
        model = cam_vgg16(num_classes, weights_path=vgg16_path or None)
    else:
        raise ValueError(f"arch must be 'cam_small' or 'cam_vgg16', got {arch!r}")
    if weights_path:
        state = read_state_dict(weights_path, "a state dict of the whole CAM classifier (torch.save("
                                "model.state_dict(), path), or an engine checkpoint)",
                                hint="Pass weights_path=None and set epochs > 0 to train the classifier.")
        model.load_state_dict(state)
    return model

